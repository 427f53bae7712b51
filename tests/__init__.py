"""orderflow test suite: unit, integration, e2e and chaos layers."""
