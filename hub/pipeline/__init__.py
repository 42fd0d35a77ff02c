"""The pipeline's use cases, behind declared ports (issue 12). For now: the circuit breaker and the periodic loop
helper; the router and the senders are still in hub.consumers, which talks to the adapters directly."""
