"""``approver policy check|simulate|rules`` as a real subprocess, over a real audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from approver.audit.log import AuditLog, DecisionRecord
from approver.config.paths import Paths

TIMEOUT = 60
ORIGIN = {
    "via": "dialog",
    "at": "2026-12-05T10:00:00Z",
    "call_id": "c-7",
    "client": "cursor",
    "tool": "git__git_add",
}
POLICY: dict[str, Any] = {
    "version": "1",
    "default": "deny",
    "risk_defaults": {"read": "allow", "write": "require_approval"},
    "tools": {
        "git__git_add": {
            "action": "require_approval",
            "conditions": [
                {
                    "clients": ["cursor"],
                    "when": {"files": {"equals": ["a"]}},
                    "action": "allow",
                    "origin": ORIGIN,
                }
            ],
        }
    },
}


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    dirs = ["--config-dir", str(tmp_path / "config"), "--data-dir", str(tmp_path / "data")]
    return subprocess.run(
        [sys.executable, "-m", "approver", *dirs, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


def setup(tmp_path: Path) -> Paths:
    paths = Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    paths.ensure()
    paths.policy_file.write_text(json.dumps(POLICY), "utf-8")
    with AuditLog(paths.audit_db) as log:
        for i, (client, tool, arguments, decision, decided_by, rule) in enumerate(
            [
                (
                    "cursor",
                    "git__git_add",
                    {"files": ["a"]},
                    "allow",
                    "policy",
                    'tools["git__git_add"].conditions[0]',
                ),
                ("cursor", "git__git_add", {"files": ["b"]}, "allow", "user", 'tools["git__git_add"]'),
                ("nightly", "git__git_status", {"repo": "/r"}, "allow", "policy", "risk_defaults.read"),
                ("nightly", "git__git_status", {"repo": "/r"}, "allow", "policy", "risk_defaults.read"),
            ]
        ):
            server, _, bare = tool.partition("__")
            log.record_decision(
                DecisionRecord(
                    f"c{i}",
                    client,
                    server,
                    tool,
                    bare,
                    "write" if bare == "git_add" else "read",
                    "low",
                    [],
                    json.dumps(arguments).encode(),
                    decision,
                    decided_by,
                    rule,
                    "",
                )
            )
    return paths


def test_check_warns_about_clients_that_have_no_token(tmp_path: Path) -> None:
    paths = setup(tmp_path)
    assert run(tmp_path, "token", "--client", "cursor").returncode == 0
    data = dict(POLICY, tools={**POLICY["tools"], "*": {"action": "deny", "clients": ["nightly-*"]}})
    paths.policy_file.write_text(json.dumps(data), "utf-8")

    result = run(tmp_path, "policy", "check")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok:")
    assert (
        "warning: tools[\"*\"]: no client matches 'nightly-*' has a token yet (clients: cursor, local)"
        in result.stderr
    )
    assert "cursor'" not in result.stderr


def test_simulate_prints_what_a_candidate_would_change_with_examples(tmp_path: Path) -> None:
    setup(tmp_path)
    candidate = tmp_path / "candidate.json"
    candidate.write_text(
        json.dumps(
            dict(
                POLICY,
                tools={**POLICY["tools"], "git__git_status": {"action": "deny", "clients": ["nightly"]}},
            )
        ),
        "utf-8",
    )

    result = run(tmp_path, "policy", "simulate", str(candidate), "--since", "1d")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Replayed 4 calls (") and lines[0].endswith(f"against {candidate}:")
    assert "  allowed -> denied: 2, for example:" in lines
    assert any('nightly git__git_status {"repo":"/r"}' in line for line in lines)
    assert "  unchanged: 2" in lines


def test_rules_lists_each_rule_with_its_origin_and_matches_and_removes_one(tmp_path: Path) -> None:
    paths = setup(tmp_path)

    listed = run(tmp_path, "policy", "rules")
    assert listed.returncode == 0, listed.stderr
    text = listed.stdout
    assert '  tools["git__git_add"]: require_approval, unless its condition holds' in text
    assert '    tools["git__git_add"].conditions[0]: allow for cursor when files equals ["a"]' in text
    assert "      from dialog on 2026-12-05 10:00 for call c-7 (git__git_add by cursor); 1 match" in text
    assert "  risk_defaults.read: allow tools classified read that no tools entry names" in text
    assert "    from file; 2 matches" in text

    removed = run(tmp_path, "policy", "rules", "--remove", 'tools["git__git_add"].conditions[0]')
    assert removed.returncode == 0, removed.stderr
    assert "conditions" not in json.loads(paths.policy_file.read_text("utf-8"))["tools"]["git__git_add"]
    as_json = json.loads(run(tmp_path, "policy", "rules", "--json").stdout)
    assert [rule["name"] for rule in as_json][:1] == ['tools["git__git_add"]']
    assert as_json[0]["matches"] == 1


def test_removing_a_rule_that_is_not_there_says_so(tmp_path: Path) -> None:
    setup(tmp_path)
    result = run(tmp_path, "policy", "rules", "--remove", 'tools["nope"]')
    assert result.returncode != 0
    assert 'no rule named tools["nope"]' in result.stderr
