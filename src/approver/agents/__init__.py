"""A coding agent's own tools (Claude Code's Bash, Write, Edit, WebFetch, ...), decided through its hooks.

The agent runs these tools itself, not through MCP, so approver sees them only through the
agent's documented hook: ``approver hook claude-code`` (:mod:`approver.agents.hook`) hands each
call to the running gateway, which decides it with the same policy, risk classes, dialog, grants,
held calls and audit log as an MCP call (:mod:`approver.gateway.hooks`), and forwards nothing.
What the hook's JSON means is in :mod:`approver.agents.claude_code`, the built-in tools'
descriptions and input schemas in :mod:`approver.agents.builtin`, and their risk classes, read
from each call's input, in :mod:`approver.agents.risk`.
"""
