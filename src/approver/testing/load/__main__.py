"""``python -m approver.testing.load``: run the load test from a shell and print its reports.

Without ``--attach`` it starts its own ``approver serve`` in a temporary (or ``--root``)
directory and runs ``--rounds`` rounds against it. With ``--attach`` it loads the gateway already
running on ``--config-dir``/``--data-dir``, whose upstream logs its calls to ``--call-log``.
Exits 0 when every round is OK, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from approver.config.paths import Paths
from approver.testing.load.run import LoadGateway, LoadReport, gateway_process, run_load


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m approver.testing.load", description=__doc__)
    parser.add_argument("--transport", choices=("http", "bridge"), default="http")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--calls", type=int, default=100, help="calls per client (default 100)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds against the same gateway (default 1)")
    parser.add_argument("--root", type=Path, help="where the started gateway keeps its files")
    parser.add_argument(
        "--attach", action="store_true", help="load the gateway running on --config-dir/--data-dir"
    )
    parser.add_argument("--config-dir", type=Path)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--call-log", type=Path, help="with --attach: the upstream's --call-log file")
    parser.add_argument("--json", action="store_true", help="print the reports as a JSON array")
    return parser


async def _rounds(gateway: LoadGateway, options: argparse.Namespace) -> list[LoadReport]:
    reports = []
    for number in range(1, options.rounds + 1):
        reports.append(
            await run_load(
                gateway=gateway,
                transport=options.transport,
                clients=options.clients,
                calls_per_client=options.calls,
                label=f"r{number}-{options.transport}",
            )
        )
    return reports


async def _run(options: argparse.Namespace) -> list[LoadReport]:
    if options.attach:
        paths = Paths(config_dir=options.config_dir, data_dir=options.data_dir)
        return await _rounds(LoadGateway.attach(paths, options.call_log), options)
    if options.root is not None:
        options.root.mkdir(parents=True, exist_ok=True)
        async with gateway_process(options.root) as gateway:
            return await _rounds(gateway, options)
    with tempfile.TemporaryDirectory(prefix="approver-load-") as root:
        async with gateway_process(Path(root)) as gateway:
            return await _rounds(gateway, options)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the rounds, print the reports; 0 when all are OK."""
    options = _parser().parse_args(argv)
    if options.attach and not (options.config_dir and options.data_dir and options.call_log):
        _parser().error("--attach needs --config-dir, --data-dir and --call-log")
    reports = asyncio.run(_run(options))
    if options.json:
        print(json.dumps([report.as_dict() for report in reports], indent=2))
    else:
        for number, report in enumerate(reports, 1):
            print(f"round {number}: " + "\n  ".join(report.lines()))
    return 0 if all(report.ok for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
