"""The ``approver`` command line: the global options, and each command handed to its module.

Each module of :mod:`approver.cli` owns a few commands: it adds their parsers
(``add_parsers``) and runs them (``run``). Qt is loaded only by the commands that open windows.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Final

from approver import __version__
from approver.cli import access, audit, login, policy, run, tools
from approver.cli import clients as cli_clients
from approver.cli import doctor_report as cli_doctor
from approver.cli import secrets as cli_secrets
from approver.config.paths import Paths
from approver.errors import ApproverError
from approver.gateway.front import NonLoopbackError

logger = logging.getLogger("approver")

_MODULES: Final = (run, access, tools, login, policy, audit)
"""The command modules, in the order their commands are listed in ``approver --help``."""

Handler = Callable[[argparse.Namespace, Paths], int]


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

    for module in _MODULES:
        module.add_parsers(commands)
    cli_secrets.add_parser(commands)
    cli_doctor.add_parser(commands)
    cli_clients.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``approver`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="approver: %(message)s",
        stream=sys.stderr,
    )
    paths = Paths.resolve(args.config_dir, args.data_dir)
    if args.command is None:  # plain `approver` runs the desktop app
        args.command, args.port = "app", None
    command = args.command
    try:
        handlers: dict[str, Handler] = {
            "secret": cli_secrets.run,
            "doctor": cli_doctor.run,
            "import": cli_clients.run,
            "install": cli_clients.run,
            "uninstall": cli_clients.run,
        }
        for module in _MODULES:
            handlers.update(dict.fromkeys(module.COMMANDS, module.run))
        handler = handlers[command]
        return handler(args, paths)
    except BrokenPipeError:
        # The reader went away (`approver doctor --json | head`): not a problem of approver's.
        _silence_stdout()
        return 0
    except (ApproverError, NonLoopbackError, ValueError) as exc:
        print(f"approver: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"approver: {_file_problem(exc, paths)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it on exit cannot fail on the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def _file_problem(exc: OSError, paths: Paths) -> str:
    """An OSError (a data directory that is a file, a full or read-only disk) as what to do."""
    what = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
    return (
        f"cannot use {what}. approver reads its config directory ({paths.config_dir}) and writes its "
        f"data directory ({paths.data_dir}): make both directories you can write, or choose others "
        "with --config-dir and --data-dir (or APPROVER_CONFIG_DIR and APPROVER_DATA_DIR)."
    )
