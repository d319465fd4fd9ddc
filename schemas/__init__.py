"""The Avro contract of meterpipe usage events: the UsageEvent schema and its codecs."""
