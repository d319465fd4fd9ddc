"""meterpipe's shared runtime: settings, Kafka client config, embedded broker, metrics and CLI."""
