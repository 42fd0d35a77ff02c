"""The Kafka consumers of the router, the directory and the scheduler. They hold their use cases and still reach
the adapters directly; issue 12's phase B turns them into hub.pipeline behind declared ports (the layers contract
in pyproject.toml lists each such import under ignore_imports until then)."""
