"""One sentence that says what a waiting call will do: "cursor wants to write 50 KB to notes.md".

:func:`headline` reads the tool's risk class, the verb of its name and its key arguments
(:mod:`approver.approval.arguments`): money moved, commands and SQL run, paths written, read or
deleted, URLs, recipients, repositories and search queries. When none of them says enough it
falls back to "call <tool> with N arguments". Values are quoted as the agent sent them, cut to
one line; the dialog reveals hidden characters before showing them. Qt-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from approver.approval.arguments import Argument, Arguments, lay_out, short_size
from approver.approval.broker import ApprovalRequest
from approver.calls import RiskClass
from approver.policy.risk import name_verb, tokenize_name

MAX_VALUE_CHARS: Final = 90
"""Longest quoted value in a headline; the full value is in the form below it."""

_MONEY_VERBS: Final = frozenset(
    {
        "pay",
        "refund",
        "payout",
        "transfer",
        "charge",
        "withdraw",
        "deposit",
        "donate",
        "send",
        "purchase",
        "buy",
    }
)
_WRITE_VERBS: Final = frozenset(
    {"write", "create", "save", "put", "upload", "append", "overwrite", "update", "edit", "replace", "patch"}
)
_SEND_VERBS: Final = frozenset({"send", "post", "reply", "forward", "publish", "share", "invite", "comment"})
_TO_WORDS: Final = frozenset({"to", "recipient", "recipients", "payee", "beneficiary", "destination", "iban"})
_SPACES: Final = re.compile(r"\s+")
_MINOR_UNITS: Final = frozenset({"cents", "minor", "pence", "cent"})


@dataclass(frozen=True, slots=True)
class Headline:
    """``who`` wants to ``action``: the dialog shows the action large, under the client's name."""

    who: str
    action: str

    def sentence(self) -> str:
        """The whole sentence on one line (notifications, lists)."""
        return f"{self.who} wants to {self.action}"


def headline(request: ApprovalRequest, arguments: Arguments | None = None) -> Headline:
    """What ``request`` will do, in one sentence; ``arguments`` when already laid out."""
    laid = (
        arguments
        if arguments is not None
        else lay_out(request.arguments, request.input_schema, request.argument_order)
    )
    if request.request is not None:  # a resource read, a prompt get or a completion
        return Headline(request.client, request.summary)
    if request.result is not None:  # the call ran; its result waits for review
        return Headline(request.client, f"receive the result of {request.tool.name} (review it first)")
    return Headline(
        request.client, describe_action(request.tool.tool, request.tool.name, request.risk.risk_class, laid)
    )


def describe_action(tool: str, exposed: str, risk_class: RiskClass, arguments: Arguments) -> str:
    """The action part of the headline, from the tool's name and class and its key arguments."""
    words = tokenize_name(tool)
    # A money verb anywhere in the name says more than the first verb ("create_refund").
    verb = next((word for word in words if word in _MONEY_VERBS), None) or name_verb(tool)
    for phrase in (_money, _command, _sql, _write, _path, _message, _url, _repository, _query):
        found = phrase(verb, risk_class, arguments)
        if found:
            return found
    count = len(arguments.items)
    return f"call {exposed} with " + (
        "no arguments" if count == 0 else f"{count} argument{'s' if count != 1 else ''}"
    )


def quote(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A value on one line, cut to ``limit`` characters with "…" (lists joined by commas)."""
    if isinstance(value, list):
        value = ", ".join(str(item) for item in value)
    text = str(value)
    first, _, rest = text.partition("\n")
    more = bool(rest.strip())
    if len(first) > limit:
        first, more = first[: limit - 1], True
    return first + ("…" if more else "")


def _lines_note(argument: Argument) -> str:
    return f" ({argument.lines:,} lines)" if argument.lines > 1 else ""


def _money(verb: str | None, risk_class: RiskClass, arguments: Arguments) -> str:
    amount = arguments.with_role("amount")
    currency = arguments.with_role("currency")
    if amount is None or not (risk_class is RiskClass.FINANCIAL or currency is not None):
        return ""
    money = format_amount(amount.value, minor=bool(set(tokenize_name(amount.name)) & _MINOR_UNITS))
    if currency is not None:
        money += f" {quote(currency.value, 12)}"
    recipients = [item for item in arguments.items if item.role == "recipient"]
    to = next((item for item in recipients if set(tokenize_name(item.name)) & _TO_WORDS), None)
    to = to or (recipients[0] if recipients else None)
    action = verb if verb in _MONEY_VERBS else "transfer"
    return f"{action} {money}" + (f" to {quote(to.value)}" if to is not None else "")


def format_amount(value: Any, *, minor: bool = False) -> str:
    """``25000.0`` as ``"25,000.00"``, ``"1500"`` as ``"1,500"``; minor units say so.

    No digit the agent sent is dropped: a value with more decimals keeps them all.
    """
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return quote(value, 30)
    if minor:
        return f"{number:,} (minor units)"
    exponent = number.as_tuple().exponent
    if isinstance(value, float) or (isinstance(exponent, int) and exponent < 0):
        decimals = max(2, -exponent if isinstance(exponent, int) else 2)
        return f"{number:,.{decimals}f}"
    return f"{number:,}"


def _command(verb: str | None, risk_class: RiskClass, arguments: Arguments) -> str:
    command = arguments.with_role("command")
    if command is None:
        return ""
    where = arguments.with_role("path")
    suffix = f" in {quote(where.value)}" if where is not None else ""
    return f"run `{quote(command.value)}`{_lines_note(command)}{suffix}"


def _sql(verb: str | None, risk_class: RiskClass, arguments: Arguments) -> str:
    sql = arguments.with_role("sql")
    if sql is None:
        return ""
    flat = _SPACES.sub(" ", str(sql.value)).strip()
    return f"run SQL `{quote(flat)}`"


def _write(verb: str | None, risk_class: RiskClass, arguments: Arguments) -> str:
    path = arguments.with_role("path")
    content = arguments.with_role("content")
    if path is None or content is None or risk_class is RiskClass.READ:
        return ""
    action = verb if verb in _WRITE_VERBS else "write"
    return f"{action} {short_size(content.size)} to {quote(path.value)}"


def _path(verb: str | None, risk_class: RiskClass, arguments: Arguments) -> str:
    path = arguments.with_role("path")
    if path is None:
        return ""
    defaults = {RiskClass.DESTRUCTIVE: "delete", RiskClass.READ: "read", RiskClass.WRITE: "change"}
    action = verb or defaults.get(risk_class, "use")
    repo = arguments.with_role("repository")
    return f"{action} {quote(path.value)}" + (
        f" in repository {quote(repo.value)}" if repo is not None else ""
    )


def _message(verb: str | None, risk_class: RiskClass, arguments: Arguments) -> str:
    to = arguments.with_role("recipient")
    if to is None or risk_class is RiskClass.READ:
        return ""
    action = verb if verb in _SEND_VERBS else "send"
    return f"{action} a message to {quote(to.value)}"


def _url(verb: str | None, risk_class: RiskClass, arguments: Arguments) -> str:
    url = arguments.with_role("url")
    if url is None:
        return ""
    defaults = {RiskClass.READ: "fetch", RiskClass.WRITE: "send data to", RiskClass.DESTRUCTIVE: "delete"}
    return f"{verb or defaults.get(risk_class, 'open')} {quote(url.value)}"


def _repository(verb: str | None, risk_class: RiskClass, arguments: Arguments) -> str:
    repo = arguments.with_role("repository")
    if repo is None:
        return ""
    owner = next(
        (item for item in arguments.items if item.name.lower() == "owner" and isinstance(item.value, str)),
        None,
    )
    name = (
        f"{owner.value}/{repo.value}" if owner is not None and "/" not in str(repo.value) else str(repo.value)
    )
    if risk_class is RiskClass.DESTRUCTIVE and (verb in (None, "delete", "remove", "destroy")):
        return f"{verb or 'delete'} repository {quote(name)}"
    return f"{verb or 'use'} in repository {quote(name)}"


def _query(verb: str | None, risk_class: RiskClass, arguments: Arguments) -> str:
    query = arguments.with_role("query")
    if query is None:
        return ""
    return f"{verb or 'search'} for “{quote(query.value)}”"
