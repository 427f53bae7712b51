"""Everything that runs on a clock: relay, reconciler and periodic scans."""
