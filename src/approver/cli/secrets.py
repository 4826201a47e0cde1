"""``approver secret set|get|list|delete``: the keyring secrets that ``${keyring:NAME}`` reads.

A value never goes on the command line (where ``ps`` and shell history would see it): ``set``
prompts for it without echo, twice on a terminal, or reads it from stdin with ``--stdin``.
``get`` prints a value to a terminal only with ``--show``; into a pipe it prints it as is.

Exit status: 0 done, 1 refused or not found (a mismatch, an unknown name, a secret still in
use), 2 an error (no keyring, a locked keyring, an invalid name).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import TYPE_CHECKING, Any, Final

from approver.config.paths import Paths
from approver.errors import ConfigError

if TYPE_CHECKING:
    from approver.config.secrets import SecretStore

EXIT_REFUSED: Final = 1
"""A request that was understood but not carried out."""


def add_parser(commands: Any) -> None:
    """Add the ``secret`` command to the top-level subparsers ``commands``."""
    secret = commands.add_parser(
        "secret", help="keyring secrets for ${keyring:NAME} in servers.json (set, get, list, delete)"
    )
    sub = secret.add_subparsers(dest="secret_command", metavar="SUBCOMMAND", required=True)
    set_ = sub.add_parser("set", help="store a secret; prompts for the value without echo")
    set_.add_argument("name", help="the NAME in ${keyring:NAME}")
    set_.add_argument(
        "--stdin", action="store_true", help="read the value from stdin (one trailing newline is dropped)"
    )
    get = sub.add_parser("get", help="print a secret's value (to a terminal only with --show)")
    get.add_argument("name")
    get.add_argument("--show", action="store_true", help="print the value even when stdout is a terminal")
    list_ = sub.add_parser("list", help="list secret names, whether each is stored, and who uses it")
    list_.add_argument("--json", action="store_true", help="print JSON")
    delete = sub.add_parser("delete", help="remove a secret from the keyring")
    delete.add_argument("name")
    delete.add_argument(
        "--force", action="store_true", help="delete even if servers.json still references it"
    )


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run ``approver secret ...``; SecretsError and ConfigError propagate to the caller (exit 2)."""
    from approver.config.secrets import SecretStore, check_secret_name

    store = SecretStore(paths)
    command = args.secret_command
    if command == "list":
        return _list(store, args.json)
    name = check_secret_name(args.name)
    if command == "set":
        return _set(store, name, args.stdin)
    if command == "get":
        return _get(store, name, args.show)
    return _delete(store, name, args.force)


def _say(text: str) -> None:
    print(f"approver: {text}", file=sys.stderr)


def _read_value(from_stdin: bool) -> str | None:
    """The value to store, or None (after saying why) when it could not be read safely."""
    if from_stdin:
        value = sys.stdin.read()
        return value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
    if not sys.stdin.isatty():
        _say("stdin is not a terminal, so there is no hidden prompt; pass --stdin to read the value from it")
        return None
    first = getpass.getpass("Value (not shown): ")
    if getpass.getpass("Again, to confirm: ") != first:
        _say("the two values differ; nothing was stored")
        return None
    return first


def _set(store: SecretStore, name: str, from_stdin: bool) -> int:
    store.get(name)  # a missing or locked keyring fails here, before the user types a secret
    value = _read_value(from_stdin)
    if value is None:
        return EXIT_REFUSED
    replaced = store.save(name, value)
    from approver.config.secrets import backend_name

    verb = "replaced" if replaced else "stored"
    print(f"{verb} secret {name!r} in the system keyring ({backend_name(store.backend)})")
    try:
        servers = store.references().get(name, ())
    except ConfigError:  # the secret is stored; an invalid servers.json is reported elsewhere
        servers = ()
    if servers:
        print(f"used by: {', '.join(servers)} (restart approver to use the new value)")
    else:
        print(f"no server references it yet: write ${{keyring:{name}}} in {store.paths.servers_file}")
    return 0


def _get(store: SecretStore, name: str, show: bool) -> int:
    if sys.stdout.isatty() and not show:
        _say(
            "the value would appear on the screen; add --show to print it, "
            "or pipe it (e.g. `approver secret get NAME | xclip`)"
        )
        return EXIT_REFUSED
    value = store.get(name)
    if value is None:
        _say(f"no secret {name!r} is stored; set it with: approver secret set {name}")
        return EXIT_REFUSED
    print(value)
    return 0


def _list(store: SecretStore, as_json: bool) -> int:
    listing = store.listing()
    if listing.servers_error:
        _say(f"cannot read references: {listing.servers_error}")
    if listing.problem:
        _say(listing.problem)
    if as_json:
        rows = [{"name": s.name, "stored": s.stored, "servers": list(s.servers)} for s in listing.secrets]
        print(json.dumps(rows, indent=2))
        return 0
    if not listing.secrets:
        _say("no secrets yet; add one with: approver secret set NAME")
        return 0
    width = max(len(s.name) for s in listing.secrets)
    for info in listing.secrets:
        state = {True: "stored", False: "MISSING", None: "unknown"}[info.stored]
        used = f"used by {', '.join(info.servers)}" if info.servers else "not referenced"
        print(f"{info.name:<{width}}  {state:<7}  {used}")
    return 0


def _delete(store: SecretStore, name: str, force: bool) -> int:
    if not force:
        try:
            servers = store.references().get(name, ())
        except ConfigError as exc:
            _say(f"cannot check whether a server uses {name!r} ({exc}); fix the file or pass --force")
            return EXIT_REFUSED
        if servers:
            _say(
                f"secret {name!r} is used by {', '.join(servers)} in servers.json; remove the "
                "reference first, or pass --force"
            )
            return EXIT_REFUSED
    if store.delete(name):
        print(f"deleted secret {name!r}")
        return 0
    _say(f"no secret {name!r} was stored")
    return EXIT_REFUSED
