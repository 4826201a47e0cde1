"""``approver import CLIENT``: add a client's MCP servers to approver's ``servers.json``.

:func:`plan_import` reads the client's file and works out the whole change without writing
anything: the entries to add, the ones already there, the ones left out (with the reason), the
literal secrets to move into the keyring and the diff of ``servers.json``. :func:`apply_import`
stores every secret first and writes ``servers.json`` only when all of them are stored, so a
locked or missing keyring leaves nothing half-written.

A server whose name is already in ``servers.json`` with a different entry is reported as a
clash and left out, never overwritten.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from approver.clients.formats import ClientFile
from approver.clients.translate import SECRET_SLOT, Skip, Translated, is_approver_entry, translate_entry
from approver.clients.variables import Context, input_secret_name
from approver.config.schema import validate
from approver.config.secrets import NO_KEYRING_HELP, SecretsError, SecretStore
from approver.config.servers import read_servers_data, save_servers
from approver.errors import ApproverError, ConfigError

_NOT_IN_NAME: Final = re.compile(r"[^A-Za-z0-9_.-]")


class ImportFailed(ApproverError):
    """The import stopped before writing ``servers.json``; the message says why and what to do."""


@dataclass(frozen=True)
class SecretMove:
    """A literal secret that goes into the keyring as ``name``."""

    name: str
    value: str = field(repr=False)
    where: str
    """Which server and key it came from, e.g. ``github: env.GITHUB_TOKEN``."""
    stored: bool
    """True when the keyring already holds this very value under ``name``."""


@dataclass(frozen=True)
class ImportPlan:
    """Everything an import would change; nothing is written until :func:`apply_import`."""

    source: ClientFile
    servers_file: Path
    before: str | None
    document: dict[str, Any]
    added: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    secrets: tuple[SecretMove, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """True when ``servers.json`` would change."""
        return bool(self.added)

    @property
    def after(self) -> str:
        """The text ``servers.json`` would have (as :func:`~approver.config.servers.save_servers` writes)."""
        return json.dumps(self.document, indent=2, ensure_ascii=False) + "\n"

    def diff(self) -> str:
        """A unified diff of ``servers.json``; secrets never appear in it, only their references."""
        return unified_diff(self.before, self.after if self.changed else self.before, self.servers_file)


def unified_diff(before: str | None, after: str | None, path: Path) -> str:
    """A unified diff between two versions of ``path`` (None: the file does not exist)."""
    lines = difflib.unified_diff(
        (before or "").splitlines(keepends=True),
        (after or "").splitlines(keepends=True),
        fromfile=str(path) if before is not None else "/dev/null",
        tofile=str(path) if after is not None else "/dev/null",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def server_name(name: str) -> str:
    """``name`` made into a valid approver server name (invalid characters become ``-``)."""
    return _NOT_IN_NAME.sub("-", name)[:64] or "server"


def plan_import(source: ClientFile, servers_file: Path, store: SecretStore, home: Path) -> ImportPlan:
    """Work out what importing ``source`` into ``servers_file`` would do.

    Raises ConfigError when ``servers_file`` is invalid. Never writes and never stores a secret;
    it reads the keyring only to reuse a secret that is already stored under the same name.
    """
    file = str(servers_file)
    try:
        before: str | None = servers_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        before = None
    except OSError as exc:
        raise ConfigError(file, "", f"cannot be read: {exc.strerror or exc}") from None
    document = read_servers_data(servers_file)
    table: dict[str, Any] = document.setdefault("mcpServers", {})
    keyring = _Keyring(store)
    context = Context(home=home, workspace=source.workspace)
    added: list[str] = []
    unchanged: list[str] = []
    skipped: list[tuple[str, str]] = []
    moves: list[SecretMove] = []
    notes: list[str] = []
    for original, entry in source.servers.items():
        if is_approver_entry(entry):
            notes.append(f"{original}: this is approver itself; not imported")
            continue
        name = server_name(original)
        if name != original:
            notes.append(f"{original}: imported as {name} (server names use letters, digits, '_', '.', '-')")
        try:
            translated = translate_entry(source.client, original, entry, context)
            entry_moves = _place_secrets(name, translated, keyring, moves)
            _place_inputs(name, translated, keyring, notes)
            validate({"mcpServers": {name: translated.entry}}, "servers", str(source.path))
        except (Skip, ConfigError) as exc:
            skipped.append((original, str(exc)))
            continue
        notes.extend(translated.notes)
        if name in table:
            if table[name] == translated.entry:
                unchanged.append(name)
            else:
                skipped.append(
                    (
                        original,
                        f"servers.json already has a different server named {name}; rename one of them",
                    )
                )
            continue
        table[name] = translated.entry
        added.append(name)
        moves.extend(entry_moves)
    notes.extend(_project_scope_note(source))
    if keyring.problem:
        notes.append(f"the keyring could not be read: {keyring.problem}")
    return ImportPlan(
        source,
        servers_file,
        before,
        document,
        tuple(added),
        tuple(unchanged),
        tuple(skipped),
        tuple(moves),
        tuple(notes),
    )


class _Keyring:
    """Looks secrets up once each; a keyring that cannot be read counts as empty, with the reason."""

    def __init__(self, store: SecretStore) -> None:
        self._store = store
        self._cache: dict[str, str | None] = {}
        self.problem: str | None = None

    def get(self, name: str) -> str | None:
        if name not in self._cache:
            try:
                self._cache[name] = None if self.problem else self._store.get(name)
            except SecretsError as exc:
                self.problem = str(exc)
                self._cache[name] = None
        return self._cache[name]


def _place_secrets(
    server: str, translated: Translated, keyring: _Keyring, taken: list[SecretMove]
) -> list[SecretMove]:
    """Pick a keyring name for each literal secret and put its reference in the entry."""
    moves: list[SecretMove] = []
    for secret in translated.secrets:
        base = server_name(f"{server}.{secret.key}")[:60]
        used = {m.name: m.value for m in (*taken, *moves)}
        for attempt in range(1, 100):
            name = base if attempt == 1 else f"{base}-{attempt}"
            stored = keyring.get(name)
            earlier = used.get(name)
            if earlier is not None and earlier != secret.value:
                continue
            if stored is None or stored == secret.value:
                break
        else:
            raise Skip(f"no free keyring name for {secret.table}.{secret.key}")
        if earlier is None:
            moves.append(
                SecretMove(name, secret.value, f"{server}: {secret.table}.{secret.key}", stored is not None)
            )
        values: dict[str, str] = translated.entry[secret.table]
        values[secret.key] = values[secret.key].replace(SECRET_SLOT, f"${{keyring:{name}}}", 1)
    return moves


def _place_inputs(server: str, translated: Translated, keyring: _Keyring, notes: list[str]) -> None:
    """A VS Code input not yet in the keyring leaves the server disabled until the user stores it."""
    missing = sorted(
        input_secret_name(i) for i in translated.inputs if keyring.get(input_secret_name(i)) is None
    )
    if not missing:
        return
    translated.entry["disabled"] = True
    commands = "; ".join(f"approver secret set {name}" for name in missing)
    notes.append(
        f"{server}: VS Code prompts for {', '.join(sorted(translated.inputs))} when it starts this server; "
        f"approver reads them from the keyring instead. The server is imported disabled: run {commands}, "
        f'then remove "disabled": true from {server} in servers.json'
    )


def _project_scope_note(source: ClientFile) -> list[str]:
    projects = source.data.get("projects") if source.client.name == "claude-code" else None
    if not isinstance(projects, dict):
        return []
    scoped = [
        f"{path}: {name}"
        for path, project in projects.items()
        if isinstance(project, dict) and isinstance(project.get("mcpServers"), dict)
        for name in project["mcpServers"]
    ]
    if not scoped:
        return []
    return [
        f"{len(scoped)} project-scoped server(s) in {source.path} were not imported ({'; '.join(scoped)}); "
        "add them to servers.json by hand if approver should guard them too"
    ]


def apply_import(plan: ImportPlan, store: SecretStore) -> None:
    """Store every secret, then write ``servers.json``; on any failure nothing is written.

    Raises ImportFailed naming the problem. Secrets stored before a failure are removed again.
    """
    if not plan.changed:
        return
    new = [move for move in plan.secrets if not move.stored]
    if new and not store.available:
        raise ImportFailed(
            f"{len(new)} literal secret(s) must move into the keyring ({', '.join(m.where for m in new)}), "
            f"but {NO_KEYRING_HELP}. Nothing was written."
        )
    saved: list[str] = []
    try:
        for move in new:
            store.save(move.name, move.value)
            saved.append(move.name)
        current = plan.servers_file.read_text(encoding="utf-8") if plan.servers_file.exists() else None
        if current != plan.before:
            raise ImportFailed(f"{plan.servers_file} changed while importing; run the import again")
        save_servers(plan.servers_file, plan.document)
    except (SecretsError, ConfigError, OSError) as exc:
        _forget(store, saved)
        raise ImportFailed(f"{exc}. Nothing was written: servers.json is unchanged.") from None
    except ImportFailed:
        _forget(store, saved)
        raise


def _forget(store: SecretStore, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(SecretsError):  # best effort: the failed keyring may refuse this too
            store.delete(name)
