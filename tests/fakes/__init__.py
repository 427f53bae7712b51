"""Fakes of external services for tests: Stripe HTTP server, SMTP sink."""
