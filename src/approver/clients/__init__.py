"""MCP client integration: import a client's servers into approver, and route the client through it.

Qt-free. :mod:`~approver.clients.formats` knows each client's config file,
:mod:`~approver.clients.importing` adds its servers to ``servers.json``,
:mod:`~approver.clients.routing` rewrites the client to reach them through approver (and undoes
it), and :func:`~approver.clients.status.routing_status` tells whether a client is routed.
"""
