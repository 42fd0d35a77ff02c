"""The pipeline's use cases, behind declared ports (hub.pipeline.ports): sending (sending.py) with its retry policy
(retry.py), 대체발송 (fallback.py) and the later verdicts (results.py); the outcomes ledger (outcomes.py); the
circuit breaker and the periodic loop helper. The router, the directory and the scheduler are still in
hub.consumers, which talks to the adapters directly."""
