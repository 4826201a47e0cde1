"""approver as the OAuth client of its remote upstreams (MCP authorization, OAuth 2.1).

The protocol itself is the MCP SDK's (``mcp.client.auth``); this package adds what a desktop
gateway needs around it: credentials kept in the system keyring (:mod:`.store`), a background
mode that never opens a browser and says "sign in needed" instead, with refresh before expiry
and after a 401 (:mod:`.provider`), the browser step of RFC 8252 (:mod:`.loopback`,
:mod:`.browser`), and the sign-in and sign-out a person starts (:mod:`.signin`).
"""
