"""Building a unit's :class:`~twin_server.surrogate_nodes.SurrogateWatch` from its ``[units.<unit>.surrogate]``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from asyncua import Server, ua

from controllers.control_plan import ControlPlan
from process_models.surrogates.twin_options import parse_surrogate_options
from twin_server.surrogate_nodes import SurrogateWatch


async def build_surrogate_watch(server: Server, namespace_index: int, line: str, unit: str, unit_node: ua.NodeId,
                                raw: Mapping[str, Any], plan: ControlPlan,
                                record: Callable[[str], Awaitable[None]]) -> SurrogateWatch:
    """Validate the table, load the artifact for the plan's model (refused if its declaration changed) and build
    the nodes. Raises ``ValueError`` naming the key."""
    prefix = f"units.{unit}.surrogate"
    options, issues = parse_surrogate_options(raw, prefix)
    if options is None:
        raise ValueError("; ".join(f"{k}: got {g!r}; expected {e}" for k, g, e in issues))
    try:
        watch = SurrogateWatch(server, namespace_index, line, unit, unit_node, options, plan.model, plan.published,
                               record)
    except ValueError as exc:  # SurrogateArtifactError / mismatch are ValueErrors
        raise ValueError(f"{prefix}.path: {exc}") from exc
    await watch.build()
    return watch
