"""``linetwin params apply | rollback``: deploy a parameter set to a running twin, or roll back, over OPC UA.

* ``apply CONFIG --unit U ID``: call ``ApplyParameterSet(ID)`` on ``<line>/<unit>/model`` of the twin serving
  CONFIG (``[server] endpoint``, or ``--endpoint``); ID may be a unique prefix of a set in the line's data dir
  (``--data-dir``), or the full id of a set only the twin's data dir holds;
* ``rollback CONFIG --unit U``: call ``RollbackParameterSet()``.

The command acts exactly as an OPC UA client would, with the user's own credentials (``--user``, default the
OS account name; the password from ``--password-file FILE``, ``$LINETWIN_PASSWORD`` or a prompt): the twin checks
the role (engineer and up), the set (it exists, passes its hash check, belongs to the unit's model declaration)
and audits the call with the old and new set id. Before calling, a set the command can read in the local store is
checked the same way, so a refusal names its reason; the twin's answer decides. Security: the endpoint's
``SecurityPolicy None`` when the line allows it (``[security] allow_none``), else ``Basic256Sha256`` /
``SignAndEncrypt`` with ``--certificate`` (DER) and ``--private-key`` (PEM) of a client the twin trusts
(``linetwin pki trust``).

It prints the deployed set afterwards, or the pending one when a batch is running (the switch then happens at
the next batch start). Exit 0 on success, 1 when the twin refuses or cannot be reached, 2 for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from linetwin_cli.common import data_dir_arg, line_data, load_or_exit
from linetwin_cli.failures import EXIT_FAILURE, CommandError

if TYPE_CHECKING:
    from twin_server.config import LineConfig

__all__ = ["add_deploy_commands", "run_deploy"]

PASSWORD_ENV = "LINETWIN_PASSWORD"
TIMEOUT_S = 10.0
REFUSALS = {
    "BadUserAccessDenied": "your role may not change parameter sets (engineer and up)",
    "BadNotFound": "the twin has no such parameter set in its data dir",
    "BadDataUnavailable": "the set's file fails its hash check (tampered or damaged)",
    "BadInvalidArgument": "the set is not for this unit's model declaration (or not a set id)",
    "BadInvalidState": "there is no previous set to roll back to",
}


def add_deploy_commands(params_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``apply`` and ``rollback`` under the ``params`` command group."""
    apply = params_sub.add_parser("apply", help="deploy a parameter set to the running twin (engineer role)")
    apply.add_argument("config", help="line config (TOML)")
    apply.add_argument("id", help="set id (or a unique prefix of a set in the data dir)")
    rollback = params_sub.add_parser("rollback", help="go back to the previously deployed set (engineer role)")
    rollback.add_argument("config", help="line config (TOML)")
    for p in (apply, rollback):
        p.add_argument("--unit", required=True, help="the unit whose model gets the set")
        p.add_argument("--endpoint", default=None, help="the twin's OPC UA endpoint (default: [server] endpoint)")
        p.add_argument("--user", default=None, help="OPC UA user name (default: your OS account name)")
        p.add_argument("--password-file", default=None, metavar="FILE",
                       help=f"read the password from the first line of FILE (or set ${PASSWORD_ENV}; else a prompt)")
        p.add_argument("--certificate", default=None, metavar="DER", help="client certificate (secure endpoints)")
        p.add_argument("--private-key", default=None, metavar="PEM", help="its private key")
        data_dir_arg(p)


def run_deploy(args: argparse.Namespace) -> int:
    """Run ``params apply`` / ``params rollback``."""
    config = load_or_exit(Path(args.config))
    if args.unit not in {u.name for u in config.units}:
        raise CommandError(f"--unit {args.unit}: the line '{config.name}' has no such unit; units: "
                           f"{', '.join(u.name for u in config.units)}")
    set_id = _local_check(args, config) if args.params_command == "apply" else None
    user = args.user or getpass.getuser()
    password = _password(args, user)
    endpoint = args.endpoint or config.server.endpoint
    deployed, pending = asyncio.run(_call(args, config, endpoint, user, password, set_id))
    what = "applied" if set_id else "rolled back"
    if pending:
        print(f"{args.unit}: {what}; parameter set {pending} at the next batch start (a batch is running; "
              f"{deployed} until then)")
    else:
        print(f"{args.unit}: {what}; parameter set {deployed} deployed")
    return 0


def _local_check(args: argparse.Namespace, config: LineConfig) -> str:
    """The full id of ``args.id``: resolved in the local store and checked like the twin checks it where the store
    is readable here; the id as given otherwise (the twin decides)."""
    from process_models.parameter_sets import (
        ParameterSetError,
        ParameterSetStore,
        declaration_hash,
        unit_model_declaration,
    )

    store = ParameterSetStore(line_data(args, config).parameter_sets)
    text = str(args.id).lower()
    full_id = len(text) == 16
    if full_id and text not in store:
        return text  # not here (a twin on another machine, its own data dir): the twin decides
    try:
        set_id = store.resolve(text)
        found = store.get(set_id)
    except ParameterSetError as exc:
        raise CommandError(f"params apply {args.id}: {exc} (a prefix is resolved in this data dir; give the full "
                           "16-digit id of a set only the twin has)", EXIT_FAILURE if "altered" in str(exc) else 2) \
            from None
    unit = config.unit(args.unit)
    expected = declaration_hash(unit_model_declaration(unit.kind, unit.model))
    if found.declaration_hash != expected:
        raise CommandError(f"params apply {set_id}: the set belongs to model declaration "
                           f"{found.declaration_hash[:16]}… (unit {found.unit}); unit {args.unit} runs "
                           f"{expected[:16]}… (its [model] table differs)")
    return set_id


def _password(args: argparse.Namespace, user: str) -> str:
    if args.password_file is not None:
        try:
            lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"--password-file {args.password_file}: cannot read: {exc}; expected the password on "
                               "its first line") from None
        return lines[0] if lines else ""
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV]
    if sys.stdin is None or sys.stdin.closed or not sys.stdin.isatty():
        raise CommandError(f"no terminal to ask {user}'s password; expected --password-file FILE or ${PASSWORD_ENV}")
    try:
        return getpass.getpass(f"{user}'s password: ")
    except EOFError:
        raise CommandError("<prompt>: password: got end of input") from None


async def _call(args: argparse.Namespace, config: LineConfig, endpoint: str, user: str, password: str,
                set_id: str | None) -> tuple[str, str]:
    """Call the method; ``(deployed id, pending id)`` read back after it."""
    from asyncua import Client, ua

    client = Client(endpoint, timeout=TIMEOUT_S)
    client.set_user(user)
    client.set_password(password)
    if not config.security.allow_none:
        if not (args.certificate and args.private_key):
            raise CommandError(f"{endpoint}: the line serves only secure endpoints ([security] allow_none = false); "
                               "expected --certificate DER and --private-key PEM of a client the twin trusts")
        await client.set_security_string(f"Basic256Sha256,SignAndEncrypt,{args.certificate},{args.private_key}")
    prefix = f"{config.name}.{args.unit}.model"
    method = "ApplyParameterSet" if set_id else "RollbackParameterSet"
    try:
        async with client:
            idx = await client.get_namespace_index(config.server.namespace)
            model = client.get_node(ua.NodeId(prefix, idx))
            arguments = [ua.Variant(set_id, ua.VariantType.String)] if set_id else []
            try:
                await model.call_method(ua.NodeId(f"{prefix}.{method}", idx), *arguments)
            except ua.UaStatusCodeError as exc:
                name = ua.StatusCode(exc.code).name
                why = REFUSALS.get(name, ua.StatusCode(exc.code).doc)
                raise CommandError(f"{endpoint}: {method} on {args.unit} refused: {name}: {why}", EXIT_FAILURE) \
                    from None
            deployed = await client.get_node(ua.NodeId(f"{prefix}.parameter_set", idx)).read_value()
            pending = await client.get_node(ua.NodeId(f"{prefix}.pending_parameter_set", idx)).read_value()
    except CommandError:
        raise
    except (OSError, TimeoutError) as exc:
        raise CommandError(f"{endpoint}: no twin answers ({exc or type(exc).__name__}); is `linetwin serve "
                           f"{args.config}` running?", EXIT_FAILURE) from None
    except ua.UaStatusCodeError as exc:
        raise CommandError(f"{endpoint}: {ua.StatusCode(exc.code).name}: {ua.StatusCode(exc.code).doc}",
                           EXIT_FAILURE) from None
    return str(deployed), str(pending or "")
