"""What the gateway answers a client in place of an upstream's result: denials and errors.

A tool error (``isError: true``) is a result the model reads, so each text says plainly what
happened and, where there is one, what to do next.
"""

from __future__ import annotations

import mcp.types as types


def tool_error(text: str) -> types.CallToolResult:
    """A tool result with ``isError`` set that tells the agent ``text``."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
