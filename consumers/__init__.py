"""Turns Kafka events into validated, deduplicated, exactly-once totals."""
