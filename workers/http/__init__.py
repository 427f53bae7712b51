"""HTTP endpoints: the Stripe webhook receiver and `/metrics`."""
