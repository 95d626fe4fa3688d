"""Local development harness: a real control plane, NATS, Postgres and the `herald` CLI."""
