"""Tool pinning against rug pulls: remember each upstream tool's definition and notice changes.

The first listing of a server pins each tool's full definition (name, title, description,
input and output schemas, annotations, plus its server's instructions) by the SHA-256 of its
canonical JSON, so key order never matters. A later listing with a different definition leaves
the pin alone, keeps the new definition as *pending* and reports the tool as quarantined, with a
readable diff and the last accepted definition, until the user accepts the change (``approver
pins accept``). A tool that reappears under a new name with the same definition is recognised
as renamed and re-pinned under its new name. A tool that is new on a server whose tools were
pinned before is quarantined too (unless the server's ``quarantine_new_tools`` is off): it has
no accepted definition yet, so it waits, *unaccepted*, for the user; otherwise dropping a
trusted tool and adding ``get_weather_v2`` with a new description would slip past the pins.

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
    accepted: Definition | None = None
    """When quarantined for a change: the definition the user last accepted (clients are shown it)."""
    new: bool = False
    """Quarantined because it is new on a server whose tools were pinned before: nothing of it
    was accepted yet, so clients are not shown it."""


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
    new: bool = False
    """True for a tool new on its server since the first pinning, waiting to be accepted."""


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
        self._unaccepted: dict[str, dict[str, dict[str, Any]]] = {}
        """New tools of servers pinned before, by server and name: ``{sha256, definition, seen_at}``."""
        self.version = 0
        """Goes up whenever the pins change (a write here, or another process's write read back)."""
        self.error: str | None = None
        """Why the pins file cannot be trusted, or None when it reads fine."""
        self.on_changed: Callable[[str, str], None] | None = None
        """Called with (server, tool) when a tool's definition is first seen changed."""
        self._reload()

    # -- observing tools ---------------------------------------------------------------------

    def observe(
        self,
        server: str,
        definitions: Mapping[str, Definition],
        *,
        quarantine_new: bool = True,
        complete: bool = True,
    ) -> dict[str, PinState]:
        """Compare a server's current tools (name -> definition) with their pins.

        On the server's first pinning every tool is pinned. Later, a new tool is quarantined as
        unaccepted when ``quarantine_new`` is set, and pinned otherwise. With ``complete``,
        ``definitions`` is the server's whole listing: a new name whose definition matches the
        pin of a name no longer listed counts as a rename, and unaccepted tools no longer
        listed are forgotten.
        """
        with self._locked():
            self._reload()
            if self.error is not None:
                return {name: self._broken_state() for name in definitions}
            first = server not in self._servers
            pins = self._servers.setdefault(server, {})
            waiting = self._unaccepted.setdefault(server, {})
            now = self._clock()
            changed = False
            states: dict[str, PinState] = {}
            listed = set(definitions)
            # Built once per listing: looking for a rename per new tool made 10,000 tools take seconds.
            new_names = complete and any(name not in pins for name in definitions)
            orphans = _orphans(pins, listed) if new_names else {}
            newly_changed = []
            for name, current in definitions.items():
                if (
                    name not in pins
                    and not first
                    and quarantine_new
                    and not self._is_rename(current, orphans)
                ):
                    state, touched = self._observe_unaccepted(server, waiting, name, current, now)
                else:
                    state, touched = self._observe_one(server, pins, name, current, orphans, now)
                    touched |= waiting.pop(name, None) is not None
                states[name] = state
                changed |= touched
                if touched and state.quarantined:
                    newly_changed.append(name)
            if complete:
                for gone in [name for name in waiting if name not in listed]:
                    del waiting[gone]
                    changed = True
            if not waiting:
                del self._unaccepted[server]
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

    @staticmethod
    def _is_rename(current: Definition, orphans: dict[str, list[str]]) -> bool:
        return bool(orphans.get(nameless_fingerprint(current)))

    def _observe_unaccepted(
        self, server: str, waiting: dict[str, dict[str, Any]], name: str, current: Definition, now: float
    ) -> tuple[PinState, bool]:
        sha = fingerprint(current)
        touched = waiting.get(name, {}).get("sha256") != sha
        if touched:
            waiting[name] = {"sha256": sha, "definition": current, "seen_at": now}
        return self._new_state(server, name, current), touched

    @staticmethod
    def _new_state(server: str, name: str, current: Mapping[str, Any]) -> PinState:
        return PinState(
            quarantined=True,
            reason=(
                f"tool {name!r} is new on server {server!r} since approver pinned its tools (it may replace "
                "a trusted tool under a new name); the user must review and accept it"
            ),
            diff=definition_diff({}, current, f"{server}/{name}"),
            new=True,
        )

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
        waiting = self._unaccepted.get(server, {}).get(tool)
        if waiting is not None and waiting["sha256"] == (sha256 or fingerprint(current)):
            return self._new_state(server, tool, current)
        # One tool is not the whole listing: the other pins are not orphans, and no rename is seen.
        return self.observe(server, {tool: current}, complete=False)[tool]

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
            accepted=pin["definition"],
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
            waiting = self._unaccepted.get(server, {})
            if pins is None:
                raise ApproverError(f"no pinned tools for server {server!r}; `approver pins list` shows them")
            if tool is not None and tool not in pins and tool not in waiting:
                raise ApproverError(f"server {server!r} has no pinned tool {tool!r}")
            names = [tool] if tool is not None else [*pins, *waiting]
            accepted = []
            for name in names:
                new = waiting.pop(name, None)
                if new is not None:
                    pins[name] = {"sha256": new["sha256"], "definition": new["definition"]}
                    pins[name]["pinned_at"] = self._clock()
                    accepted.append(name)
                    continue
                pending = pins[name].pop("pending", None)
                if pending is not None:
                    pins[name].update(
                        sha256=pending["sha256"], definition=pending["definition"], pinned_at=self._clock()
                    )
                    accepted.append(name)
            if not waiting:
                self._unaccepted.pop(server, None)
            if accepted:
                self._write()
            return accepted

    def pins(self) -> list[PinInfo]:
        """Every pinned tool, server by server. Raises PinsFileError when the file cannot be read."""
        self._reload()
        if self.error is not None:
            raise PinsFileError(self.error)
        pinned = [
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
            for server, tools in self._servers.items()
            for name, pin in tools.items()
        ]
        new = [
            PinInfo(
                server=server,
                tool=name,
                sha256=entry["sha256"],
                pinned_at=entry["seen_at"],
                changed=True,
                diff=self._new_state(server, name, entry["definition"]).diff,
                renamed_from=None,
                pending_definition=entry["definition"],
                new=True,
            )
            for server, tools in self._unaccepted.items()
            for name, entry in tools.items()
        ]
        return sorted(pinned + new, key=lambda info: (info.server, info.tool))

    # -- the file ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the file again if another process changed it (cheap: one ``stat``)."""
        self._reload()

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
        self.version += 1
        if signature is None:
            self._servers, self._unaccepted, self.error = {}, {}, None
            return
        try:
            self._servers, self._unaccepted = _parse(self.path.read_text("utf-8"))
            self.error = None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            self._servers, self._unaccepted = {}, {}
            self.error = (
                f"the pins file {self.path} cannot be read ({exc}); every tool counts as changed until "
                "the file is fixed, or moved away to pin every tool afresh"
            )

    def _write(self) -> None:
        data: dict[str, Any] = {"version": PINS_VERSION, "servers": self._servers}
        if self._unaccepted:
            # Its own key, which an older approver ignores: to it these tools are simply unpinned.
            data["unaccepted"] = self._unaccepted
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private_text(self.path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        self._signature = self._stat_signature()
        self.version += 1

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


_Pins = dict[str, dict[str, dict[str, Any]]]


def _parse(text: str) -> tuple[_Pins, _Pins]:
    """The pinned and the unaccepted tools of a pins file, or ValueError naming what is wrong."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != PINS_VERSION:
        raise ValueError(f'expected an object with "version": {PINS_VERSION}')
    servers = data.get("servers")
    if not isinstance(servers, dict):
        raise ValueError('expected "servers" to be an object')
    unaccepted = data.get("unaccepted", {})
    if not isinstance(unaccepted, dict):
        raise ValueError('expected "unaccepted" to be an object')
    for key, group in (("servers", servers), ("unaccepted", unaccepted)):
        for server, tools in group.items():
            if not isinstance(tools, dict):
                raise ValueError(f"/{key}/{server}: expected an object")
            for name, pin in tools.items():
                _check_pin(f"/{key}/{server}/{name}", pin, "pinned_at" if key == "servers" else "seen_at")
                if key == "servers" and "pending" in pin:
                    _check_pin(f"/servers/{server}/{name}/pending", pin["pending"], "seen_at")
    return servers, unaccepted


def _check_pin(pointer: str, pin: Any, time_key: str) -> None:
    if not isinstance(pin, dict):
        raise ValueError(f"{pointer}: expected an object")
    if not isinstance(pin.get("sha256"), str) or not isinstance(pin.get("definition"), dict):
        raise ValueError(f"{pointer}: expected sha256 (a string) and definition (an object)")
    if not isinstance(pin.get(time_key), int | float):
        raise ValueError(f"{pointer}: expected {time_key} (a number)")
    if fingerprint(pin["definition"]) != pin["sha256"]:
        raise ValueError(f"{pointer}: sha256 does not match the definition")
