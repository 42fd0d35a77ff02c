"""The pure core: events and their catalogue, residents, audience rules, rendering, delivery ids and requests,
errors, time. No I/O and no Kafka, SQL or HTTP library: what happens here is decided from its arguments."""
