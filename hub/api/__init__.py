"""The hub's HTTP side: `create_app(hub)` (hub/api/app.py) mounts the routers; ops endpoints in hub/api/ops.py."""
