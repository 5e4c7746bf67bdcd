"""HTTP routes: jobs (tenant-scoped) and operations (probes, metrics)."""
