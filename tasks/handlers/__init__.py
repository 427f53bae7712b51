"""One module per use case: open a unit of work, load, call the domain, save, stage outbox."""
