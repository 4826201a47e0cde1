"""The ``approver`` command line: serve, connect, url/token, tools, policy check, audit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from approver import __version__
from approver.approval.broker import DEFAULT_APPROVAL_TIMEOUT
from approver.cli import clients as cli_clients
from approver.cli import doctor_report as cli_doctor
from approver.cli import secrets as cli_secrets
from approver.config.paths import Paths
from approver.errors import ApproverError, ConfigError
from approver.gateway.front import DEFAULT_PORT, NonLoopbackError

logger = logging.getLogger("approver")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="approver",
        description="A local human-in-the-loop firewall for AI agents: an MCP gateway with policies, "
        "approvals and a tamper-evident audit log.",
    )
    parser.add_argument("--version", action="version", version=f"approver {__version__}")
    parser.add_argument(
        "--config-dir", help="directory of servers.json and policy.json (env APPROVER_CONFIG_DIR)"
    )
    parser.add_argument(
        "--data-dir", help="directory of the audit log, logs and tokens (env APPROVER_DATA_DIR)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    app = commands.add_parser("app", help="run the desktop app (tray, approval dialog); the default")
    app.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})"
    )
    app.add_argument(
        "--approval-timeout",
        type=_seconds,
        default=DEFAULT_APPROVAL_TIMEOUT,
        metavar="SECONDS",
        help=f"deny a call nobody approves within this time (default {DEFAULT_APPROVAL_TIMEOUT:g})",
    )
    demo = commands.add_parser(
        "demo", help="try approver: the desktop app with a sandboxed demo server and a scripted agent"
    )
    demo.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    demo.add_argument("--pace", type=float, default=2.0, help="seconds between the agent's steps (default 2)")

    serve = commands.add_parser("serve", help="run the gateway headless (calls needing approval are denied)")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind (only loopback is allowed)"
    )

    for name, text in (
        ("url", "print the MCP URL (with an embedded token) for a named client"),
        ("token", "print the bearer token of a named client, creating it if needed"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument(
            "--client", default="default", help="client name recorded with its calls (default: default)"
        )
        if name == "url":
            sub.add_argument(
                "--plain",
                action="store_true",
                help="print the URL without a token (use with a bearer header)",
            )

    connect = commands.add_parser(
        "connect", help="stdio bridge to the running gateway, for stdio-only clients"
    )
    connect.add_argument(
        "--client", default="stdio", help="client name recorded with its calls (default: stdio)"
    )

    tools = commands.add_parser("tools", help="list every upstream tool with its risk and policy action")
    tools.add_argument("--json", action="store_true", help="print JSON")
    tools.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for upstreams (default 30)"
    )

    pins = commands.add_parser("pins", help="pinned tool definitions (a changed tool needs approval)")
    pins_commands = pins.add_subparsers(dest="pins_command", metavar="SUBCOMMAND", required=True)
    pins_list = pins_commands.add_parser("list", help="list pinned tools; changed ones with a diff")
    pins_list.add_argument("--json", action="store_true", help="print JSON")
    accept = pins_commands.add_parser("accept", help="accept a changed tool definition after reviewing it")
    accept.add_argument("server", help="server name in servers.json")
    accept.add_argument("tool", nargs="?", help="the upstream tool name (default: every changed tool)")

    policy = commands.add_parser("policy", help="policy file commands")
    policy_commands = policy.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)
    check = policy_commands.add_parser("check", help="validate a policy file")
    check.add_argument("file", nargs="?", help="policy file (default: the configured policy.json)")

    audit = commands.add_parser("audit", help="audit log commands")
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    audit_commands.add_parser("verify", help="check the hash chain; exit 1 naming the first bad row")
    export = audit_commands.add_parser("export", help="export rows as CSV or JSON lines")
    export.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
    export.add_argument("--since", help="e.g. 30m, 2h, 7d or an ISO date")
    export.add_argument("--output", "-o", help="file to write (default: stdout)")
    tail = audit_commands.add_parser("tail", help="print the latest rows; --follow keeps printing new ones")
    tail.add_argument("-n", type=int, default=20, help="how many rows (default 20)")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new rows")
    cli_secrets.add_parser(commands)
    cli_doctor.add_parser(commands)
    cli_clients.add_parsers(commands)
    return parser


def _seconds(text: str) -> float:
    """An approval timeout in seconds: a number from 5 to 86400."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 5 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"expected 5 to 86400 seconds, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``approver`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="approver: %(message)s",
        stream=sys.stderr,
    )
    paths = Paths.resolve(args.config_dir, args.data_dir)
    command = args.command or "app"
    if args.command is None:
        args.port = DEFAULT_PORT
    try:
        handler = {
            "app": _app,
            "demo": _demo,
            "serve": _serve,
            "url": _url,
            "token": _token,
            "connect": _connect,
            "tools": _tools,
            "pins": _pins,
            "policy": _policy,
            "audit": _audit,
            "secret": cli_secrets.run,
            "doctor": cli_doctor.run,
            "import": cli_clients.run,
            "install": cli_clients.run,
            "uninstall": cli_clients.run,
        }[command]
        return handler(args, paths)
    except (ApproverError, NonLoopbackError, ValueError) as exc:
        print(f"approver: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"approver: {_file_problem(exc, paths)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _file_problem(exc: OSError, paths: Paths) -> str:
    """An OSError (a data directory that is a file, a full or read-only disk) as what to do."""
    what = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
    return (
        f"cannot use {what}. approver reads its config directory ({paths.config_dir}) and writes its "
        f"data directory ({paths.data_dir}): make both directories you can write, or choose others "
        "with --config-dir and --data-dir (or APPROVER_CONFIG_DIR and APPROVER_DATA_DIR)."
    )


# -- desktop -----------------------------------------------------------------------------------


def _no_display_reason() -> str | None:
    """Why a window cannot be shown here, or None when it can."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    if any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        return None
    return "there is no display here (neither DISPLAY nor WAYLAND_DISPLAY is set)"


def _load_desktop() -> Any:
    """The desktop launcher module, or an ApproverError saying why Qt cannot load."""
    try:
        from approver.ui import launch
    except ImportError as exc:
        from approver.cli.qt_probe import apt_hint

        raise ApproverError(
            f"the desktop app cannot start because Qt could not be loaded ({exc}). On Debian or "
            f"Ubuntu install the libraries Qt needs: {apt_hint(str(exc))}; or run the gateway without "
            "a window: approver serve. `approver doctor` checks the rest."
        ) from None
    return launch


def _app(args: argparse.Namespace, paths: Paths) -> int:
    reason = _no_display_reason()
    if reason is not None:
        print(
            f"approver: {reason}, so the desktop app cannot open; running the gateway headless instead "
            "(calls that need approval are denied; `approver serve` does this explicitly).",
            file=sys.stderr,
        )
        args.host = "127.0.0.1"
        return _serve(args, paths)
    launch = _load_desktop()
    timeout = getattr(args, "approval_timeout", DEFAULT_APPROVAL_TIMEOUT)
    return int(launch.run_desktop(paths, launch.DesktopOptions(port=args.port, approval_timeout=timeout)))


def _demo(args: argparse.Namespace, paths: Paths) -> int:
    import shutil
    import tempfile

    import keyring.backends.fail

    from approver.config.tokens import TokenStore
    from approver.demo.agent import CLIENT_NAME, run_agent
    from approver.demo.sandbox import prepare_demo

    reason = _no_display_reason()
    if reason is not None:
        raise ApproverError(f"the demo shows approval dialogs, and {reason}")
    launch = _load_desktop()
    root = Path(tempfile.mkdtemp(prefix="approver-demo-"))
    try:
        setup = prepare_demo(root)
        # The demo never touches your keyring or your own config: its token lives in the sandbox.
        tokens = TokenStore(setup.paths.tokens_file, backend=keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]

        async def agent(desktop: Any) -> None:
            def narrate(line: str) -> None:
                print(line, flush=True)
                desktop.window.show_notice("Demo", line)

            try:
                await run_agent(
                    desktop.service.url, tokens.get_or_create(CLIENT_NAME), pause=args.pace, say=narrate
                )
            except ApproverError as exc:
                narrate(f"The demo agent stopped: {exc}")
            else:
                narrate("The demo agent is done. Open Audit log… to see every decision; Quit ends the demo.")

        print(f"approver: demo sandbox in {setup.sandbox}; it is deleted when you quit.", file=sys.stderr)
        options = launch.DesktopOptions(port=args.port, token_store=tokens, companion=agent, show_window=True)
        return int(launch.run_desktop(setup.paths, options))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- serve -------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, paths: Paths) -> int:
    from approver.service import Service

    async def run() -> int:
        service = Service(paths, port=args.port, host=args.host)
        for line in service.describe_startup():
            print(f"approver: {line}", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # Windows loops have no signal handlers
                loop.add_signal_handler(sig, stop.set)
        await service.start()
        print(f"approver: gateway listening on {service.url}", file=sys.stderr)
        print(
            "approver: running headless: calls the policy sends for approval are denied, "
            "because no approval window is attached",
            file=sys.stderr,
        )
        await stop.wait()
        print("approver: shutting down", file=sys.stderr)
        await service.stop()
        return 0

    return asyncio.run(run())


# -- url / token / connect ---------------------------------------------------------------------


def _token_store(paths: Paths) -> Any:
    from approver.config.tokens import TokenStore

    paths.ensure()
    return TokenStore(paths.tokens_file)


def _running_port(paths: Paths) -> tuple[int, bool]:
    from approver.service import read_runtime

    info = read_runtime(paths)
    return (info.port, True) if info is not None else (DEFAULT_PORT, False)


def _url(args: argparse.Namespace, paths: Paths) -> int:
    from approver.service import HOST, client_url

    store = _token_store(paths)
    token = store.get_or_create(args.client)
    port, running = _running_port(paths)
    print(f"http://{HOST}:{port}/mcp" if args.plain else client_url(port, token))
    if not running:
        print(
            "approver: the gateway is not running; this is its default port. Start it with `approver serve`.",
            file=sys.stderr,
        )
    print(f"approver: {store.storage_note}", file=sys.stderr)
    return 0


def _token(args: argparse.Namespace, paths: Paths) -> int:
    store = _token_store(paths)
    print(store.get_or_create(args.client))
    print(f"approver: {store.storage_note}", file=sys.stderr)
    return 0


def _connect(args: argparse.Namespace, paths: Paths) -> int:
    from approver.gateway.bridge import run_bridge
    from approver.service import read_runtime

    token = _token_store(paths).get_or_create(args.client)

    def find() -> str | None:
        info = read_runtime(paths)
        return info.url if info is not None else None

    asyncio.run(run_bridge(find, token))
    return 0


# -- tools -------------------------------------------------------------------------------------


def _tools(args: argparse.Namespace, paths: Paths) -> int:
    from approver.audit.redact import Redactor
    from approver.calls import Action, CallContext
    from approver.config.servers import SecretResolver, load_servers
    from approver.gateway.catalog import Catalog
    from approver.policy.file import PolicyFile
    from approver.policy.pins import PinStore
    from approver.upstream.connection import Upstream
    from approver.visible import reveal_text

    servers = load_servers(paths.servers_file, SecretResolver())
    policy = PolicyFile(paths.policy_file)
    policy.load()
    if policy.error:
        print(f"approver: {policy.error} (showing the safe default policy)", file=sys.stderr)

    async def collect() -> list[dict[str, Any]]:
        redactor = Redactor(servers.secrets)
        upstreams = {c.name: Upstream(c, paths.logs_dir, redactor=redactor) for c in servers.enabled}
        catalog = Catalog(upstreams, policy, PinStore(paths.pins_file))
        tasks = [asyncio.create_task(u.run()) for u in upstreams.values()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(u.wait_settled() for u in upstreams.values())), args.timeout
            )
        for upstream in upstreams.values():
            catalog.refresh(upstream)
            if upstream.error:
                print(
                    f"approver: server {upstream.name}: {upstream.state.value}: {upstream.error}",
                    file=sys.stderr,
                )
            if upstream.name in catalog.errors:
                print(f"approver: server {upstream.name}: {catalog.errors[upstream.name]}", file=sys.stderr)
        rows = []
        for entry in catalog.tools():
            decision = policy.policy.decide_without_arguments(
                CallContext(client="", tool=entry.ref, risk=entry.risk)
            )
            pin = catalog.pin_check(entry)
            action, rule = decision.action.value, decision.rule
            if pin.quarantined and decision.action is Action.ALLOW:
                action, rule = Action.REQUIRE_APPROVAL.value, "pin-changed"  # as the gateway decides
            rows.append(
                {
                    "name": entry.ref.name,
                    "server": entry.ref.server,
                    "tool": entry.ref.tool,
                    "risk_class": entry.risk.risk_class.value,
                    "risk_level": entry.risk.level.value,
                    "reasons": list(entry.risk.reasons),
                    "conflict": entry.risk.conflict,
                    "action": action,
                    "rule": rule,
                    "changed": pin.quarantined,
                    "change": pin.reason if pin.quarantined else "",
                    "description": entry.exposed.description or "",
                }
            )
        for upstream in upstreams.values():
            upstream.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        return rows

    rows = asyncio.run(collect())
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("no tools (no upstream servers configured or none answered)", file=sys.stderr)
        return 0
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        risk = f"{row['risk_class']}/{row['risk_level']}"
        notes = "; ".join(row["reasons"])
        if row["changed"]:
            notes = f"CHANGED since pinned ({row['change']}); review with `approver pins list`; {notes}"
        print(reveal_text(f"{row['name']:<{width}}  {risk:<20}  {row['action']:<17}  {notes}"))
    changed = sum(1 for row in rows if row["changed"])
    if changed:
        print(
            f"approver: {changed} tool{'s' if changed != 1 else ''} changed since first seen; "
            "calls to them need your approval until you accept with `approver pins accept SERVER [TOOL]`",
            file=sys.stderr,
        )
    return 0


# -- pins --------------------------------------------------------------------------------------


def _pins(args: argparse.Namespace, paths: Paths) -> int:
    from approver.policy.pins import PinStore

    store = PinStore(paths.pins_file)
    if args.pins_command == "accept":
        accepted = store.accept(args.server, args.tool)
        if not accepted:
            print(
                f"approver: nothing to accept: no changed definition pending for {args.server}"
                + (f"/{args.tool}" if args.tool else ""),
                file=sys.stderr,
            )
            return 0
        for name in accepted:
            print(f"accepted: {args.server}/{name}")
        return 0
    infos = store.pins()
    if args.json:
        print(json.dumps([dataclasses.asdict(info) for info in infos], indent=2, ensure_ascii=False))
        return 0
    if not infos:
        print(f"approver: no pinned tools yet ({paths.pins_file})", file=sys.stderr)
        return 0
    from approver.visible import reveal_text

    for info in infos:
        state = "CHANGED" if info.changed else "pinned"
        renamed = f" (renamed from {reveal_text(info.renamed_from)})" if info.renamed_from else ""
        print(f"{state:<8} {reveal_text(info.server)}/{reveal_text(info.tool)}  {info.sha256[:12]}{renamed}")
        if info.changed:
            print("  " + reveal_text(info.diff, keep_newlines=True).replace("\n", "\n  "))
    changed = sum(info.changed for info in infos)
    if changed:
        print(
            f"approver: {changed} changed tool(s) need approval for every call; review the diff, then "
            "run `approver pins accept SERVER [TOOL]`",
            file=sys.stderr,
        )
    return 0


# -- policy ------------------------------------------------------------------------------------


def _policy(args: argparse.Namespace, paths: Paths) -> int:
    from approver.policy.engine import Policy

    file = Path(args.file) if args.file else paths.policy_file
    if not args.file and not file.exists():
        print(f"ok: no policy file at {file}; the safe default policy is in force")
        return 0
    try:
        policy = Policy.from_file(file)
    except ConfigError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(f"ok: {file}: {len(policy.tool_patterns)} tool rules, default {policy.data.get('default', 'deny')}")
    return 0


# -- audit -------------------------------------------------------------------------------------


def _audit(args: argparse.Namespace, paths: Paths) -> int:
    from approver.audit.log import AuditLog, parse_since

    if not paths.audit_db.exists():
        print(f"approver: no audit log yet at {paths.audit_db}", file=sys.stderr)
        return 0
    # Read-only: the CLI never writes to, or holds a write lock on, the running gateway's log.
    with AuditLog(paths.audit_db, read_only=True) as log:
        if args.audit_command == "verify":
            report = log.verify()
            if report.ok:
                print(f"ok: {report.rows} rows, hash chain intact; last hash {report.last_hash}")
                return 0
            print(f"TAMPERED: row {report.first_bad_id}: {report.problem}", file=sys.stderr)
            return 1
        if args.audit_command == "export":
            since = parse_since(args.since) if args.since else None
            if args.output:
                with open(args.output, "w", encoding="utf-8", newline="") as out:
                    count = log.export(out, args.format, since=since)
            else:
                count = log.export(sys.stdout, args.format, since=since)
            print(f"approver: exported {count} rows", file=sys.stderr)
            return 0
        return _tail(log, args.n, args.follow)


def _tail(log: Any, count: int, follow: bool) -> int:
    import time

    last = max(0, log.last_id - count)
    while True:
        for row in log.tail(after_id=last, limit=1000):
            last = row["id"]
            print(_format_row(row))
        if not follow:
            return 0
        sys.stdout.flush()
        time.sleep(1.0)


def _format_row(row: dict[str, Any]) -> str:
    from approver.visible import reveal_text

    # One line per row, and nothing a terminal would interpret: names and reasons come from
    # clients and servers, so control, bidi and other hidden characters are shown as <U+XXXX>.
    if row.get("kind") == "decision":
        line = (
            f"{row['ts']}  {row['client']}  {row['tool']}  {row['decision']} by {row['decided_by']}"
            f" ({row['rule']}): {row['reason']}"
        )
        return reveal_text(line)
    duration = row["duration_ms"] or 0.0
    who = f"{row.get('client') or ''}  {row.get('tool') or ''}"
    error = f": {row['error']}" if row.get("error") else ""
    return reveal_text(f"{row['ts']}  {who}  -> {row['outcome']} ({duration:.1f} ms){error}")
