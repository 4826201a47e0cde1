"""``approver import``: client configs in their real formats become servers.json entries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keyring.errors
import pytest

from approver.clients.formats import CLIENTS, read_client_file
from approver.clients.importing import ImportFailed, ImportPlan, apply_import, plan_import
from approver.config.paths import Paths
from approver.config.secrets import SecretStore
from approver.config.servers import KEYRING_SERVICE, SecretResolver, load_servers
from approver.testing.harness import LockedKeyring, MemoryKeyring

DATA = Path(__file__).parent.parent / "data" / "clients"
HOME = Path("/home/ada")
GITHUB_TOKEN = "ghp_EXAMPLEexample0123456789EXAMPLEexam"


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    paths = Paths(tmp_path / "config", tmp_path / "data")
    paths.ensure()
    return paths


def plan(paths: Paths, client: str, file: Path, backend: object) -> ImportPlan:
    store = SecretStore(paths, backend)  # type: ignore[arg-type]
    return plan_import(read_client_file(CLIENTS[client], file), paths.servers_file, store, HOME)


def imported(paths: Paths, client: str, file: Path, backend: MemoryKeyring) -> ImportPlan:
    result = plan(paths, client, file, backend)
    apply_import(result, SecretStore(paths, backend))
    return result


def servers_json(paths: Paths) -> dict[str, object]:
    data: dict[str, object] = json.loads(paths.servers_file.read_text("utf-8"))["mcpServers"]
    return data


def test_claude_desktop_literal_secrets_go_to_the_keyring_and_servers_json_holds_only_references(
    paths: Paths,
) -> None:
    backend = MemoryKeyring()
    result = imported(paths, "claude-desktop", DATA / "claude_desktop_config.json", backend)

    assert result.added == ("filesystem", "github", "brave-search", "pricing")
    text = paths.servers_file.read_text("utf-8")
    assert GITHUB_TOKEN not in text and "BSAexample" not in text
    github = servers_json(paths)["github"]
    assert github == {
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-github"],
        "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "${keyring:github.GITHUB_PERSONAL_ACCESS_TOKEN}"},
    }
    assert backend.passwords[(KEYRING_SERVICE, "github.GITHUB_PERSONAL_ACCESS_TOKEN")] == GITHUB_TOKEN
    # Not secret-looking, so left as written:
    assert servers_json(paths)["pricing"]["env"] == {"LOG_LEVEL": "info"}  # type: ignore[index]
    loaded = load_servers(paths.servers_file, SecretResolver(keyring_get=backend.get_password))
    github_server = loaded.get("github")
    assert github_server is not None and github_server.env["GITHUB_PERSONAL_ACCESS_TOKEN"] == GITHUB_TOKEN
    # Claude Desktop expands nothing, so its "${USD}" reaches the server unchanged.
    pricing = loaded.get("pricing")
    assert pricing is not None and pricing.args == ("pricing-mcp", "--currency=${USD}")


def test_the_diff_shows_keyring_references_and_never_a_secret_value(paths: Paths) -> None:
    result = plan(paths, "claude-desktop", DATA / "claude_desktop_config.json", MemoryKeyring())
    diff = result.diff()
    assert diff.startswith("--- /dev/null\n+++ ")
    assert '+        "GITHUB_PERSONAL_ACCESS_TOKEN": "${keyring:github.GITHUB_PERSONAL_ACCESS_TOKEN}"' in diff
    assert GITHUB_TOKEN not in diff and GITHUB_TOKEN not in repr(result)
    assert not paths.servers_file.exists()


def test_claude_code_variables_and_defaults_become_env_references_that_approver_resolves(
    paths: Paths,
) -> None:
    result = imported(paths, "claude-code", DATA / "project.mcp.json", MemoryKeyring())

    assert result.added == ("notes",)
    assert servers_json(paths)["notes"] == {
        "command": "${env:NOTES_BIN:-notes-mcp}",
        "args": ["--root", "${env:HOME}/notes"],
        "env": {"NOTES_CACHE": "${env:XDG_CACHE_HOME:-/tmp}/notes"},
    }
    unset = load_servers(paths.servers_file, SecretResolver(environ={"HOME": "/h"})).get("notes")
    assert unset is not None
    assert (unset.command, unset.args, unset.env["NOTES_CACHE"]) == (
        "notes-mcp",
        ("--root", "/h/notes"),
        "/tmp/notes",
    )
    environ = {"HOME": "/h", "NOTES_BIN": "/opt/notes", "XDG_CACHE_HOME": "/c"}
    given = load_servers(paths.servers_file, SecretResolver(environ=environ)).get("notes")
    assert given is not None and (given.command, given.env["NOTES_CACHE"]) == ("/opt/notes", "/c/notes")
    # A URL that starts with a variable cannot be checked as a URL: reported, not imported.
    [(name, reason)] = result.skipped
    assert name == "api-server" and "/mcpServers/api-server/url" in reason


def test_sse_servers_clashes_and_project_scoped_servers_are_reported_not_imported(paths: Paths) -> None:
    paths.servers_file.write_text(json.dumps({"mcpServers": {"github": {"command": "gh-mcp"}}}), "utf-8")
    backend = MemoryKeyring()
    result = imported(paths, "claude-code", DATA / "claude.json", backend)

    assert result.added == ("sentry", "airtable", "linear")
    skipped = dict(result.skipped)
    assert "SSE transport" in skipped["asana"]
    assert "already has a different server named github" in skipped["github"]
    assert servers_json(paths)["github"] == {"command": "gh-mcp"}
    assert any("/home/ada/src/shop: postgres" in note for note in result.notes)
    # A bearer header keeps its scheme in the file; only the token goes to the keyring.
    assert servers_json(paths)["linear"]["headers"] == {  # type: ignore[index]
        "Authorization": "Bearer ${keyring:linear.Authorization}"
    }
    assert backend.passwords[(KEYRING_SERVICE, "linear.Authorization")] == "lin_api_EXAMPLE0123456789abcdef"
    # "Bearer ${GITHUB_PAT}" is a reference, not a literal secret: nothing to move.
    assert [m.name for m in result.secrets] == ["airtable.AIRTABLE_API_KEY", "linear.Authorization"]


def test_importing_the_same_file_twice_changes_nothing_the_second_time(paths: Paths) -> None:
    backend = MemoryKeyring()
    imported(paths, "claude-desktop", DATA / "claude_desktop_config.json", backend)
    before = paths.servers_file.read_bytes()

    again = plan(paths, "claude-desktop", DATA / "claude_desktop_config.json", backend)

    assert not again.changed and again.diff() == ""
    assert again.unchanged == ("filesystem", "github", "brave-search", "pricing")
    apply_import(again, SecretStore(paths, backend))
    assert paths.servers_file.read_bytes() == before


def test_a_different_secret_already_in_the_keyring_under_the_same_name_is_kept(paths: Paths) -> None:
    backend = MemoryKeyring()
    backend.set_password(KEYRING_SERVICE, "github.GITHUB_PERSONAL_ACCESS_TOKEN", "someone else's")
    imported(paths, "claude-desktop", DATA / "claude_desktop_config.json", backend)

    env = servers_json(paths)["github"]["env"]  # type: ignore[index]
    assert env == {"GITHUB_PERSONAL_ACCESS_TOKEN": "${keyring:github.GITHUB_PERSONAL_ACCESS_TOKEN-2}"}
    assert backend.passwords[(KEYRING_SERVICE, "github.GITHUB_PERSONAL_ACCESS_TOKEN")] == "someone else's"


def test_vscode_inputs_become_keyring_references_and_the_server_waits_disabled(
    paths: Paths, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(DATA / "vscode-project", project)
    result = imported(paths, "vscode", project / ".vscode" / "mcp.json", MemoryKeyring())

    assert result.added == ("perplexity", "fetch", "github")
    assert servers_json(paths)["perplexity"] == {
        "command": "npx",
        "args": ["-y", "server-perplexity-ask"],
        "env": {"PERPLEXITY_API_KEY": "${keyring:vscode-input-perplexity-key}"},
        "disabled": True,
    }
    assert any("approver secret set vscode-input-perplexity-key" in note for note in result.notes)
    assert servers_json(paths)["github"] == {"type": "http", "url": "https://api.githubcopilot.com/mcp/"}


def test_a_vscode_input_already_in_the_keyring_imports_the_server_enabled(
    paths: Paths, tmp_path: Path
) -> None:
    backend = MemoryKeyring()
    backend.set_password(KEYRING_SERVICE, "vscode-input-perplexity-key", "pplx-EXAMPLE")
    imported(paths, "vscode", DATA / "vscode-project" / ".vscode" / "mcp.json", backend)
    assert "disabled" not in servers_json(paths)["perplexity"]  # type: ignore[operator]


def test_cursor_workspace_and_home_placeholders_resolve_in_a_project_file(
    paths: Paths, tmp_path: Path
) -> None:
    project = tmp_path / "shop"
    (project / ".cursor").mkdir(parents=True)
    shutil.copy(DATA / "cursor_mcp.json", project / ".cursor" / "mcp.json")
    backend = MemoryKeyring()
    result = imported(paths, "cursor", project / ".cursor" / "mcp.json", backend)

    assert servers_json(paths)["project-docs"] == {
        "command": "node",
        "args": [f"{project}/tools/docs-mcp.js", "--home", "/home/ada/.docs"],
    }
    assert any("envFile" in note for note in result.notes)
    assert servers_json(paths)["supabase"]["env"] == {  # type: ignore[index]
        "SUPABASE_ACCESS_TOKEN": "${env:SUPABASE_ACCESS_TOKEN}"
    }
    assert servers_json(paths)["context7"]["headers"] == {  # type: ignore[index]
        "CONTEXT7_API_KEY": "${keyring:context7.CONTEXT7_API_KEY}"
    }


def test_windsurf_server_urls_and_disabled_servers_carry_over(paths: Paths) -> None:
    result = imported(paths, "windsurf", DATA / "windsurf_mcp_config.json", MemoryKeyring())
    assert servers_json(paths)["userjot"] == {
        "type": "http",
        "url": "https://api.userjot.com/v1/mcp",
        "headers": {"Authorization": "Bearer ${env:USERJOT_API_TOKEN}"},
    }
    assert servers_json(paths)["figma"]["disabled"] is True  # type: ignore[index]
    assert any("disabledTools" in note for note in result.notes)


def test_a_locked_keyring_stops_the_import_before_anything_is_written(paths: Paths) -> None:
    result = plan(paths, "claude-desktop", DATA / "claude_desktop_config.json", LockedKeyring())
    assert any("locked" in note for note in result.notes)

    with pytest.raises(ImportFailed, match=r"locked.*Nothing was written"):
        apply_import(result, SecretStore(paths, LockedKeyring()))
    assert not paths.servers_file.exists()


class FailsOnSecondSet(MemoryKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        if self.passwords:
            raise keyring.errors.PasswordSetError("disk full")
        super().set_password(service, username, password)


def test_a_keyring_failing_halfway_leaves_neither_servers_json_nor_the_first_secret(paths: Paths) -> None:
    paths.servers_file.write_text('{"mcpServers": {}}\n', "utf-8")
    backend = FailsOnSecondSet()
    result = plan(paths, "claude-desktop", DATA / "claude_desktop_config.json", backend)

    with pytest.raises(ImportFailed, match=r"servers\.json is unchanged"):
        apply_import(result, SecretStore(paths, backend))
    assert paths.servers_file.read_text("utf-8") == '{"mcpServers": {}}\n'
    assert backend.passwords == {}


def test_the_entry_approver_install_wrote_is_not_imported_back(paths: Paths, tmp_path: Path) -> None:
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "approver": {"command": "/usr/bin/approver", "args": ["connect", "--client", "x"]}
                }
            }
        )
    )
    result = plan(paths, "claude-desktop", config, MemoryKeyring())
    assert not result.changed and any("approver itself" in note for note in result.notes)


def test_remote_servers_are_imported_to_sign_in_with_claude_codes_oauth_client_id_carried_over(
    paths: Paths, tmp_path: Path
) -> None:
    source = tmp_path / "claude.json"
    source.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "linear": {"type": "http", "url": "https://mcp.linear.app/mcp"},
                    "gh": {
                        "type": "http",
                        "url": "https://api.githubcopilot.com/mcp/",
                        "oauth": {"clientId": "Iv1.abc", "callbackPort": 33418, "extra": 1},
                    },
                }
            }
        ),
        "utf-8",
    )
    result = imported(paths, "claude-code", source, MemoryKeyring())
    assert servers_json(paths)["gh"] == {
        "type": "http",
        "url": "https://api.githubcopilot.com/mcp/",
        "oauth": {"clientId": "Iv1.abc", "callbackPort": 33418},
    }
    servers = load_servers(paths.servers_file, SecretResolver())
    assert [s.name for s in servers.servers if s.signs_in] == ["linear", "gh"]
    notes = "\n".join(result.notes)
    assert "oauth.extra; left out" in notes and '"clientSecret": "${keyring:NAME}"' in notes
