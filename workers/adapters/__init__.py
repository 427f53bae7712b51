"""The adapters behind tasks/ports.py: Stripe, SMTP, templates, webhooks, the egress stream."""
