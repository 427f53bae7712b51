"""The seeded story soak (issue 20): a realistic day applied by real worker processes."""
