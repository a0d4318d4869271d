"""Which parameter set a unit's model runs on: the deployed set, a pending switch, and the deployment history.

A unit starts on the declaration's nominal set (:func:`process_models.parameter_sets.nominal_parameter_set`, put into
the line's store so that it can be named, shown and rolled back to like any other). ``ApplyParameterSet(id)`` and
``RollbackParameterSet()`` (:mod:`twin_server.model_nodes`) ask this object for a switch:

- the set must exist in the store (else ``BadNotFound``) and pass its content-hash check (else
  ``BadDataUnavailable``: the file is there but tampered with or damaged, OPC 10000-4 §7.34 "expected data is
  unavailable"); its ``declaration_hash`` must be the running unit's (else ``BadInvalidArgument``, naming both);
- while a batch runs the switch waits for the next batch start (``pending``); with no batch it happens at once;
- rollback goes back to the set deployed before the current one (``BadInvalidState`` when there is none); while a
  switch is pending, rollback cancels it instead (the running set stays).

The history (every switch: set id, plant-independent UTC time, who) and a pending switch are kept in
``<data dir>/parameter_sets/deployments/<unit>.json`` (written atomically, mode 0600), so a restarted twin runs the
set it ran before. A deployed set that no longer loads or belongs to another declaration (the config changed) is
not run: the unit starts on the nominal set and :attr:`ParameterDeployment.notes` says why.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import ua

from process_models.declaration import CompiledModel
from process_models.parameter_sets import (
    ParameterSet,
    ParameterSetError,
    ParameterSetStore,
    declaration_hash,
    nominal_parameter_set,
    unit_model_declaration,
)
from twin_server.method_calls import MethodRefused

DEPLOYMENTS_DIR = "deployments"
HISTORY_KEPT = 1000
"""Switches kept in a unit's deployment history (the newest; every one is also in the audit trail)."""
SET_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True, slots=True)
class Deployment:
    """One switch of the deployed set: the set's id, when (ISO-8601 UTC) and by whom."""

    set_id: str
    at: str
    by: str


@dataclass(frozen=True, slots=True)
class PendingSwitch:
    """A switch waiting for the next batch start: ``action`` ``apply`` (to ``set_id``) or ``rollback``."""

    set_id: str
    action: str
    at: str
    by: str


@dataclass(frozen=True, slots=True)
class SwitchRequest:
    """The answer to an apply or rollback: the set deployed now, the one asked for, and whether it waits."""

    old_id: str
    new_id: str
    deferred: bool


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ParameterDeployment:
    """The deployed parameter set of one unit (see the module docstring)."""

    def __init__(self, unit: str, declaration_hash: str, nominal: ParameterSet, store: ParameterSetStore,
                 state_file: Path) -> None:
        self.unit = unit
        self.declaration_hash = declaration_hash
        self.nominal = nominal
        self.store = store
        self.state_file = state_file
        self.history: list[Deployment] = []
        self.pending: PendingSwitch | None = None
        self.notes: list[str] = []
        """What loading the history found and did (a set that no longer verifies, another declaration)."""
        self._sets: dict[str, ParameterSet] = {}

    # -- loading ------------------------------------------------------------------------------------
    def load(self) -> None:
        """Put the nominal set into the store, read the deployment history; a pending switch happens now (no batch
        runs while the twin starts)."""
        self.store.put(self.nominal)
        self._sets[self.nominal.id] = self.nominal
        self.history = [Deployment(self.nominal.id, _now(), "server")]
        if not self.state_file.exists():
            return
        try:
            raw = json.loads(self.state_file.read_text(encoding="utf-8"))
            history = [Deployment(**d) for d in raw.get("history", [])]
            pending = PendingSwitch(**raw["pending"]) if raw.get("pending") else None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            self.notes.append(f"deployment history {self.state_file} unreadable ({exc}); running the nominal set")
            return
        usable: list[Deployment] = []
        for d in history:
            try:
                self.verified(d.set_id)
            except MethodRefused as exc:
                self.notes.append(f"deployed set {d.set_id} dropped from the history: {exc.reason}")
                continue
            usable.append(d)
        if usable:
            self.history = usable
        if pending is not None:
            self.pending = pending
            self.switch_pending()
        self.save()

    # -- queries ------------------------------------------------------------------------------------
    @property
    def deployed(self) -> ParameterSet:
        """The set the unit runs on now."""
        return self._sets[self.history[-1].set_id]

    @property
    def pending_id(self) -> str:
        """The set a pending switch goes to ("" when none)."""
        return self.pending.set_id if self.pending is not None else ""

    def verified(self, set_id: str) -> ParameterSet:
        """The set ``set_id`` from the store, checked: MethodRefused with the matching Bad code otherwise."""
        if not isinstance(set_id, str) or not SET_ID.match(set_id):
            raise MethodRefused(ua.StatusCodes.BadInvalidArgument,
                                f"{set_id!r} is not a parameter set id (16 lowercase hexadecimal digits)")
        known = self._sets.get(set_id)
        if known is not None:
            return known
        try:
            found = self.store.get(set_id)
        except ParameterSetError as exc:
            if not self._stored(set_id):
                raise MethodRefused(ua.StatusCodes.BadNotFound,
                                    f"no parameter set {set_id} in {self.store.directory}") from None
            raise MethodRefused(ua.StatusCodes.BadDataUnavailable,
                                f"parameter set {set_id} fails its check: {exc}") from None
        except (OSError, KeyError, ValueError) as exc:
            raise MethodRefused(ua.StatusCodes.BadNotFound, f"parameter set {set_id}: {exc}") from None
        if found.declaration_hash != self.declaration_hash:
            raise MethodRefused(ua.StatusCodes.BadInvalidArgument,
                                f"parameter set {set_id} belongs to model declaration {found.declaration_hash} "
                                f"(unit {found.unit}, model {found.model}); unit {self.unit} runs declaration "
                                f"{self.declaration_hash}")
        self._sets[set_id] = found
        return found

    def _stored(self, set_id: str) -> bool:
        return set_id in self.store

    # -- switching ----------------------------------------------------------------------------------
    def request_apply(self, set_id: str, by: str, batch_running: bool) -> SwitchRequest:
        """Ask to run on ``set_id``: at once, or (``batch_running``) at the next batch start. MethodRefused when the
        set is unknown, fails its check or belongs to another declaration (nothing changes then)."""
        self.verified(set_id)
        old = self.deployed.id
        if batch_running:
            self.pending = PendingSwitch(set_id, "apply", _now(), by)
        else:
            self.pending = None
            self._deploy(set_id, by)
        self.save()
        return SwitchRequest(old, set_id, batch_running)

    def request_rollback(self, by: str, batch_running: bool) -> SwitchRequest:
        """Ask to go back to the set deployed before the current one (or cancel a pending switch)."""
        old = self.deployed.id
        if self.pending is not None:
            self.pending = None
            self.save()
            return SwitchRequest(old, old, False)
        if len(self.history) < 2:
            raise MethodRefused(ua.StatusCodes.BadInvalidState,
                                f"unit {self.unit} runs its first deployed set {old}; there is none to roll back to")
        previous = self.history[-2].set_id
        self.verified(previous)
        if batch_running:
            self.pending = PendingSwitch(previous, "rollback", _now(), by)
        else:
            self.history.pop()
        self.save()
        return SwitchRequest(old, previous, batch_running)

    def switch_pending(self) -> SwitchRequest | None:
        """Carry out the pending switch (at a batch start); None when there is none."""
        pending, self.pending = self.pending, None
        if pending is None:
            return None
        old = self.deployed.id
        try:
            self.verified(pending.set_id)
        except MethodRefused as exc:  # changed in the store since it was asked for
            self.notes.append(f"pending switch to parameter set {pending.set_id} dropped: {exc.reason}")
            self.save()
            return None
        if pending.action == "rollback" and len(self.history) >= 2 and self.history[-2].set_id == pending.set_id:
            self.history.pop()
        else:
            self._deploy(pending.set_id, pending.by)
        self.save()
        return SwitchRequest(old, pending.set_id, False)

    def _deploy(self, set_id: str, by: str) -> None:
        self.history.append(Deployment(set_id, _now(), by))
        del self.history[:-HISTORY_KEPT]

    def save(self) -> None:
        """Write the history and the pending switch (atomically: a crash leaves the old file or the new one)."""
        self.state_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {"unit": self.unit, "declaration_hash": self.declaration_hash,
                "history": [asdict(d) for d in self.history],
                "pending": asdict(self.pending) if self.pending is not None else None}
        fd, tmp = tempfile.mkstemp(prefix=f".{self.unit}.", suffix=".json", dir=self.state_file.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.state_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def deployment_file(parameter_sets_dir: Path, unit: str) -> Path:
    """Where a unit's deployment history is kept under the line's ``parameter_sets`` folder."""
    return parameter_sets_dir / DEPLOYMENTS_DIR / f"{unit}.json"


def unit_deployment(unit: str, kind: str, model_options: Mapping[str, Any], model: CompiledModel,
                    parameter_sets_dir: Path) -> ParameterDeployment:
    """A unit's deployment, loaded: its declaration (:func:`~process_models.parameter_sets.unit_model_declaration`
    of the unit kind and ``[units.<unit>.model]``, as ``linetwin fit`` hashes it), its nominal set (every parameter
    of ``model``, the unit's compiled model, at its declared value), the line's store."""
    declaration = unit_model_declaration(kind, model_options)
    nominal = nominal_parameter_set(unit, kind, declaration, model.declaration.parameter_values())
    deployment = ParameterDeployment(unit, declaration_hash(declaration), nominal,
                                     ParameterSetStore(parameter_sets_dir), deployment_file(parameter_sets_dir, unit))
    deployment.load()
    return deployment


def deployed_set_id(parameter_sets_dir: Path, unit: str) -> str | None:
    """The id of the set a unit last ran on according to its deployment history (None: no history, i.e. the
    nominal set), without verifying it — e.g. the parent of a new fit."""
    try:
        raw = json.loads(deployment_file(parameter_sets_dir, unit).read_text(encoding="utf-8"))
        return str(raw["history"][-1]["set_id"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
