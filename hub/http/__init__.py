"""The hub's HTTP side: the ops server of a running hub (`create_app(hub)` in hub/http/app.py mounts the routers;
ops endpoints and the dashboard in hub/http/ops.py; uvicorn in hub/http/server.py) and the ingest API for
department systems (hub/http/ingest/, `hub api`).
The web pages people use share hub/http/web/: sessions, CSRF, rate limits, security headers, Jinja2 pages."""
