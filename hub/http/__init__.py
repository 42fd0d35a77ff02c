"""The HTTP entry points: the ingest API, the ops server, and the web pages people use (hub.http.web)."""
