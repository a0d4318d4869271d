"""The twin: OPC UA server, address space, line runtime, control loops, config parsing and building.

Public names are imported on first use (``TwinServer`` pulls in asyncua, the controllers and casadi), so that
loading a config and ``linetwin check`` stay light. The command line is :mod:`linetwin_cli`.
"""

from __future__ import annotations

from linetwin_lazy import lazy_exports

# public name -> module that defines it; imported on first use (linetwin_lazy), so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "ConfigError": "plc_adapters.config_issues",
    "ConfigIssue": "plc_adapters.config_issues",
    "IssueCollector": "plc_adapters.config_issues",
    "LineConfig": "twin_server.config",
    "ServerConfig": "twin_server.config",
    "TwinServer": "twin_server.server",
    "UnitConfig": "twin_server.config",
    "build_line": "twin_server.line_build",
    "load_line_config": "twin_server.config",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
