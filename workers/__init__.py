"""Process side of orderflow: broker, worker supervisor, adapters, composition root and CLI."""
