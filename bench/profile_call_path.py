"""Profile ``approver serve`` on the allowed-call path with py-spy (installed in its own venv).

Usage: ``python bench/profile_call_path.py [--calls N] [--clients C] [--gil] [--out FILE]``

Attaches ``py-spy record`` to the gateway (samples of every thread, so time spent waiting, for
example on fsync in the audit writer thread, shows up too; with ``--gil`` only the thread holding
the GIL, which is where the CPU goes), drives ``C`` clients making ``N`` allowed calls each over
Streamable HTTP, and leaves a speedscope profile in ``FILE`` plus a text summary of the hottest
frames on stdout. py-spy is a tool of this benchmark, never a dependency of approver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from common import CACHE_DIR, approver_dirs, approver_serve, http_sessions, sequential


def py_spy() -> str:
    """py-spy from its own venv under the benchmark cache, installed on first use."""
    venv = CACHE_DIR / "tools"
    exe = venv / "bin" / "py-spy"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "py-spy"], check=True
        )
    return str(exe)


async def drive(calls: int, clients: int, out: Path, gil: bool = False) -> None:
    """Run the gateway under the profiler and make the calls."""
    with approver_dirs() as dirs:
        token = dirs.token()
        async with approver_serve(dirs) as served:
            opener = http_sessions(served.url, token)
            async with opener() as session:
                await sequential(session, "test__echo", 0, warmup=20)
            record = [py_spy(), "record", "--threads", "--rate", "500", "--format", "speedscope"]
            if gil:
                record.append("--gil")
            profiler = subprocess.Popen([*record, "-o", str(out), "--pid", str(served.pid)])

            async def one() -> None:
                async with opener() as session:
                    await sequential(session, "test__echo", calls, warmup=10)

            await asyncio.gather(*(one() for _ in range(clients)))
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            profiler.wait(60)


def summarize(out: Path, top: int = 25) -> None:
    """Print the frames with the most samples (self and total) from a speedscope file."""
    data = json.loads(out.read_text())
    frames = data["shared"]["frames"]
    total: Counter[str] = Counter()
    own: Counter[str] = Counter()
    count = 0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            count += weight
            names = {
                f"{frames[i]['name']} ({Path(frames[i].get('file', '?')).name}:{frames[i].get('line', 0)})"
                for i in stack
            }
            for name in names:
                total[name] += weight
            if stack:
                leaf = frames[stack[-1]]
                own[f"{leaf['name']} ({Path(leaf.get('file', '?')).name}:{leaf.get('line', 0)})"] += weight
    print(f"{count} samples; by self time:")
    for name, weight in own.most_common(top):
        print(f"  {weight / count:6.1%}  {name}")
    print("by total time:")
    for name, weight in total.most_common(top):
        print(f"  {weight / count:6.1%}  {name}")


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--gil", action="store_true", help="sample only the thread holding the GIL (CPU)")
    parser.add_argument("--out", type=Path, default=CACHE_DIR / "call-path.speedscope.json")
    args = parser.parse_args()
    asyncio.run(drive(args.calls, args.clients, args.out, args.gil))
    summarize(args.out)


if __name__ == "__main__":
    main()
