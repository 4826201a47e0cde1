"""Exporting the audit log: every row of the calls a filter selects, as CSV or JSON lines.

Exports are read by people in terminals and spreadsheets: JSON lines escape hidden and control
characters and keep every value exact; CSV shows them as ``<U+XXXX>`` and quotes cells that a
spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from datetime import datetime
from typing import Final, Literal, TextIO

from sqlite_utils import Database

from approver.audit.query import CallFilter
from approver.audit.table import COLUMNS
from approver.visible import escape_hidden_json, reveal_text


def export(
    db: Database,
    out: TextIO,
    fmt: Literal["csv", "jsonl"] = "jsonl",
    since: datetime | None = None,
    where: CallFilter | None = None,
) -> int:
    """Write rows (both kinds, all columns, oldest first) to ``out``; returns how many.

    ``since`` (or ``where.since``/``where.until``) filters by each row's own time; the other
    filters keep both rows of every call whose decision matches. Open ``out`` with
    ``newline=""`` for CSV.
    """
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown export format {fmt!r}: use csv or jsonl")
    where = where or CallFilter()
    if since is not None:
        where = dataclasses.replace(where, since=since)
    clauses, params = where.time_clauses()
    call_clauses, call_params = where.call_clauses("d.")
    if call_clauses:
        matching = " AND ".join(["d.kind = 'decision'", *call_clauses])
        clauses.append(f"call_id IN (SELECT d.call_id FROM events d WHERE {matching})")  # noqa: S608
    conditions = " AND ".join(clauses) or None
    written = 0
    rows = db.table("events").rows_where(conditions, params | call_params, order_by="id")
    writer = csv.writer(out)
    if fmt == "csv":
        writer.writerow(COLUMNS)
    for row in rows:
        # Exports get read in terminals: hidden and control characters must not reach one raw
        # (an ESC sequence can rewrite the screen). JSONL escapes them and keeps every value
        # exact; CSV, meant for people, shows them as <U+XXXX>.
        if fmt == "csv":
            writer.writerow([_csv_cell(row[name]) for name in COLUMNS])
        else:
            out.write(escape_hidden_json(json.dumps(row, ensure_ascii=False)) + "\n")
        written += 1
    return written


_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
"""A CSV cell starting with one of these is run as a formula by spreadsheet programs."""


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    text = reveal_text(value, keep_newlines=True)
    # Tool names, reasons and errors come from agents and servers; a spreadsheet must not run
    # `=HYPERLINK(...)` from an export. The quote shows the text as text (OWASP's advice).
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
