"""The HTTP API: app factory, routes, auth, envelope and error mapping."""

from .app import create_app

__all__ = ["create_app"]
