"""The union of every upstream's tools, prompts and resources, under collision-free names.

Tools and prompts are exposed as ``<prefix>__<name>`` (see :mod:`approver.policy.naming`); resources
keep their own URIs. Each tool carries its risk (classifier plus the policy's overrides). The
catalog is rebuilt one upstream at a time when that upstream's lists change; a server whose names
would collide with another's is left out and its error is shown, never silently merged.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import mcp.types as types
from mcp.shared.exceptions import MCPError

from approver.calls import Risk, ToolRef
from approver.errors import ConfigError
from approver.policy.confusables import find_lookalikes
from approver.policy.file import PolicyFile
from approver.policy.naming import SEPARATOR, NameTable, UriTable, default_prefix, exposed_name
from approver.policy.pins import PinState, PinStore, definition, fingerprint
from approver.policy.risk import classify
from approver.upstream.connection import Upstream
from approver.upstream.status import UpstreamState, UpstreamUnavailable

logger = logging.getLogger(__name__)

LIST_PAGE_BYTES: Final = 512 * 1024
"""About how many bytes of tool definitions one ``tools/list`` page holds: the MCP Python client
refuses a server-sent event over 1 MiB, so a list of thousands of tools must come in pages."""

SIGN_IN_TOOL: Final = "sign_in_needed"
"""The stand-in tool listed for a server that waits for a sign-in (:meth:`Catalog.sign_in_tools`)."""

_Lists = tuple[list[types.Tool], list[types.Resource], list[types.ResourceTemplate], list[types.Prompt]]
_EMPTY: _Lists = ([], [], [], [])


@dataclass(frozen=True, slots=True)
class ToolEntry:
    """One upstream tool as clients see it, with its risk."""

    ref: ToolRef
    exposed: types.Tool
    """What clients are shown: the upstream's definition under the exposed name, or for a tool
    quarantined for a change, the definition the user last accepted."""
    risk: Risk
    pin: PinState = field(default_factory=PinState)
    """Whether the definition matched its pin at the last listing (see :meth:`Catalog.pin_check`)."""
    definition: dict[str, Any] | None = None
    """The pinned form of the upstream's definition (upstream name, server instructions)."""
    sha256: str | None = None
    """The definition's fingerprint, computed once per listing rather than on every call."""
    hidden: bool = False
    """Left out of client listings: new since its server was pinned, and not accepted yet."""


class Catalog:
    """Names, routes and risk for everything the upstreams offer."""

    def __init__(
        self, upstreams: Mapping[str, Upstream], policy: PolicyFile, pins: PinStore | None = None
    ) -> None:
        self._upstreams = dict(upstreams)
        self._policy = policy
        self.pins = pins
        """Where tool definitions are pinned; None turns pinning off (e.g. for a read-only listing)."""
        self._tool_names = NameTable("tool")
        self._prompt_names = NameTable("prompt")
        self._uris = UriTable()
        self._tools: dict[str, dict[str, ToolEntry]] = {}
        self._prompts: dict[str, list[types.Prompt]] = {}
        self._snapshot: dict[str, _Lists] = {}
        self._pins_version = -1
        """The pins' version the entries were built against (see :meth:`pins_changed`)."""
        self.errors: dict[str, str] = {}
        """Per server: why its catalog is left out (a name collision), if it is."""
        self._waiting_for_sign_in: set[str] = set()
        self.warnings: dict[str, str] = {}
        """Per server: what it lists oddly: tool names listed twice (the first definition is used),
        names changed to fit, resources it shares with another server (served by the first)."""

    def prefix(self, server: str) -> str:
        """The prefix a server's tools and prompts get."""
        configured = self._upstreams[server].config.prefix
        return default_prefix(server) if configured is None else configured

    # -- rebuilding ---------------------------------------------------------------------------

    def refresh(self, upstream: Upstream) -> set[str]:
        """Re-read one upstream's lists; returns which of tools/resources/prompts changed.

        An upstream that is no longer in the catalog (removed or replaced by a servers.json
        reload, and still reporting while it stops) changes nothing.
        """
        name = upstream.name
        if self._upstreams.get(name) is not upstream:
            return set()
        catalog = upstream.catalog
        live = upstream.session is not None
        tools = list(catalog.tools) if live else []
        resources = list(catalog.resources) if live else []
        templates = list(catalog.templates) if live else []
        prompts = list(catalog.prompts) if live else []
        before = self._snapshot.get(name, _EMPTY)
        after: _Lists = (tools, resources, templates, prompts)
        changed: set[str] = set()
        if before[0] != tools:
            changed.add("tools")
        if before[1] != resources or before[2] != templates:
            changed.add("resources")
        if before[3] != prompts:
            changed.add("prompts")
        waiting = upstream.state is UpstreamState.NEEDS_SIGN_IN
        if waiting != (name in self._waiting_for_sign_in):
            changed.add("tools")
            self._waiting_for_sign_in ^= {name}
        self._snapshot[name] = after
        try:
            self._rebuild(name, tools, resources, templates, prompts)
            self.errors.pop(name, None)
        except ConfigError as exc:
            self.errors[name] = str(exc)
            self._remove(name)
            return changed
        for other in [server for server in self.errors if server != name]:
            # A server left out for a clash may fit now that this one's names changed.
            with contextlib.suppress(ConfigError):
                self._rebuild(other, *self._snapshot[other])
                del self.errors[other]
                changed |= {"tools", "prompts"}
        return changed

    def add_upstream(self, upstream: Upstream) -> None:
        """Take in a server added to servers.json; its lists join once it has connected."""
        if upstream.name in self._upstreams:
            raise ValueError(f"the catalog already has a server named {upstream.name!r}")
        self._upstreams[upstream.name] = upstream

    def remove_upstream(self, server: str) -> set[str]:
        """Forget a server removed from servers.json (or about to be replaced).

        Returns which of tools/resources/prompts changed, so clients can be told.
        """
        if self._upstreams.pop(server, None) is None:
            return set()
        tools, resources, templates, prompts = self._snapshot.pop(server, _EMPTY)
        left_out = self.errors.pop(server, None) is not None
        self.warnings.pop(server, None)
        self._remove(server)
        changed: set[str] = set()
        if not left_out:
            if tools:
                changed.add("tools")
            if resources or templates:
                changed.add("resources")
            if prompts:
                changed.add("prompts")
        for other in list(self.errors):
            # A server left out for a clash with this one may fit now.
            with contextlib.suppress(ConfigError):
                self._rebuild(other, *self._snapshot[other])
                del self.errors[other]
                changed |= {"tools", "prompts"}
        return changed

    def reclassify(self) -> None:
        """Recompute every tool's risk, e.g. after the policy's risk_overrides changed."""
        for name, (tools, resources, templates, prompts) in list(self._snapshot.items()):
            if name not in self.errors:
                self._rebuild(name, tools, resources, templates, prompts)

    def _rebuild(
        self,
        server: str,
        tools: list[types.Tool],
        resources: list[types.Resource],
        templates: list[types.ResourceTemplate],
        prompts: list[types.Prompt],
    ) -> None:
        prefix = self.prefix(server)
        notes = _duplicates_note(tools)
        by_name: dict[str, types.Tool] = {}
        for tool in tools:
            by_name.setdefault(tool.name, tool)  # a later definition must not replace what was pinned
        tools = list(by_name.values())
        # Each table is unchanged by a failed add_server; the caller removes the server on error.
        self._tool_names.add_server(server, prefix, [tool.name for tool in tools])
        notes += _renamed_note(self._tool_names, server, prefix)
        self._prompt_names.add_server(server, prefix, [prompt.name for prompt in prompts])
        uris = [str(r.uri) for r in resources]
        owners = {uri: self._uris.server_for(uri) for uri in uris}
        shared = [uri for uri, owner in owners.items() if owner not in (None, server)]
        if shared:
            first = owners[shared[0]]
            notes.append(
                f"{len(shared)} resource(s) of {server!r} (e.g. {shared[0]!r}) are also listed by {first!r}; "
                f"reads of them go to {first!r}"
            )
        self._note(server, notes)
        self._uris.add_server(
            server, [u for u in uris if u not in shared], [t.uri_template for t in templates]
        )
        instructions = self._upstreams[server].instructions
        definitions = {tool.name: definition(tool, instructions) for tool in tools}
        states: dict[str, PinState] = {}
        if self.pins is not None:
            try:
                quarantine_new = self._upstreams[server].config.quarantine_new_tools
                states = self.pins.observe(server, definitions, quarantine_new=quarantine_new)
                self._pins_version = self.pins.version
            except Exception as exc:
                # Fail closed: a tool whose pin cannot be checked is treated as changed.
                logger.exception("checking the pins of %s failed", server)
                broken = PinState(quarantined=True, reason=f"approver could not check the tool's pin ({exc})")
                states = dict.fromkeys(definitions, broken)
        entries: dict[str, ToolEntry] = {}
        for tool in tools:
            exposed = self._tool_names.exposed(server, tool.name)
            assert exposed is not None
            ref = ToolRef(server=server, tool=tool.name, name=exposed, prefix=prefix)
            state = states.get(tool.name, PinState())
            entries[exposed] = ToolEntry(
                ref,
                _served(tool, state).model_copy(update={"name": exposed}),
                self._risk(ref, tool),
                state,
                definitions[tool.name],
                fingerprint(definitions[tool.name]),
                hidden=state.new,
            )
        self._tools[server] = entries
        self._prompts[server] = [
            prompt.model_copy(update={"name": self._prompt_names.exposed(server, prompt.name)})
            for prompt in prompts
        ]

    def _note(self, server: str, notes: list[str]) -> None:
        text = "; ".join(notes)
        if text and self.warnings.get(server) != text:
            logger.warning("server %s: %s", server, text)
        if text:
            self.warnings[server] = text
        else:
            self.warnings.pop(server, None)

    def _risk(self, ref: ToolRef, tool: types.Tool) -> Risk:
        annotations = (
            tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None
        )
        risk = classify(tool.name, tool.description, tool.input_schema, annotations)
        return self._policy.policy.apply_overrides(ref, risk)

    def _remove(self, server: str) -> None:
        self._tool_names.remove_server(server)
        self._prompt_names.remove_server(server)
        self._uris.remove_server(server)
        self._tools.pop(server, None)
        self._prompts.pop(server, None)

    def lookalikes(self, ref: ToolRef) -> list[str]:
        """One line per other tool whose name looks like ``ref``'s (Unicode confusables)."""
        names = {
            server: [entry.ref.tool for entry in entries.values()] for server, entries in self._tools.items()
        }
        return [group.describe() for group in find_lookalikes(names) if group.involves(ref.server, ref.tool)]

    def pins_changed(self) -> bool:
        """Rebuild every server's entries if the pins changed since (an accept); True if they did."""
        if self.pins is None:
            return False
        self.pins.refresh()
        if self.pins.version == self._pins_version:
            return False
        self.reclassify()
        self._pins_version = self.pins.version
        return True

    def pin_check(self, entry: ToolEntry) -> PinState:
        """The tool's pin state now: reads the pins file again if the user accepted a change."""
        if self.pins is None or entry.definition is None:
            return entry.pin
        return self.pins.check(entry.ref.server, entry.ref.tool, entry.definition, entry.sha256)

    # -- lookups ------------------------------------------------------------------------------

    def upstream(self, server: str) -> Upstream:
        """The upstream named ``server``; UpstreamUnavailable once it was removed from servers.json."""
        try:
            return self._upstreams[server]
        except KeyError:
            raise UpstreamUnavailable(f"upstream server {server!r} was removed from servers.json") from None

    def upstreams(self) -> list[Upstream]:
        """Every configured upstream, in configuration order."""
        return list(self._upstreams.values())

    def tools(self) -> list[ToolEntry]:
        """Every exposed tool, server by server, including those clients are not shown."""
        return [entry for server in self._upstreams for entry in self._tools.get(server, {}).values()]

    def listed_tools(self) -> list[types.Tool]:
        """What clients see in ``tools/list``: every tool but the unaccepted new ones."""
        return [entry.exposed for entry in self.tools() if not entry.hidden]

    def sign_in_tools(self) -> list[types.Tool]:
        """One stand-in tool per server waiting for a person to sign in, so a client learns why its tools
        are missing. Calling it is answered by :meth:`unavailable` with what to do; nothing is forwarded."""
        tools = []
        for upstream in self._upstreams.values():
            if upstream.name in self._waiting_for_sign_in and not self._tools.get(upstream.name):
                tools.append(
                    types.Tool(
                        name=exposed_name(self.prefix(upstream.name), SIGN_IN_TOOL),
                        description=(
                            f"Not a real tool: the MCP server {upstream.name!r} needs the user to sign in "
                            f"before its tools are available. Tell the user to run `approver login "
                            f"{upstream.name}` or to use Sign in in approver's Servers window."
                        ),
                        input_schema={"type": "object", "properties": {}},
                    )
                )
        return tools

    def unavailable(self, exposed: str) -> str | None:
        """Why ``exposed`` is not listed when it is a tool of a server that is down now, else None.

        A server that crashed or is restarting drops out of the listing, but it keeps the tools
        it last listed, so a call during its backoff can be told why instead of "unknown tool".
        """
        for upstream in self._upstreams.values():
            prefix = self.prefix(upstream.name)
            names = [tool.name for tool in upstream.catalog.tools] + [SIGN_IN_TOOL]
            if any(exposed_name(prefix, name) == exposed for name in names):
                try:
                    upstream.session_or_raise()
                except UpstreamUnavailable as exc:
                    return f"{exc}; its tools are back once it is ready"
        return None

    def tool(self, exposed: str) -> ToolEntry | None:
        """The tool exposed as ``exposed``, if any."""
        route = self._tool_names.resolve(exposed)
        if route is None:
            return None
        return self._tools.get(route[0], {}).get(exposed)

    def prompts(self) -> list[types.Prompt]:
        """Every exposed prompt."""
        return [prompt for server in self._upstreams for prompt in self._prompts.get(server, [])]

    def prompt(self, exposed: str) -> tuple[Upstream, str] | None:
        """(upstream, original prompt name) for an exposed prompt name."""
        route = self._prompt_names.resolve(exposed)
        if route is None:
            return None
        return self._upstreams[route[0]], route[1]

    def resources(self) -> list[types.Resource]:
        """Every upstream's resources, under their own URIs."""
        return [
            r
            for server in self._live()
            for r in self._snapshot[server][1]
            if self._uris.server_for(str(r.uri)) == server
        ]

    def templates(self) -> list[types.ResourceTemplate]:
        """Every upstream's resource templates."""
        return [t for server in self._live() for t in self._snapshot[server][2]]

    def _live(self) -> list[str]:
        return [s for s in self._upstreams if s in self._snapshot and s not in self.errors]

    def resource_owner(self, uri: str) -> Upstream | None:
        """The upstream that serves ``uri``: the one listing it, else the first whose template matches."""
        candidates = self._uris.candidates(uri)
        return self._upstreams[candidates[0]] if candidates else None

    def template_owner(self, template: str) -> Upstream | None:
        """The upstream that lists the URI template ``template`` (for completion)."""
        for server in self._upstreams:
            if template in self._uris.templates(server):
                return self._upstreams[server]
        return self.resource_owner(template)


def _served(tool: types.Tool, state: PinState) -> types.Tool:
    """The definition clients are shown: the last accepted one while a change waits for the user."""
    if state.accepted is None:
        return tool
    fields = {key: value for key, value in state.accepted.items() if key != "instructions"}
    try:
        return types.Tool.model_validate(fields, by_name=False)
    except ValueError:
        logger.warning(
            "the accepted definition of %s no longer validates; showing the current one", tool.name
        )
        return tool


_EXAMPLES: Final = 3
"""How many names a note quotes before it says "..."."""


def _duplicates_note(tools: list[types.Tool]) -> list[str]:
    """A note on tool names listed more than once, or none."""
    twice = [name for name, count in Counter(tool.name for tool in tools).items() if count > 1]
    if not twice:
        return []
    quoted = ", ".join(repr(name) for name in twice[:_EXAMPLES]) + (", ..." if len(twice) > _EXAMPLES else "")
    return [
        f"{len(twice)} tool name(s) are listed more than once ({quoted}); only the first definition of "
        "each is offered, and calls go to whatever the server runs under that name"
    ]


def _renamed_note(names: NameTable, server: str, prefix: str) -> list[str]:
    """A note on tool names that had to change to become valid exposed names, or none."""
    changed = [
        (upstream, exposed)
        for upstream, exposed in names.items(server)
        if exposed != (f"{prefix}{SEPARATOR}{upstream}" if prefix else upstream)
    ]
    if not changed:
        return []
    quoted = ", ".join(f"{upstream!r} as {exposed}" for upstream, exposed in changed[:_EXAMPLES])
    more = ", ..." if len(changed) > _EXAMPLES else ""
    return [
        f"{len(changed)} tool name(s) are not valid MCP tool names (or too long) and are exposed under "
        f"changed names: {quoted}{more}"
    ]


def list_page(
    tools: list[types.Tool], cursor: str | None, budget: int = LIST_PAGE_BYTES
) -> types.ListToolsResult:
    """One page of ``tools`` from ``cursor`` (``None``: the first), at most about ``budget`` bytes.

    A page holds at least one tool. The cursor is the index of the page's first tool; a cursor
    that is not one raises ``MCPError`` (invalid params).
    """
    start = 0
    if cursor:
        if not cursor.isdigit() or int(cursor) > len(tools):
            raise MCPError(
                types.INVALID_PARAMS, f"invalid cursor {cursor[:40]!r}: list the tools from the start"
            )
        start = int(cursor)
    end, size = start, 0
    while end < len(tools) and (end == start or size < budget):
        size += len(tools[end].model_dump_json(by_alias=True, exclude_none=True))
        end += 1
    if size > budget and end - start > 1:
        end -= 1  # the last one overflowed: it starts the next page
    return types.ListToolsResult(tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None)
