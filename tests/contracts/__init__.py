"""Contract suites: one per port, run against the fake and against every real adapter."""
