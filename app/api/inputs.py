"""Bounds on what a request can carry before any view sees it.

- Integer URL segments (``<int:...>``, app-wide) are ASCII digits up to ``SQL_ID_MAX``, the
  largest id an INTEGER column holds on PostgreSQL. A larger id cannot name a row, so it is a
  404, never an ``OverflowError`` from SQLite or a ``DataError`` from PostgreSQL.
- Text URL segments (``<name>``, ``<string:...>``) hold no control character: no slug or
  upload id has one, and PostgreSQL cannot even compare text holding NUL. Such a URL is a 404.
- JSON bodies are nested at most ``MAX_JSON_DEPTH`` levels. The depth is measured on the raw
  bytes before parsing, so ``[[[[...`` a hundred thousand deep is a 400, not a RecursionError.
- JSON strings hold no NUL (``\\u0000``): PostgreSQL text cannot store it, so it is refused on
  every database alike.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from flask.json.provider import DefaultJSONProvider
from werkzeug.routing import BaseConverter, Map
from werkzeug.routing.converters import UnicodeConverter

from app.api.helpers import SQL_ID_MAX, InvalidBody

# A \u0000 escape that is not itself escaped (preceded by an even run of backslashes).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_STRING_LITERAL = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
# One byte per bracket: openers become +1 and closers -1 once read as signed bytes.
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def digits_at_most(limit: int) -> str:
    """A regular expression matching the ASCII decimal numbers from 0 to ``limit``."""
    text = str(limit)
    shorter = f"[0-9]{{1,{len(text) - 1}}}" if len(text) > 1 else None
    same_length = []
    for index, digit in enumerate(text):
        if digit != "0":
            rest = len(text) - index - 1
            below = f"[0-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else "")
            same_length.append(text[:index] + below)
    same_length.append(text)
    return "(?:" + "|".join([*([shorter] if shorter else []), *same_length]) + ")"


class BoundedIntConverter(BaseConverter):
    """``<int:name>``: an ASCII whole number from 0 to ``SQL_ID_MAX``, else no match (404).

    The bound is in the regex, not only in ``to_python``: werkzeug turns a value that fails
    conversion into a 405 when a rule for another method matched the same path.
    """

    regex = digits_at_most(SQL_ID_MAX)
    weight = 50
    part_isolating = True

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: Any) -> str:
        return str(int(value))


class PrintableStringConverter(UnicodeConverter):
    """``<name>`` and ``<string:name>``: werkzeug's, without control characters (NUL included)."""

    def __init__(
        self, map: Map, minlength: int = 1, maxlength: int | None = None, length: int | None = None
    ) -> None:  # noqa: A002 (werkzeug's names)
        super().__init__(map, minlength, maxlength, length)
        self.regex = self.regex.replace("[^/]", "[^/\\x00-\\x1f\\x7f]", 1)


def json_depth(document: str | bytes) -> int:
    """How deeply arrays and objects nest in a JSON text, ignoring brackets inside strings.

    Runs at C speed (a regex, ``bytes.translate`` and ``accumulate`` over signed bytes), and
    does not validate: a malformed text still gets a number, and the parser rejects it.
    """
    raw = document.encode("utf-8", "surrogatepass") if isinstance(document, str) else document
    brackets = _STRING_LITERAL.sub(b"", raw).translate(None, _NOT_A_BRACKET)
    steps = memoryview(brackets.translate(_BRACKET_STEPS)).cast("b")
    return max(accumulate(steps), default=0)


def nests_deeper_than(document: str | bytes, limit: int) -> bool:
    """Whether ``json_depth(document) > limit``; a document with few brackets is not scanned."""
    raw = document.encode("utf-8", "surrogatepass") if isinstance(document, str) else document
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    return json_depth(raw) > limit


def holds_nul(document: str | bytes) -> bool:
    """Whether a JSON text has a string with a NUL character in it (always escaped in JSON)."""
    raw = document.encode("utf-8", "surrogatepass") if isinstance(document, str) else document
    return b"\\u0000" in raw and _NUL_ESCAPE.search(raw) is not None


class JSONTooDeep(InvalidBody):
    """The JSON body nests arrays or objects deeper than ``MAX_JSON_DEPTH``."""


class JSONHoldsNul(InvalidBody):
    """A string in the JSON body holds a NUL character."""


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, refusing documents nested deeper than ``MAX_JSON_DEPTH`` or
    holding a NUL character.

    Request bodies are parsed through ``app.json``, so this covers ``request.get_json`` even
    with ``silent=True``: these errors are not ``ValueError``, so they are never swallowed.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse ``s``. Raises JSONTooDeep, JSONHoldsNul."""
        limit = self._app.config["MAX_JSON_DEPTH"]
        if nests_deeper_than(s, limit):
            raise JSONTooDeep(
                f"The JSON body nests arrays or objects more than {limit} levels deep.",
                {"max_depth": limit},
            )
        if holds_nul(s):
            raise JSONHoldsNul("Text in the JSON body cannot contain NUL characters (\\u0000).")
        return super().loads(s, **kwargs)
