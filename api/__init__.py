"""Kestrel's operator API: one service layer (api.service) and its faces: REST (api.rest),
the WebSocket push (api.ws), MCP tools (api.mcp_server) and the dashboard page, all behind
one security model (api.auth). May import kestrel/, never flows/ or prefect."""

from api.app import create_app
from api.context import ApiConfig, ApiContext, build_context
from api.service import ApiService, Backend, ServiceError

__all__ = [
    "ApiConfig",
    "ApiContext",
    "ApiService",
    "Backend",
    "ServiceError",
    "build_context",
    "create_app",
]
