"""``approver tools|pins``: the upstream tools with their risk and policy action, and their pins."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys
from typing import Any, Final

from approver.config.paths import Paths

COMMANDS: Final = ("tools", "pins")
"""The commands this module runs."""

EXIT_FAILED: Final = 1
"""``approver tools``: a server failed to start or was left out, so its tools are missing."""

TABLE_HEADER: Final = ("TOOL", "RISK", "ACTION", "WHY")
"""The header row of ``approver tools``."""


def add_parsers(commands: Any) -> None:
    """Add this module's commands to the top-level subparsers ``commands``."""
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


def run(args: argparse.Namespace, paths: Paths) -> int:
    """Run the command ``args.command``."""
    handler = {
        "tools": _tools,
        "pins": _pins,
    }[args.command]
    return handler(args, paths)


def _tools(args: argparse.Namespace, paths: Paths) -> int:
    from approver.audit.redact import Redactor
    from approver.config.servers import SecretResolver, load_servers
    from approver.gateway.catalog import Catalog
    from approver.gateway.tool_rows import ToolRow, tool_rows
    from approver.policy.file import PolicyFile
    from approver.policy.pins import PinStore
    from approver.upstream.connection import Upstream
    from approver.upstream.status import UpstreamState

    servers = load_servers(paths.servers_file, SecretResolver())
    policy = PolicyFile(paths.policy_file)
    policy.load()
    if policy.error:
        print(f"approver: {policy.error} (showing the safe default policy)", file=sys.stderr)

    async def collect() -> tuple[list[ToolRow], list[str]]:
        redactor = Redactor(servers.secrets)
        upstreams = {c.name: Upstream(c, paths.logs_dir, redactor=redactor) for c in servers.enabled}
        catalog = Catalog(upstreams, policy, PinStore(paths.pins_file))
        tasks = [asyncio.create_task(u.run()) for u in upstreams.values()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(u.wait_settled() for u in upstreams.values())), args.timeout
            )
        failed = []
        for upstream in upstreams.values():
            catalog.refresh(upstream)
            if upstream.state is UpstreamState.NEEDS_SIGN_IN:
                failed.append(f"server {upstream.name}: sign in needed: run `approver login {upstream.name}`")
            elif upstream.state is not UpstreamState.READY:
                why = upstream.error or f"no answer within {args.timeout:g} s"
                failed.append(f"server {upstream.name}: {upstream.state.value}: {why}")
            elif upstream.name in catalog.errors:
                failed.append(f"server {upstream.name}: left out: {catalog.errors[upstream.name]}")
        rows = tool_rows(catalog, policy)
        for upstream in upstreams.values():
            upstream.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        return rows, failed

    rows, failed = asyncio.run(collect())
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=2, ensure_ascii=False))
    else:
        _print_table(rows)
    for problem in failed:
        print(f"approver: {problem}", file=sys.stderr)
    enabled = len(servers.enabled)
    if not enabled:
        where = "does not exist yet" if servers.missing else "has no enabled server"
        print(f"approver: no tools: {paths.servers_file} {where}", file=sys.stderr)
        return 0
    ready = enabled - len(failed)
    print(
        f"approver: {len(rows)} tool{'s' if len(rows) != 1 else ''} from {ready} of {enabled} "
        f"server{'s' if enabled != 1 else ''}" + (f"; {len(failed)} failed (see above)" if failed else ""),
        file=sys.stderr,
    )
    changed = sum(1 for row in rows if row.changed)
    if changed:
        print(
            f"approver: {changed} tool{'s' if changed != 1 else ''} changed since first seen; "
            "calls to them need your approval until you accept with `approver pins accept SERVER [TOOL]`",
            file=sys.stderr,
        )
    return EXIT_FAILED if failed else 0


def _print_table(rows: list[Any]) -> None:
    """One line per tool under a header: name, risk, the policy's action and why."""
    from approver.visible import reveal_text

    width = max([len(TABLE_HEADER[0]), *(len(row.name) for row in rows)])
    tool, risk, action, why = TABLE_HEADER
    print(f"{tool:<{width}}  {risk:<20}  {action:<17}  {why}")
    for row in rows:
        notes = "; ".join(row.reasons)
        if row.changed:
            what = "NEW since its server was pinned" if row.new else "CHANGED since pinned"
            notes = f"{what} ({row.change}); review with `approver pins list`; {notes}"
        level = f"{row.risk_class}/{row.risk_level}"
        print(reveal_text(f"{row.name:<{width}}  {level:<20}  {row.action:<17}  {notes}"))


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
        state = "NEW" if info.new else "CHANGED" if info.changed else "pinned"
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
