"""The way out: connections to the upstream MCP servers, stdio and Streamable HTTP."""
