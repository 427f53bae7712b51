"""`orderflow demo`: the whole system on embedded defaults, its data, its report and the SMTP
sink it uses as a stand-in for a mail server."""
