"""Job text into plain data, and the checks plain data needs before the spec sees it.

A job file is untrusted input: YAML and JSON both allow things a job never means and that would
surface later as a traceback or a silently different job. Duplicate keys (the last one wins, the
first block vanishes), integers of thousands of digits (Python refuses to convert them), alias bombs
(a few lines that expand to billions of values when serialized), self-referencing aliases, NaN and
infinity, YAML dates and sets that no framework config can hold: all are refused here, each with the
place it was found.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Hashable
from typing import Any

import yaml
from ptsdk.errors import brief
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

MAX_JOB_BYTES = 1 << 20  # a job file names its data and models; 1 MiB is far beyond any real one
MAX_VALUES = 100_000  # values (mappings, lists, scalars) once YAML aliases are expanded
MAX_FILE_VALUES = 20_000  # values written in a YAML file (pure-Python PyYAML reads ~20,000 a second)
MAX_DEPTH = 100  # levels of nesting
MAX_TEXT_CHARS = 10 * MAX_JOB_BYTES  # characters of text once aliases are expanded
MAX_INT_CHARS = 100  # an integer literal longer than this is refused unparsed (Python stops at 4,300 digits)
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # integers a framework's config can hold

Loc = tuple[Any, ...]


class NumberTooLong:
    """An integer literal too long to convert, kept as a marker so the check can name its field."""

    def __init__(self, text: str) -> None:
        self.chars = len(text)

    def __repr__(self) -> str:
        return f"an integer written with {self.chars} characters"


class DuplicateKey(Exception):
    """A mapping names one key twice."""

    def __init__(self, key: object, line: int | None = None, first_line: int | None = None) -> None:
        super().__init__(f"duplicate key {brief(key)}")
        self.key, self.line, self.first_line = key, line, first_line


class TooManyValues(Exception):
    """The document holds more values than a job can."""


# --- YAML -----------------------------------------------------------------------------------

_MERGE_TAG = "tag:yaml.org,2002:merge"


class JobLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses duplicate keys, bounds the node count and never lets a
    malformed scalar escape as a ValueError."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if not self.check_event(yaml.AliasEvent):
            self._nodes += 1
            if self._nodes > MAX_FILE_VALUES:
                raise TooManyValues(f"more than {MAX_FILE_VALUES:,} values")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        if isinstance(node, MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue  # `<<: *base` then overriding keys is what merge keys are for
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, Hashable):
                    continue  # the base class reports it
                line = key_node.start_mark.line + 1
                if key in first:
                    raise DuplicateKey(key, line, first[key])
                first[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int_or_marker(self, node: ScalarNode) -> int | NumberTooLong:
        if len(str(node.value)) > MAX_INT_CHARS:
            return NumberTooLong(str(node.value))
        return self.construct_yaml_int(node)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        """A scalar its tag cannot read (`!!float x`, `2024-99-99`) is a YAML error at its line,
        never a ValueError from deep inside PyYAML."""
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, DuplicateKey, TooManyValues, RecursionError, MemoryError):
            raise
        except Exception as exc:
            kind = str(node.tag).rsplit(":", 1)[-1]
            detail = f" ({str(exc)[:80]})" if isinstance(exc, ValueError) and str(exc) else ""
            raise ConstructorError(
                None,
                None,
                f"{brief(node.value)} is not a valid {kind}{detail}; quote it to keep it a string",
                node.start_mark,
            ) from None


JobLoader.add_constructor("tag:yaml.org,2002:int", JobLoader.construct_yaml_int_or_marker)


def parse_yaml(text: str) -> Any:
    """Raises yaml.YAMLError, DuplicateKey, TooManyValues or RecursionError."""
    loader = JobLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


# --- JSON -----------------------------------------------------------------------------------


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def _json_int(text: str) -> int | NumberTooLong:
    return NumberTooLong(text) if len(text) > MAX_INT_CHARS else int(text)


def parse_json(text: str) -> Any:
    """Raises json.JSONDecodeError, DuplicateKey or RecursionError."""
    return json.loads(text, object_pairs_hook=_json_object, parse_int=_json_int)


# --- checks on the parsed data --------------------------------------------------------------


def structure_problem(data: object) -> tuple[Loc, str] | None:
    """Self-reference, nesting or expanded size a job cannot have. Aliases share one object per
    anchor, so sizes are memoized by identity: the check is as cheap as the file, however far the
    aliases would expand."""
    sizes: dict[int, tuple[int, int]] = {}
    open_: set[int] = set()

    def size(node: object, loc: Loc) -> tuple[int, int]:
        """(values, characters of text) of node once expanded."""
        if isinstance(node, str):
            return 1, len(node)
        if not isinstance(node, (dict, list)):
            return 1, 0
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise _Found(loc, "refers to itself (a recursive YAML alias); a job is a tree of values")
        if len(loc) >= MAX_DEPTH:
            raise _Found(loc, f"nested more than {MAX_DEPTH} levels deep")
        open_.add(key)
        values, chars = 1, 0
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, child in items:
            child_values, child_chars = size(child, (*loc, k))
            values += 1 + child_values
            chars += (len(k) if isinstance(k, str) else 0) + child_chars
            if values > MAX_VALUES or chars > MAX_TEXT_CHARS:
                what = f"{MAX_VALUES:,} values" if values > MAX_VALUES else f"{MAX_TEXT_CHARS:,} characters of text"
                raise _Found(loc, f"expands to more than {what} (YAML aliases inside aliases?); a job is far smaller")
        open_.discard(key)
        sizes[key] = values, chars
        return values, chars

    try:
        size(data, ())
    except _Found as found:
        return found.loc, found.problem
    return None


class _Found(Exception):
    def __init__(self, loc: Loc, problem: str) -> None:
        super().__init__(problem)
        self.loc, self.problem = loc, problem


_KINDS = {
    datetime.datetime: "YAML read this as a date and time; quote it to keep it a string",
    datetime.date: "YAML read this as a date; quote it to keep it a string",
    bytes: "binary (!!binary) values are not supported in a job",
    set: "YAML sets (!!set) are not supported in a job; use a list",
    tuple: "YAML !!omap/!!pairs are not supported in a job; use a mapping",
}


def value_problems(data: object, limit: int = 100) -> list[tuple[Loc, str]]:
    """Values no job field or framework config can hold, each with where it is. Call after
    structure_problem found none: this walks every expanded value."""
    out: list[tuple[Loc, str]] = []
    checked: dict[int, str | None] = {}
    stack: list[tuple[Loc, object]] = [((), data)]
    while stack and len(out) < limit:
        loc, node = stack.pop()
        if isinstance(node, dict):
            children = []
            for key, child in node.items():
                problem = _key_problem(key)
                if problem:
                    out.append(((*loc, key), problem))
                children.append(((*loc, key), child))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([((*loc, i), child) for i, child in enumerate(node)]))
        else:
            # an aliased string is one object however often it appears: check its text once
            if id(node) not in checked:
                checked[id(node)] = scalar_problem(node)
            problem = checked[id(node)]
            if problem:
                out.append((loc, problem))
    return out


def _key_problem(key: object) -> str | None:
    if isinstance(key, str):
        problem = _text_problem(key)
        return f"key {problem}" if problem else None
    if isinstance(key, NumberTooLong):
        return f"key is {key!r}; a key is a name"
    if isinstance(key, bool):
        kind = "a boolean"
    elif key is None:
        kind = "null"
    elif isinstance(key, (int, float)):
        kind = "a number"
    else:
        kind = f"a {type(key).__name__}"
    return f"key {brief(key)} is {kind}, not a name; quote it (YAML reads bare yes/no/on/off/null and numbers so)"


def scalar_problem(value: object) -> str | None:
    """Why a leaf value cannot be in a job, or None."""
    if isinstance(value, str):
        return _text_problem(value)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, NumberTooLong):
        return f"{value!r} is too large; integers in a job fit in 64 bits"
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            return f"{brief(value)} is too large; integers in a job fit in 64 bits"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"must be a finite number, got {value!r}"
    for kind, problem in _KINDS.items():
        if isinstance(value, kind):
            return problem
    return f"a {type(value).__name__} value is not supported in a job"


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL byte (\\x00); remove it"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # JSON "\\ud800": no file, argument or config can hold it
            return "is not valid Unicode text (an unpaired surrogate such as \\ud800); fix it"
    return None


def non_finite(data: object, loc: Loc = ()) -> list[tuple[Loc, float]]:
    """Where NaN or infinity sits inside nested mappings and lists (each shared object walked once)."""
    out: list[tuple[Loc, float]] = []
    seen: set[int] = set()
    stack: list[tuple[Loc, object]] = [(loc, data)]
    while stack:
        here, node = stack.pop()
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                continue
            seen.add(id(node))
            items = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend(((*here, k), v) for k, v in items)
        elif isinstance(node, float) and not math.isfinite(node):
            out.append((here, node))
    return sorted(out, key=lambda item: [str(part) for part in item[0]])
