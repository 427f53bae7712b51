"""Pure business rules: no I/O, no clock, no random ids."""
