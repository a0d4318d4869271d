"""Checked and audited OPC UA method calls.

asyncua runs a method's callback for any object id the client names and hands it whatever arguments
came, so a method is only as strict as its callback. :func:`add_checked_method` adds a method whose
callback first checks the call as OPC 10000-4 §5.12.2 (Call service) asks, then runs the action and
records the outcome in the audit trail (action ``call``):

- called on an object other than the one it is a component of → ``BadMethodInvalid``;
- fewer arguments than declared → ``BadArgumentsMissing``; more → ``BadTooManyArguments``;
- an argument of the wrong type → ``BadInvalidArgument`` with ``BadTypeMismatch`` in that argument's
  ``InputArgumentResults`` entry;
- the action refuses (:class:`MethodRefused`, or any ``UaStatusCodeError``) → that status, with its reason;
- anything unexpected → ``BadInternalError`` (logged with the traceback: it is a bug).

An action that changes a state may say what it changed with :func:`record_change` (old and new value, a note):
the audit entry then carries them (e.g. ApplyParameterSet: the set deployed before and the one requested);
otherwise the entry's new value is the call's arguments.

Nothing reaches the action unless the call passed the checks. Who calls is read from :data:`CALLER`, which
:func:`track_method_callers` sets from the session's user for the duration of each Call request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole

from plc_adapters.asyncua_seam import SessionServiceHooks, SessionView, install_session_hooks
from twin_server.audit import AuditEntry, AuditOutcome, AuditTrail, client_label, role_label, user_label

log = logging.getLogger("linetwin.methods")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the session's user name (or ``anonymous``) and role."""

    name: str
    role: str = ""
    client: str = ""


SERVER_CALLER = Caller("server")
CALLER: ContextVar[Caller] = ContextVar("linetwin_method_caller", default=SERVER_CALLER)
"""The caller of the method being run (``server`` when the twin calls a method itself)."""
CALLER_SESSION: ContextVar[Any] = ContextVar("linetwin_method_session", default=None)
"""The session (:class:`~plc_adapters.asyncua_seam.SessionView`) whose Call request is being run (``None``: the
twin itself); its ``user`` is the asyncua User (what role checks take), its ``session_id`` what owns a
subscription."""


class MethodRefused(Exception):
    """An action refuses a call: the status code returned to the client and the reason for the audit trail."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{ua.StatusCode(code).name}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MethodArgument:
    """A declared input argument: name, variant type, description."""

    name: str
    variant_type: ua.VariantType
    description: str = ""

    def as_argument(self) -> ua.Argument:
        return ua.Argument(Name=self.name, DataType=ua.NodeId(self.variant_type.value), ValueRank=ua.ValueRank.Scalar,
                           ArrayDimensions=[], Description=ua.LocalizedText(self.description or self.name))


@dataclass(frozen=True, slots=True)
class CallAudit:
    """What an accepted call changed, for its audit entry: the value before, the value after, a note."""

    old_value: object = None
    new_value: object = None
    reason: str = ""


_CALL_CHANGE: ContextVar[CallAudit | None] = ContextVar("linetwin_call_change", default=None)


def record_change(old_value: object, new_value: object, reason: str = "") -> None:
    """Called by a method's action: what the call changed, for its audit entry (instead of the arguments)."""
    _CALL_CHANGE.set(CallAudit(old_value, new_value, reason))


MethodAction = Callable[..., Awaitable[Sequence[object] | None]]
"""The method's action: awaited with the argument values (Python objects); returns the output argument values (one
per declared output, in order; None for a method without outputs); raises :class:`MethodRefused` to refuse; may
call :func:`record_change`."""


def check_call(object_id: ua.NodeId, called_on: ua.NodeId, arguments: Sequence[ua.Variant],
               declared: Sequence[MethodArgument]) -> tuple[ua.CallMethodResult, str] | None:
    """``None`` if the call may run; else the result to return and the reason."""
    if called_on != object_id:
        return (ua.CallMethodResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadMethodInvalid)),
                f"called on {called_on.to_string()}, not on {object_id.to_string()}")
    if len(arguments) < len(declared):
        missing = ", ".join(a.name for a in declared[len(arguments):])
        return (ua.CallMethodResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadArgumentsMissing)),
                f"{len(arguments)} argument(s) given, {len(declared)} expected (missing {missing})")
    if len(arguments) > len(declared):
        return (ua.CallMethodResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadTooManyArguments)),
                f"{len(arguments)} argument(s) given, {len(declared)} expected")
    results = [ua.StatusCode(ua.StatusCodes.Good if _matches(v, a) else ua.StatusCodes.BadTypeMismatch)
               for v, a in zip(arguments, declared, strict=True)]
    wrong = [f"{a.name}: got {v.VariantType.name}, expected {a.variant_type.name}"
             for v, a, r in zip(arguments, declared, results, strict=True) if not r.is_good()]
    if wrong:
        return (ua.CallMethodResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadInvalidArgument),
                                    InputArgumentResults=results), "; ".join(wrong))
    return None


def _matches(value: ua.Variant, declared: MethodArgument) -> bool:
    return (isinstance(value, ua.Variant) and value.VariantType == declared.variant_type
            and not isinstance(value.Value, list))


async def add_checked_method(server: Server, object_id: ua.NodeId, method_id: ua.NodeId,
                             browse_name: ua.QualifiedName, action: MethodAction, audit: AuditTrail,
                             inputs: Sequence[MethodArgument] = (), audit_name: str | None = None,
                             outputs: Sequence[MethodArgument] = ()) -> None:
    """Add method ``browse_name`` (a component of ``object_id``) that checks, runs and audits every call.

    ``audit_name``: the node as the audit trail names it (default: the method node id's identifier).
    ``outputs``: the declared output arguments (the action returns their values).
    """
    declared = tuple(inputs)
    declared_outputs = tuple(outputs)
    node_text = audit_name or str(method_id.Identifier)

    async def call(called_on: ua.NodeId, *arguments: ua.Variant) -> list[ua.Variant] | ua.CallMethodResult:
        caller = CALLER.get()
        values = [v.Value if isinstance(v, ua.Variant) else v for v in arguments]

        def record(outcome: AuditOutcome, status: int, reason: str = "", change: CallAudit | None = None) -> None:
            old, new = (change.old_value, change.new_value) if change is not None else (None, values or None)
            audit.record(AuditEntry(action="call", user=caller.name, role=caller.role, client=caller.client,
                                    node=node_text, outcome=outcome, status=ua.StatusCode(status).name,
                                    old_value=old, new_value=new, reason=reason))

        refused = check_call(object_id, called_on, arguments, declared)
        if refused is not None:
            result, reason = refused
            record(AuditOutcome.REFUSED, result.StatusCode.value, reason)
            return result
        change_token = _CALL_CHANGE.set(None)
        try:
            returned = await action(*values)
            change = _CALL_CHANGE.get()
        except (MethodRefused, ua.UaStatusCodeError) as exc:
            code = int(exc.code)
            reason = exc.reason if isinstance(exc, MethodRefused) else ua.StatusCode(code).doc
            record(AuditOutcome.REFUSED, code, reason)
            return ua.CallMethodResult(StatusCode=ua.StatusCode(code))
        except Exception as exc:  # a bug: say so, keep the server serving
            log.exception("method %s failed", node_text)
            record(AuditOutcome.FAILED, ua.StatusCodes.BadInternalError, f"{type(exc).__name__}: {exc}")
            return ua.CallMethodResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadInternalError))
        finally:
            _CALL_CHANGE.reset(change_token)
        record(AuditOutcome.ACCEPTED, ua.StatusCodes.Good, change.reason if change else "", change)
        return [ua.Variant(v, a.variant_type) for v, a in zip(returned or (), declared_outputs, strict=True)]

    parent = server.get_node(object_id)
    await parent.add_method(method_id, browse_name, call, [a.as_argument() for a in declared],
                            [a.as_argument() for a in declared_outputs])


def caller_of(user: User | None) -> Caller:
    """The audit name, twin role and client of a session's user (``anonymous`` when nobody logged in)."""
    if user is None:
        return Caller("anonymous", UserRole.Anonymous.name.lower())
    return Caller(user_label(user), role_label(user), client_label(user))


class _CallerTracking(SessionServiceHooks):
    """Sets :data:`CALLER` and :data:`CALLER_SESSION` while a session's Call request runs."""

    external_only = False

    async def on_call(self, session: SessionView, params: list[ua.CallMethodRequest],
                      proceed: Callable[[list[ua.CallMethodRequest]], Awaitable[list[ua.CallMethodResult]]],
                      ) -> list[ua.CallMethodResult]:
        token = CALLER.set(caller_of(session.user))
        session_token = CALLER_SESSION.set(session)
        try:
            return await proceed(params)
        finally:
            CALLER_SESSION.reset(session_token)
            CALLER.reset(token)


def track_method_callers(server: Server) -> None:
    """Make every session's Call request set :data:`CALLER` from the session's user while its methods run.

    asyncua hands a method callback only the object id and the arguments; the session is the one place
    that knows the user, so each new session's Call passes through the asyncua seam's session hook.
    """
    install_session_hooks(server, _CallerTracking())
