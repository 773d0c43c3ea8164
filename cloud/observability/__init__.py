"""What operators watch: Prometheus metrics, liveness and readiness, per cloud process (docs/operations.md)."""
