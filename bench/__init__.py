"""`make bench`: the hub's throughput, latency and memory against raw aiokafka, on one local broker."""
