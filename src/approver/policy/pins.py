"""Tool pinning against rug pulls: remember each upstream tool's definition and notice changes.

On first sight a tool's full definition (name, title, description, input and output schemas,
annotations, plus its server's instructions) is pinned by the SHA-256 of its canonical JSON, so
key order never matters. A later listing with a different definition leaves the pin alone, keeps
the new definition as *pending* and reports the tool as quarantined, with a readable diff, until
the user accepts the change (``approver pins accept``). A tool that reappears under a new name
with the same definition is recognised as renamed and re-pinned under its new name.

The pins live in one JSON file shared by the gateway and the command line: every change is a
locked read-modify-write, and a reader notices another process's write by the file's stat
signature. A file that cannot be read quarantines every tool and is never overwritten.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import mcp.types as types

from approver.audit.log import canonical_json
from approver.config.paths import write_private_text
from approver.errors import ApproverError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, writes stay atomic
    fcntl = None  # type: ignore[assignment]

PINS_VERSION: Final = 1
"""The format version written to the pins file."""

_DEFINITION_FIELDS: Final = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")

_UNREAD: Final = object()

Definition = dict[str, Any]
"""A tool's pinned definition: its wire-form fields plus ``instructions`` of its server."""


class PinsFileError(ApproverError):
    """The pins file cannot be read or has an unexpected shape; the message says what to do."""


@dataclass(frozen=True, slots=True)
class PinState:
    """Whether one tool may be trusted as pinned, and if not, why and what changed."""

    quarantined: bool = False
    reason: str = ""
    """Why the tool is quarantined, for the agent and the user (empty when it is not)."""
    diff: str = ""
    """A unified diff of the pinned definition against the current one (empty when unchanged)."""
    renamed_from: str | None = None
    """The tool's earlier name when it was recognised as renamed."""


@dataclass(frozen=True, slots=True)
class PinInfo:
    """One pinned tool as ``approver pins list`` shows it."""

    server: str
    tool: str
    sha256: str
    pinned_at: float
    changed: bool
    """True when a different definition was seen and waits for acceptance."""
    diff: str
    renamed_from: str | None
    pinned_definition: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """The definition approver trusts."""
    pending_definition: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """The changed definition waiting for acceptance (empty when unchanged)."""


def definition(tool: types.Tool, instructions: str | None) -> Definition:
    """The pinned form of ``tool``: its wire-form fields and the server's instructions."""
    wire = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
    result: Definition = {key: wire[key] for key in _DEFINITION_FIELDS if key in wire}
    if instructions is not None:
        result["instructions"] = instructions
    return result


def fingerprint(definition: Mapping[str, Any]) -> str:
    """SHA-256 of the definition's canonical JSON (key order does not matter)."""
    return hashlib.sha256(canonical_json(dict(definition))).hexdigest()


def nameless_fingerprint(definition: Mapping[str, Any]) -> str:
    """SHA-256 of the definition without its name, to recognise a renamed tool."""
    return fingerprint({key: value for key, value in definition.items() if key != "name"})


def definition_diff(old: Mapping[str, Any], new: Mapping[str, Any], label: str) -> str:
    """A unified diff of two definitions as pretty-printed JSON."""

    def lines(value: Mapping[str, Any]) -> list[str]:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    return "\n".join(
        difflib.unified_diff(lines(old), lines(new), f"{label} (pinned)", f"{label} (now)", lineterm="", n=2)
    )


def _orphans(pins: Mapping[str, dict[str, Any]], listed: set[str]) -> dict[str, list[str]]:
    """Pinned tools no longer listed, by nameless fingerprint, in pin order: a new name whose
    definition matches one of them is that tool renamed."""
    found: dict[str, list[str]] = {}
    for old_name, pin in pins.items():
        if old_name not in listed:
            found.setdefault(nameless_fingerprint(pin["definition"]), []).append(old_name)
    return found


class PinStore:
    """The pins file of one approver data directory."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._signature: tuple[int, int, int] | object | None = _UNREAD
        self._servers: dict[str, dict[str, dict[str, Any]]] = {}
        self.error: str | None = None
        """Why the pins file cannot be trusted, or None when it reads fine."""
        self.on_changed: Callable[[str, str], None] | None = None
        """Called with (server, tool) when a tool's definition is first seen changed."""
        self._reload()

    # -- observing tools ---------------------------------------------------------------------

    def observe(self, server: str, definitions: Mapping[str, Definition]) -> dict[str, PinState]:
        """Compare a server's current tools (name -> definition) with their pins, pinning new ones.

        ``definitions`` should be the server's whole listing: a new name whose definition matches
        the pin of a name no longer listed counts as a rename.
        """
        with self._locked():
            self._reload()
            if self.error is not None:
                return {name: self._broken_state() for name in definitions}
            pins = self._servers.setdefault(server, {})
            now = self._clock()
            changed = False
            states: dict[str, PinState] = {}
            listed = set(definitions)
            # Built once per listing: looking for a rename per new tool made 10,000 tools take seconds.
            orphans = _orphans(pins, listed) if any(name not in pins for name in definitions) else {}
            newly_changed = []
            for name, current in definitions.items():
                state, touched = self._observe_one(server, pins, name, current, orphans, now)
                states[name] = state
                changed |= touched
                if touched and state.quarantined:
                    newly_changed.append(name)
            if changed:
                self._write()
            elif not pins:
                del self._servers[server]
        if self.on_changed is not None:
            self._tell(self.on_changed, server, newly_changed)
        return states

    @staticmethod
    def _tell(listener: Callable[[str, str], None], server: str, names: list[str]) -> None:
        for name in names:
            try:
                listener(server, name)
            except Exception:
                # A listener is a display; it must not fail the listing that found the change.
                logging.getLogger(__name__).exception("pin change listener failed")

    def check(self, server: str, tool: str, current: Definition, sha256: str | None = None) -> PinState:
        """The live state of one tool at call time (re-reads the file if another process wrote it).

        ``sha256`` is ``fingerprint(current)`` when the caller already has it: this runs on every
        call, and hashing a tool's schemas each time would be wasted work.
        """
        self._reload()
        if self.error is not None:
            return self._broken_state()
        pin = self._servers.get(server, {}).get(tool)
        if pin is not None and pin["sha256"] == (sha256 or fingerprint(current)):
            return PinState(renamed_from=pin.get("renamed_from"))
        return self.observe(server, {tool: current})[tool]

    def _observe_one(
        self,
        server: str,
        pins: dict[str, dict[str, Any]],
        name: str,
        current: Definition,
        orphans: dict[str, list[str]],
        now: float,
    ) -> tuple[PinState, bool]:
        sha = fingerprint(current)
        pin = pins.get(name)
        if pin is None:
            candidates = orphans.get(nameless_fingerprint(current)) if orphans else None
            renamed = candidates.pop(0) if candidates else None
            if renamed is not None:
                del pins[renamed]
                pins[name] = {"sha256": sha, "definition": current, "pinned_at": now, "renamed_from": renamed}
                return PinState(renamed_from=renamed), True
            pins[name] = {"sha256": sha, "definition": current, "pinned_at": now}
            return PinState(), True
        if pin["sha256"] == sha:
            touched = pin.pop("pending", None) is not None  # changed back to what was pinned
            return PinState(renamed_from=pin.get("renamed_from")), touched
        touched = pin.get("pending", {}).get("sha256") != sha
        if touched:
            pin["pending"] = {"sha256": sha, "definition": current, "seen_at": now}
        return self._changed_state(server, name, pin), touched

    @staticmethod
    def _changed_state(server: str, name: str, pin: Mapping[str, Any]) -> PinState:
        return PinState(
            quarantined=True,
            reason=(
                f"the definition of tool {name!r} of server {server!r} changed since approver pinned it "
                "(a new description, annotations or schema); the user must review and accept the change"
            ),
            diff=definition_diff(pin["definition"], pin["pending"]["definition"], f"{server}/{name}"),
            renamed_from=pin.get("renamed_from"),
        )

    def _broken_state(self) -> PinState:
        return PinState(
            quarantined=True,
            reason=f"approver cannot verify this tool's pinned definition: {self.error}",
        )

    # -- the user's side ---------------------------------------------------------------------

    def accept(self, server: str, tool: str | None = None) -> list[str]:
        """Pin the pending definition of ``tool`` (every changed tool of ``server`` when None).

        Returns the names accepted. Raises PinsFileError when the file cannot be read, and
        ApproverError when the server or tool has no pins.
        """
        with self._locked():
            self._reload()
            if self.error is not None:
                raise PinsFileError(self.error)
            pins = self._servers.get(server)
            if pins is None:
                raise ApproverError(f"no pinned tools for server {server!r}; `approver pins list` shows them")
            if tool is not None and tool not in pins:
                raise ApproverError(f"server {server!r} has no pinned tool {tool!r}")
            names = [tool] if tool is not None else list(pins)
            accepted = []
            for name in names:
                pending = pins[name].pop("pending", None)
                if pending is not None:
                    pins[name].update(
                        sha256=pending["sha256"], definition=pending["definition"], pinned_at=self._clock()
                    )
                    accepted.append(name)
            if accepted:
                self._write()
            return accepted

    def pins(self) -> list[PinInfo]:
        """Every pinned tool, server by server. Raises PinsFileError when the file cannot be read."""
        self._reload()
        if self.error is not None:
            raise PinsFileError(self.error)
        return [
            PinInfo(
                server=server,
                tool=name,
                sha256=pin["sha256"],
                pinned_at=pin["pinned_at"],
                changed="pending" in pin,
                diff=self._changed_state(server, name, pin).diff if "pending" in pin else "",
                renamed_from=pin.get("renamed_from"),
                pinned_definition=pin["definition"],
                pending_definition=pin.get("pending", {}).get("definition", {}),
            )
            for server, tools in sorted(self._servers.items())
            for name, pin in sorted(tools.items())
        ]

    # -- the file ----------------------------------------------------------------------------

    def _stat_signature(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _reload(self) -> None:
        """Read the file again when it changed on disk since the last read or write."""
        signature = self._stat_signature()
        if signature == self._signature:
            return
        self._signature = signature
        if signature is None:
            self._servers, self.error = {}, None
            return
        try:
            self._servers = _parse(self.path.read_text("utf-8"))
            self.error = None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            self._servers = {}
            self.error = (
                f"the pins file {self.path} cannot be read ({exc}); every tool counts as changed until "
                "the file is fixed, or moved away to pin every tool afresh"
            )

    def _write(self) -> None:
        data = {"version": PINS_VERSION, "servers": self._servers}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private_text(self.path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        self._signature = self._stat_signature()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock across a read-modify-write, against other approver processes."""
        if fcntl is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)


def _parse(text: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The servers of a pins file, or ValueError naming what is wrong."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != PINS_VERSION:
        raise ValueError(f'expected an object with "version": {PINS_VERSION}')
    servers = data.get("servers")
    if not isinstance(servers, dict):
        raise ValueError('expected "servers" to be an object')
    for server, tools in servers.items():
        if not isinstance(tools, dict):
            raise ValueError(f"/servers/{server}: expected an object")
        for name, pin in tools.items():
            _check_pin(f"/servers/{server}/{name}", pin, "pinned_at")
            if "pending" in pin:
                _check_pin(f"/servers/{server}/{name}/pending", pin["pending"], "seen_at")
    return servers


def _check_pin(pointer: str, pin: Any, time_key: str) -> None:
    if not isinstance(pin, dict):
        raise ValueError(f"{pointer}: expected an object")
    if not isinstance(pin.get("sha256"), str) or not isinstance(pin.get("definition"), dict):
        raise ValueError(f"{pointer}: expected sha256 (a string) and definition (an object)")
    if not isinstance(pin.get(time_key), int | float):
        raise ValueError(f"{pointer}: expected {time_key} (a number)")
    if fingerprint(pin["definition"]) != pin["sha256"]:
        raise ValueError(f"{pointer}: sha256 does not match the definition")
