"""User-facing errors. Anything else reaching the CLI is a bug and keeps its traceback."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2

# What one error may print: a job with a thousand bad keys, or one key of 5 MB, still fits on a screen.
MAX_LINES = 30
MAX_LINE_CHARS = 500
MAX_SHOWN_CHARS = 60

# Characters that would break a `field: problem` line or the terminal showing it (tab is harmless).
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


class PtsdkError(Exception):
    """Bad input or a combination that cannot run: a message, exit code 2, no traceback."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, lines: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.lines = list(lines)

    def render(self) -> str:
        """The message and at most MAX_LINES lines, each one line of bounded length."""
        shown = [f"  {_one_line(line)}" for line in self.lines[:MAX_LINES]]
        if len(self.lines) > MAX_LINES:
            shown.append(f"  ... and {len(self.lines) - MAX_LINES} more problems")
        return "\n".join([f"error: {_one_line(self.message)}", *shown])


class SpecError(PtsdkError):
    """The job file does not describe a valid job."""


class UnsupportedError(PtsdkError):
    """The job is valid but the chosen backend cannot run it."""


class BackendUnavailable(PtsdkError):
    """The backend's framework is not installed where ptsdk looks for it."""


class RunFailed(PtsdkError):
    """The framework ran and failed."""

    exit_code = EXIT_RUN_FAILED


def _one_line(text: str) -> str:
    text = _UNSAFE.sub(lambda m: repr(m.group())[1:-1], text)
    if len(text) > MAX_LINE_CHARS:
        text = f"{text[: MAX_LINE_CHARS - 40]}... ({len(text)} characters in all)"
    return text


def brief(value: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """A value from the user's input, quoted and cut short enough to echo in one message line."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[: limit - 10]!r}... ({len(value)} characters)"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 128:  # str() of a huge int is slow, and refused past 4,300 digits
            return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple, dict, set)):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    return f"a {type(value).__name__}"


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")


def join_loc(loc: Iterable[object]) -> str:
    """('data', 'columns', 0) -> 'data.columns.0'. Keys with dots, spaces or control characters are
    quoted ('a.b', 'x\\n'), long ones cut short, so one location stays one readable line."""
    parts = []
    for item in loc:
        plain = isinstance(item, str) and len(item) <= MAX_SHOWN_CHARS and _PLAIN_KEY.fullmatch(item)
        parts.append(str(item) if plain else brief(item))
    return ".".join(parts) or "(job)"


# Discriminated unions: pydantic puts the chosen member's tag after the field ('method', 'dpo', 'beta').
_UNION_FIELDS = {"method": "name", "adapter": "type"}
# Names pydantic gives inner validators and union members: function-after[...], list[str], literal['x'], [key].
_WRAPPER = re.compile(r"(?:[a-z][a-z0-9_-]*\[.*\]|\[key\])", re.DOTALL)
_ABSENT = object()


def format_loc(loc: Iterable[object], data: object = _ABSENT) -> str:
    """A pydantic error location as the path the user wrote, pydantic's own inserted parts dropped.

    With ``data`` (the validated input), a part that is a real key of the input is always kept, so a
    key written ``a[b]`` or ``dpo`` is never mistaken for a wrapper name or a union tag."""
    items = list(loc)
    parts: list[object] = []
    node: object = data
    for index, item in enumerate(items):
        is_key = isinstance(node, dict) and _hashable(item) and item in node
        if index == 1 and isinstance(items[0], str) and items[0] in _UNION_FIELDS:
            if _is_union_tag(items[0], item, data):
                continue
        if not is_key and isinstance(item, str) and _WRAPPER.fullmatch(item):
            continue
        parts.append(item)
        if is_key:
            assert isinstance(node, dict)
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and -len(node) <= item < len(node):
            node = node[item]
        else:
            node = _ABSENT
    return join_loc(parts)


def _hashable(item: object) -> bool:
    try:
        hash(item)
    except TypeError:
        return False
    return True


def _is_union_tag(field: str, item: object, data: object) -> bool:
    if isinstance(data, dict):
        section = data.get(field)
        return isinstance(section, dict) and section.get(_UNION_FIELDS[field]) == item
    from ptsdk.spec.method import METHOD_NAMES

    return item in (METHOD_NAMES if field == "method" else ("full", "lora", "qlora"))


def validation_lines(errors: Iterable[Mapping[str, Any]], data: object = _ABSENT) -> list[str]:
    """pydantic errors as `field.path: problem` lines; ``data``, the input, keeps real keys apart from
    pydantic's own location parts."""
    lines = []
    for err in errors:
        msg = err["msg"]
        ctx = err.get("ctx") or {}
        if err["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling (see `ptsdk schema`)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "union_tag_invalid":
            tag, field, expected = brief(ctx.get("tag")), ctx.get("discriminator"), ctx.get("expected_tags")
            msg = f"got {tag} for {field}; expected one of {expected}"
        elif err["type"] == "finite_number":
            msg = f"must be a finite number, got {brief(err.get('input'))}"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        line = f"{format_loc(err['loc'], data)}: {msg}"
        if line not in lines:
            lines.append(line)
    return lines
