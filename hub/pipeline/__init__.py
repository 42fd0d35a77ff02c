"""The pipeline's use cases, behind declared ports (hub.pipeline.ports): routing (routing.py), sending (sending.py)
with its retry policy (retry.py), 대체발송 (fallback.py) and the later verdicts (results.py); the outcomes ledger
(outcomes.py); releasing held deliveries (scheduling.py); the directory (directory.py); the consent notices
(consent.py); the dead-letter replay check (replay_check.py); per-record isolation (isolation.py), the circuit
breaker and the periodic loop helper. No I/O library is imported here: the adapters implement the ports."""
