"""A compatibility alias only (router.py), for one importer another change owns. The consumers are use cases in
hub.pipeline with their Kafka sides in hub.kafka; delete this package once nothing imports it."""
