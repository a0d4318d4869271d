"""The twin: OPC UA server, address space, line runtime, control loops, config loading and the CLI.

``TwinServer`` is imported on first use (it pulls in asyncua, the controllers and casadi), so that
``linetwin check`` and config tooling stay light.
"""

from typing import Any

from twin_server.config import ConfigError, ConfigIssue, LineConfig, ServerConfig, UnitConfig, load_line_config

__all__ = ["ConfigError", "ConfigIssue", "LineConfig", "ServerConfig", "TwinServer", "UnitConfig", "load_line_config"]


def __getattr__(name: str) -> Any:
    if name == "TwinServer":
        from twin_server.server import TwinServer

        return TwinServer
    raise AttributeError(f"module 'twin_server' has no attribute {name!r}")
