"""The residents' pages (issue 15): served by `hub public`, the address the county exposes behind its TLS proxy."""

from hub.http.public.app import create_public_app

__all__ = ["create_public_app"]
