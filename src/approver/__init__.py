"""approver: a local human-in-the-loop firewall for AI agents (an MCP gateway)."""

__version__ = "0.1.0"
