"""Risk classification of MCP tools from their name, description, input schema and annotations.

`classify` decides what a tool does to the world (its `RiskClass`) and how bad a mistaken call
could be (its `RiskLevel`), and says why in short sentences. The tool's name weighs most, its
verb above all, then the description, then the input schema's field names. Annotations come from
the upstream server and are untrusted: they may raise the risk, never lower what the words say,
and when they contradict the words the result is flagged as a conflict.

Everything here is precomputed at import; a call only tokenises and looks words up in tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from approver.calls import Risk, RiskClass, RiskLevel

_READ, _WRITE, _EXECUTE = RiskClass.READ, RiskClass.WRITE, RiskClass.EXECUTE
_DESTRUCTIVE, _FINANCIAL, _OTHER = RiskClass.DESTRUCTIVE, RiskClass.FINANCIAL, RiskClass.OTHER


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_DANGER: Final[Mapping[RiskClass, int]] = {
    _OTHER: 0,
    _READ: 1,
    _WRITE: 2,
    _EXECUTE: 3,
    _DESTRUCTIVE: 4,
    _FINANCIAL: 5,
}
"""Order for "the stronger class": used to pick among several verbs and to settle conflicts."""

_BASE_LEVEL: Final[Mapping[RiskClass, RiskLevel]] = {
    _OTHER: RiskLevel.LOW,
    _READ: RiskLevel.LOW,
    _WRITE: RiskLevel.MEDIUM,
    _EXECUTE: RiskLevel.HIGH,
    _DESTRUCTIVE: RiskLevel.HIGH,
    _FINANCIAL: RiskLevel.HIGH,
}

_VERBS: Final[Mapping[RiskClass, str]] = {
    _READ: """get list read search find fetch show describe view retrieve lookup count check
        inspect browse download explain analyze analyse summarize preview print return display
        validate verify compare diff aggregate convert peek grep locate discover introspect
        open select query""",
    _WRITE: """create add update edit write set insert put post send modify rename move copy
        upload commit push pull merge comment assign unassign label fork star unstar publish
        save append patch replace enable disable stop pause resume restore scale apply tag
        invite schedule reply react archive unarchive close reopen approve submit import sync
        mark pin unpin clone checkout switch stage unstage link attach detach configure
        register transition dismiss cancel rebase init initialize upsert store record remember
        draft forward share rollout rollback mute unmute follow unfollow acknowledge resize
        finalize accept reject grant restart rotate transfer""",
    _EXECUTE: """execute exec run eval evaluate invoke trigger launch start spawn call click
        navigate goto hover scroll drag press fill deploy build install interact rerun compile
        automate""",
    _DESTRUCTIVE: """delete remove drop destroy purge truncate wipe erase terminate kill reset
        revoke uninstall prune discard rm rmdir overwrite flush nuke deprovision decommission
        expunge shred cleanup clean""",
    _FINANCIAL: "pay refund purchase buy payout bill invoice withdraw deposit donate charge",
    _OTHER: "echo ping wait sleep think connect disconnect login logout authenticate noop hello",
}
"""Verbs by class, as they appear in tool names and at the start of descriptions."""

_VERB_CLASS: Final[Mapping[str, RiskClass]] = {
    verb: risk_class for risk_class, words in _VERBS.items() for verb in words.split()
}
_BROWSER_ONLY_VERBS: Final = frozenset({"type", "go", "handle"})
"""Words that are verbs only when a browser is being driven (``browser_type``)."""
_BROWSER_ACTIONS: Final = _words(
    "click navigate goto go hover scroll drag press fill type select open close resize upload handle"
)
"""Browser verbs that act on the page rather than running code: execute, at medium level."""
_HTTP_METHOD_VERBS: Final = frozenset({"post", "put"})
"""Generated API tools (``API-post-search``) name the HTTP method first; a later verb wins."""


def _lead_forms() -> dict[str, str]:
    forms: dict[str, str] = {}
    for verb in _VERB_CLASS:
        variants = [verb, verb + "s", verb + "es"]
        if verb.endswith("y") and verb[-2:-1] not in ("a", "e", "o", "u"):
            variants.append(verb[:-1] + "ies")
        for form in variants:
            forms.setdefault(form, verb)
    for verb in _BROWSER_ONLY_VERBS:
        forms.setdefault(verb, verb)
        forms.setdefault(verb + "s", verb)
    return forms


_LEAD_FORMS: Final[Mapping[str, str]] = _lead_forms()
"""Imperative and third-person forms ("show", "shows") of every verb, mapped to the verb."""

_FILLER: Final = _words("this tool will can use to you lets let allows allow used please it simply")
_CONNECTORS: Final = frozenset({",", "/", "or", "and"})
_LEAD_WINDOW: Final = 4
"""How many words into the first sentence the description's verb may appear."""

_READ_NOUNS: Final = _words(
    """status info information logs log history tree snapshot screenshot metadata details
    schema stats statistics usage version whoami me summary overview docs documentation
    changelog blame"""
)
"""Nouns that name something to look at, for verb-less names such as ``git_status``."""
_EXEC_NOUNS: Final = _words(
    "shell bash terminal repl sql exec eval script python javascript cmd powershell zsh"
)
"""Nouns that name an interpreter, for verb-less names such as ``bash``."""
_AUX_NOUNS: Final = _words(
    "session sessions connection connections feedback thought thoughts thinking help heartbeat"
)
"""Objects that make a tool auxiliary: closing a session changes nothing the user owns."""
_SQL_NOUNS: Final = _words("query queries sql statement migration migrations")
"""Objects that make a writing verb run SQL (``write_query``, ``apply_migration``)."""
_RUN_VERBS: Final = _words("query run execute exec")
_SQL_WORDS: Final = _words("sql postgres postgresql mysql sqlite mariadb ddl dml")
_RELATION_NOUNS: Final = _words(
    "label labels tag tags reaction reactions assignee assignees reviewer reviewers star watcher"
)
"""Things attached to an object: removing one is a reversible edit, not a deletion."""

_BROWSER_NAME_WORDS: Final = _words("browser puppeteer playwright selenium chrome webpage tab tabs")
_BROWSER_TEXT: Final = re.compile(r"\bbrowser\b|\bweb ?page\b|\bpuppeteer\b|\bplaywright\b")
_READ_ONLY_TEXT: Final = re.compile(r"\bread[- ]?only\b|\bselect (?:query|queries|statements?)\b")

_FIN_STRONG: Final = _words(
    """refund refunds payout payouts invoice invoices subscription subscriptions payment
    payments billing purchase purchases charge charges dispute disputes coupon coupons"""
)
"""Money words that make any change financial (``cancel_subscription``)."""
_FIN_WEAK: Final = _words(
    "order orders transfer transfers price prices transaction transactions balance discount fee fees"
)
"""Money words only when money is visibly involved (a currency field, "cents" in the text)."""
_MONEY_WORDS: Final = _words("money funds currency cents usd eur gbp dollars amount")
_AMOUNT_AND_CURRENCY: Final = frozenset({"amount", "currency"})
_MOVES_MONEY: Final = _words(
    "pay refund refunds payout payouts transfer transfers charge charges purchase buy withdraw"
)

_CRITICAL_TARGETS: Final = _words(
    """database databases db bucket buckets repository repositories repo repos volume
    volumes collection collections table tables cluster clusters project projects account
    accounts organization organizations schema keyspace all many bulk everything recursive"""
)
"""Deleting one of these, or many things at once, is hard or impossible to undo."""
_IRREVERSIBLE_TEXT: Final = re.compile(
    r"\bpermanently\b|\birreversibl[ey]\b|\bcannot be undone\b|\bunrecoverable\b|\brm -rf\b"
)
_CAUTION_TEXT: Final = re.compile(r"\boverwrites?\b|\bwith caution\b|\bwarning\b")
"""Descriptions that warn about their own writes raise the level to high."""

_EXEC_FIELDS: Final = _words(
    """command commands cmd script code sql shell expression javascript js python
    python_code cli_command source_code"""
)
"""Input fields that carry something to run; matched on the whole field name."""
_EXEC_FIELD_TOKENS: Final = frozenset({"sql", "command", "cmd", "script", "shell"})

_NAME_TOKEN: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_TEXT_TOKEN: Final = re.compile(r"[a-z0-9]+|[,/|]")
_SENTENCE_END: Final = re.compile(r"[.!?](?:\s|$)|\n")


def tokenize_name(name: str) -> tuple[str, ...]:
    """Lower-case words of a tool name, after any ``server__`` prefix.

    Splits snake_case, kebab-case, dotted names, camelCase and acronyms:
    ``github__deleteRepo`` gives ``("delete", "repo")``, ``API-post-search`` gives
    ``("api", "post", "search")``.
    """
    tool = name.rsplit("__", 1)[-1]
    return tuple(word.lower() for word in _NAME_TOKEN.findall(tool))


def name_verb(name: str) -> str | None:
    """The verb a tool's name is built on (``"delete"`` for ``github__deleteRepo``), or None.

    A generated API tool's HTTP method (``API-post-search``) gives way to a later verb.
    """
    words = tokenize_name(name)
    for index, word in enumerate(words):
        if word in _VERB_CLASS:
            if word in _HTTP_METHOD_VERBS:
                return next((w for w in words[index + 1 :] if w in _VERB_CLASS), word)
            return word
    return None


@dataclass(frozen=True, slots=True)
class _Tool:
    """One tool's words, ready for the rules."""

    name: tuple[str, ...]
    text: str
    words: tuple[str, ...]
    lead: tuple[str, ...]
    """The verbs the description's first sentence starts with, as written ("lists", "create")."""
    fields: tuple[str, ...]
    field_words: frozenset[str]
    browser: bool
    sql: str | None
    """Why the tool looks like it speaks SQL, or None."""


def _read_tool(name: str, description: str | None, schema: Mapping[str, Any] | None) -> _Tool:
    name_words = tokenize_name(name)
    text = (description or "").lower()
    end = _SENTENCE_END.search(text)
    fields = _field_names(schema)
    field_words = frozenset(word for field in fields for word in tokenize_name(field))
    words = tuple(_TEXT_TOKEN.findall(text))
    first_sentence = tuple(_TEXT_TOKEN.findall(text[: end.start()] if end else text))
    return _Tool(
        name=name_words,
        text=text,
        words=words,
        lead=_lead_verbs(first_sentence),
        fields=fields,
        field_words=field_words,
        browser=any(word in _BROWSER_NAME_WORDS for word in name_words) or bool(_BROWSER_TEXT.search(text)),
        sql=_sql_evidence(name_words, words, fields),
    )


def _sql_evidence(name: tuple[str, ...], words: tuple[str, ...], fields: tuple[str, ...]) -> str | None:
    if word := next((w for w in name if w in _SQL_WORDS), None):
        return f'name contains "{word}"'
    if field := next((f for f in fields if "sql" in tokenize_name(f)), None):
        return f'input has "{field}"'
    if word := next((w for w in words if w in _SQL_WORDS), None):
        return f'description mentions "{word}"'
    return None


def _lead_verbs(words: tuple[str, ...]) -> tuple[str, ...]:
    """The verb near the start of a sentence, with any verbs listed after it ("get or list")."""
    start = 0
    while start < len(words) and words[start] in _FILLER:
        start += 1
    window = range(start, min(start + _LEAD_WINDOW, len(words)))
    lead = next((i for i in window if words[i] in _LEAD_FORMS), None)
    if lead is None:
        return ()
    verbs = [words[lead]]
    cursor = lead + 1
    while True:
        after = cursor
        while after < len(words) and words[after] in _CONNECTORS:
            after += 1
        if after == cursor or after >= len(words) or words[after] not in _LEAD_FORMS:
            return tuple(verbs)
        verbs.append(words[after])
        cursor = after + 1


def _field_names(schema: Mapping[str, Any] | None) -> tuple[str, ...]:
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(properties, Mapping):
        return ()
    return tuple(str(key) for key in properties)


def _verb_class(verb: str, tool: _Tool) -> RiskClass | None:
    if tool.browser and verb in _BROWSER_ACTIONS:
        return _EXECUTE
    if verb in _BROWSER_ONLY_VERBS:
        return None
    if verb == "query" and tool.sql is not None:
        return _EXECUTE
    return _VERB_CLASS.get(verb)


class _Finding:
    """The class reached so far, the verb behind it, and the reasons collected on the way."""

    def __init__(self) -> None:
        self.risk_class: RiskClass | None = None
        self.verb: str | None = None
        self.reasons: list[str] = []
        self.conflict = False
        self.auxiliary = False

    def set(self, risk_class: RiskClass, reason: str) -> None:
        self.risk_class = risk_class
        self.reasons.append(reason)


def _from_name(tool: _Tool, found: _Finding) -> None:
    for index, word in enumerate(tool.name):
        risk_class = _verb_class(word, tool)
        if risk_class is None:
            continue
        if word in _HTTP_METHOD_VERBS:
            later = next((w for w in tool.name[index + 1 :] if w in _VERB_CLASS), None)
            if later is not None:
                word, risk_class = later, _verb_class(later, tool) or risk_class
        found.verb = word
        found.set(risk_class, f'name contains "{word}"')
        if word == "query" and tool.sql is not None:
            found.reasons.append(f"it runs SQL: {tool.sql}")
        return
    for word in tool.name:
        if word in _EXEC_NOUNS:
            found.set(_EXECUTE, f'name contains "{word}"')
            return
        if word in _READ_NOUNS:
            found.set(_READ, f'name contains "{word}"')
            return


def _from_description(tool: _Tool, found: _Finding) -> None:
    classified = [(v, c) for v in tool.lead if (c := _verb_class(_LEAD_FORMS[v], tool)) is not None]
    if not classified:
        return
    word, risk_class = max(classified, key=lambda pair: _DANGER[pair[1]])
    found.verb = _LEAD_FORMS[word]
    found.set(risk_class, f'description says "{word}"')


def _exec_field(tool: _Tool) -> str | None:
    for field in tool.fields:
        if field.lower() in _EXEC_FIELDS or _EXEC_FIELD_TOKENS.intersection(tokenize_name(field)):
            return field
    return None


def _from_schema(tool: _Tool, found: _Finding) -> None:
    if (field := _exec_field(tool)) is not None:
        found.set(_EXECUTE, f'input has "{field}"')
        return
    lowered = {field.lower() for field in tool.fields}
    if "path" in lowered and lowered & {"content", "contents", "data", "body"}:
        found.set(_WRITE, 'input has "path" and content to write')


def _refine(tool: _Tool, found: _Finding) -> None:
    """Adjust the class for SQL, read-only queries, browsers, money and auxiliary objects."""
    risk_class = found.risk_class
    name = tool.name
    sql_noun = next((w for w in name if w in _SQL_NOUNS), None)
    if risk_class is _WRITE and tool.sql is not None and sql_noun is not None:
        found.set(_EXECUTE, f'name contains "{sql_noun}" and it runs SQL: {tool.sql}')
    runs_sql = found.risk_class is _EXECUTE and tool.sql is not None and found.verb in _RUN_VERBS
    if runs_sql and _READ_ONLY_TEXT.search(tool.text):
        found.set(_READ, "description says the query is read-only")
    if found.risk_class is _WRITE and tool.browser:
        found.set(_EXECUTE, "a browser automation action")
    if found.risk_class is _WRITE and found.verb == "push" and "force" in name:
        found.set(_DESTRUCTIVE, 'name contains "force" and "push"')
    if found.risk_class is _DESTRUCTIVE and found.verb == "remove":
        relation = next((w for w in name if w in _RELATION_NOUNS), None)
        if relation is not None:
            found.set(_WRITE, f'removing a "{relation}" is reversible')
    _refine_money(tool, found)
    if found.risk_class is _EXECUTE and (field := _exec_field(tool)) is not None:
        supporting = f'input has "{field}"'
        if supporting not in found.reasons:
            found.reasons.append(supporting)
    if found.risk_class in (_WRITE, _EXECUTE, _OTHER) and found.verb is not None:
        objects = [w for w in name if w != found.verb]
        if objects and all(w in _AUX_NOUNS for w in objects):
            found.auxiliary = True
            found.set(_OTHER, f'name only touches a "{objects[-1]}"')


def _refine_money(tool: _Tool, found: _Finding) -> None:
    if found.risk_class not in (_WRITE, _EXECUTE, None):
        return
    strong = next((w for w in tool.name if w in _FIN_STRONG), None)
    if strong is not None:
        found.set(_FINANCIAL, f'name contains "{strong}"')
        return
    if tool.field_words >= _AMOUNT_AND_CURRENCY:
        found.set(_FINANCIAL, 'input has "amount" and "currency"')
        return
    weak = next((w for w in tool.name if w in _FIN_WEAK), None)
    money = next((w for w in (*sorted(tool.field_words), *tool.words) if w in _MONEY_WORDS), None)
    if weak is not None and money is not None:
        found.set(_FINANCIAL, f'name contains "{weak}" and the tool mentions "{money}"')


def _apply_annotations(annotations: Mapping[str, Any] | None, found: _Finding) -> None:
    """Let untrusted annotations raise risk, and flag them when they contradict the words."""
    if not isinstance(annotations, Mapping):
        return
    read_only = annotations.get("readOnlyHint")
    destructive = annotations.get("destructiveHint")
    words_class = found.risk_class
    if words_class is None:
        if destructive is True:
            found.set(_DESTRUCTIVE, "annotation destructiveHint=true")
        elif read_only is True:
            found.set(_READ, "annotation readOnlyHint=true")
        elif read_only is False:
            found.set(_WRITE, "annotation readOnlyHint=false")
        return
    claim = found.reasons[0] if found.reasons else str(words_class)
    if read_only is True and _DANGER[words_class] > _DANGER[_READ]:
        found.conflict = True
        found.reasons.append(f"conflict: annotation readOnlyHint=true but {claim}")
    if destructive is False and words_class is _DESTRUCTIVE:
        found.conflict = True
        found.reasons.append(f"conflict: annotation destructiveHint=false but {claim}")
    if words_class in (_READ, _OTHER) and not found.auxiliary:
        if destructive is True and read_only is not True:
            if words_class is _READ:
                found.conflict = True
                found.set(_DESTRUCTIVE, f"conflict: annotation destructiveHint=true but {claim}")
            else:
                found.set(_DESTRUCTIVE, "annotation destructiveHint=true")
        elif read_only is False and words_class is _READ:
            found.conflict = True
            found.set(_WRITE, f"conflict: annotation readOnlyHint=false but {claim}")
    elif destructive is True and words_class is not _DESTRUCTIVE and read_only is not True:
        found.reasons.append("annotation destructiveHint=true")


def _level(tool: _Tool, found: _Finding, annotations: Mapping[str, Any] | None) -> RiskLevel:
    risk_class = found.risk_class or _OTHER
    level = _BASE_LEVEL[risk_class]
    unknown = risk_class is _OTHER and not found.auxiliary and found.verb is None
    drives_browser = risk_class is _EXECUTE and tool.browser and found.verb in _BROWSER_ACTIONS
    if unknown or drives_browser:
        level = RiskLevel.MEDIUM
    elif risk_class is _WRITE:
        hinted = isinstance(annotations, Mapping) and annotations.get("destructiveHint") is True
        sends = found.verb == "send" or _LEAD_FORMS.get(next(iter(tool.lead), "")) == "send"
        if sends or hinted or _CAUTION_TEXT.search(tool.text):
            level = RiskLevel.HIGH
    elif risk_class is _DESTRUCTIVE:
        target = next((w for w in tool.name if w in _CRITICAL_TARGETS), None)
        if target is not None:
            found.reasons.append(f'hard to undo: name contains "{target}"')
            level = RiskLevel.CRITICAL
        elif _IRREVERSIBLE_TEXT.search(tool.text):
            found.reasons.append("hard to undo: description says so")
            level = RiskLevel.CRITICAL
    elif risk_class is _FINANCIAL:
        mover = next((w for w in (found.verb, *tool.name) if w in _MOVES_MONEY), None)
        if mover is not None:
            found.reasons.append(f'moves money: "{mover}"')
            level = RiskLevel.CRITICAL
    return level.raised() if found.conflict else level


def classify(
    name: str,
    description: str | None,
    input_schema: Mapping[str, Any] | None,
    annotations: Mapping[str, Any] | None,
) -> Risk:
    """Classify one MCP tool by what its name, description, schema and annotations say.

    ``annotations`` uses the wire keys (``readOnlyHint``, ``destructiveHint``, ...). They are
    untrusted: they can raise the class of a tool whose words say little, but never lower it;
    when they contradict the words, ``conflict`` is set and the level goes up one step.
    """
    tool = _read_tool(name, description, input_schema)
    found = _Finding()
    for step in (_from_name, _from_description, _from_schema):
        step(tool, found)
        if found.risk_class is not None:
            break
    _refine(tool, found)
    _apply_annotations(annotations, found)
    if found.risk_class is None:
        found.set(_OTHER, "no known verb in the name or description")
    level = _level(tool, found, annotations)
    return Risk(
        risk_class=found.risk_class or _OTHER,
        level=level,
        reasons=tuple(found.reasons),
        conflict=found.conflict,
    )


def describe(risk: Risk) -> str:
    """One line for people: ``destructive (high): name contains "delete"; ...``."""
    head = f"{risk.risk_class.value} ({risk.level.value})"
    return f"{head}: {'; '.join(risk.reasons)}" if risk.reasons else head
