"""The Kafka adapter: the broker and its security, topics, subscription with commit-after-processing,
publishing, dead letters and lag. The hub's other layers reach Kafka through here."""
