"""Turns metered-usage files into Avro events on Kafka."""
