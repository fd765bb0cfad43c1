"""``backend_options``: the per-backend passthrough, merged into a native config without silently
replacing what ptsdk set from the job. Backends call these through :mod:`ptsdk.plugins.kit`."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from ptsdk.errors import PtsdkError, UnsupportedError, brief
from ptsdk.plugins.backend import Backend, Note

if TYPE_CHECKING:
    from ptsdk.spec import Job


# The rules.
#
# ``backend_options.<backend>`` adds to ptsdk's native config; it never silently replaces what ptsdk
# set from the job. The rules, the same for every shape of native config:
#
# - Mappings merge key by key (TRL and Axolotl configs; vERL and OpenRLHF flatten them to dotted keys).
#   Other values (scalars and lists) replace.
# - A key ptsdk already set to another value is refused, naming the job field it comes from when that is
#   clear. A list for a key ptsdk set must keep ptsdk's entries (its order is the user's): lists are
#   not merged, because most native lists are values (report_to, loss_type, datasets), not registries.
# - A key a job field owns (:data:`SpecOwned`: strategy, precision, model, data, output locations) is
#   refused even where ptsdk sets nothing, naming the field.
# - The same value as ptsdk's is accepted.
# - ``ptsdk_override: [dotted.key, ...]`` (the one reserved key) lets the named native keys, and
#   everything under them, replace ptsdk's value.
# - Every problem is reported at once (:class:`PassthroughError`), and every applied key gets a Note.

#: The reserved key of ``backend_options.<backend>``: native keys (dotted) whose ptsdk value the job replaces.
PTSDK_OVERRIDE = "ptsdk_override"

#: Native keys a job field owns even where ptsdk sets nothing: dotted native key (``*`` matches anything,
#: dots included; a key matches its own entries too) -> the job field to use instead. First match wins.
SpecOwned = Mapping[str, str]

_STOP_WORDS = frozenset(
    "num per max min size type path name use enable enabled steps step ratio data model train training ppo actor "
    "rollout ref trl ds config micro batch total".split()
)
#: Other words native keys use for a job field (the field's last part -> words), to name a value's source.
_ALIASES = {"kl_coef": "beta kl", "learning_rate": "lr", "num_generations": "samples", "max_grad_norm": "clip grad"}
_CHECKING: ContextVar[bool] = ContextVar("ptsdk_passthrough_check", default=False)


class PassthroughError(UnsupportedError):
    """``backend_options`` that would replace what ptsdk sets from the job, or that a job field owns."""


@dataclass
class _Key:
    """One passthrough leaf: its native key (dotted), as written in the job, its path, and its value."""

    dotted: str
    written: str
    path: tuple[str, ...]
    value: Any


@dataclass
class _Change:
    key: _Key
    note: str
    apply: bool = True


def apply_passthrough(
    job: Job, backend: str, config: dict[str, Any], notes: list[Note], *, owned: SpecOwned | None = None
) -> None:
    """Deep-merge ``backend_options.<backend>`` into a native config mapping (TRL, Axolotl; or any flat
    mapping of native keys): nested mappings merge key by key, other values replace, under the rules
    above. Raises :class:`PassthroughError` with every problem; notes each key applied."""
    options = job.backend_options.get(backend) or {}
    keys = [_Key(".".join(path), ".".join(path), path, value) for path, value in _leaves(_without_override(options))]
    ours = {".".join(path): value for path, value in _leaves(config)}
    for change in _decide(job, backend, options, ours, keys, owned or {}):
        if change.apply:
            _set_in(config, _resolve(config, change.key.path), copy.deepcopy(change.key.value))
        notes.append(Note(f"backend_options.{backend}.{change.key.written}", "passthrough", change.note))


def apply_override_passthrough(
    job: Job, backend: str, overrides: dict[str, Any], notes: list[Note], *, owned: SpecOwned | None = None
) -> None:
    """``backend_options.<backend>`` into Hydra overrides (key -> value, ``+key`` for a key new to the
    framework's config; a mapping value is one override). Nested mappings in the options flatten to
    dotted keys; a key ptsdk sets (its own spelling, ``+`` included, is kept) or one inside a mapping
    ptsdk sets is checked as in :func:`apply_passthrough`."""
    options = job.backend_options.get(backend) or {}
    keys: list[_Key] = []
    for path, value in _leaves(_without_override(options)):
        prefix, parts = "", []
        for part in path:
            bare = part.lstrip("+~")
            prefix = prefix or part[: len(part) - len(bare)]
            parts.append(bare)
        dotted = ".".join(parts)
        keys.append(_Key(dotted, prefix + dotted, tuple(dotted.split(".")), value))
    ours: dict[str, Any] = {}
    for key, value in overrides.items():
        base = tuple(_native_key(key).split("."))
        for sub, leaf in _leaves(value) if isinstance(value, dict) and value else [((), value)]:
            ours[".".join(base + sub)] = leaf
    for change in _decide(job, backend, options, ours, keys, owned or {}):
        if change.apply:
            _set_override(overrides, change.key, copy.deepcopy(change.key.value))
        notes.append(Note(f"backend_options.{backend}.{change.key.written}", "passthrough", change.note))


def parse_flags(argv: list[str]) -> dict[str, list[str] | None]:
    """A command line of ``--flag [value ...]`` as flag -> values (None for a bare flag), in order."""
    flags: dict[str, list[str] | None] = {}
    current: str | None = None
    for arg in argv:
        if arg.startswith("--"):
            current = arg
            flags[current] = None
        elif current is not None:
            flags[current] = [*(flags[current] or []), arg]
    return flags


def apply_flag_passthrough(
    job: Job, backend: str, flags: dict[str, list[str] | None], notes: list[Note], *, owned: SpecOwned | None = None
) -> None:
    """``backend_options.<backend>`` into command-line flags (as :func:`parse_flags` reads them): flag
    name without ``--`` -> value; true is a bare flag, false leaves a flag out, a list is several values.
    Nested mappings flatten to dotted flag names. Checked as in :func:`apply_passthrough`."""
    options = job.backend_options.get(backend) or {}
    keys: list[_Key] = []
    for path, value in _leaves(_without_override(options)):
        dotted = _native_key(".".join(path))
        keys.append(_Key(dotted, ".".join(path), (dotted,), _flag_value(value)))
    ours = {_native_key(flag): True if values is None else _one_or_list(values) for flag, values in flags.items()}
    for change in _decide(job, backend, options, ours, keys, owned or {}, nested=False):
        if change.apply:
            flag, value = "--" + change.key.dotted, change.key.value
            if value is False:
                flags.pop(flag, None)
            else:
                flags[flag] = None if value is True else list(value) if isinstance(value, list) else [value]
        notes.append(Note(f"backend_options.{backend}.{change.key.written}", "passthrough", change.note))


def passthrough_problems(backend: Backend, job: Job) -> list[str]:
    """The passthrough's refusals as ``backend_options...: problem`` lines, for ``static_problems``: so
    validate, the matrix verdict and every "backends that can" list see them before anything runs. It
    translates the job (only when it has options for this backend); other refusals are left to the
    checks that own them."""
    if not job.backend_options.get(backend.name) or _CHECKING.get():
        return []
    token = _CHECKING.set(True)
    try:
        backend.translate(job)
    except PassthroughError as exc:
        return list(exc.lines)
    except (PtsdkError, OSError):
        return []
    finally:
        _CHECKING.reset(token)
    return []


def _decide(
    job: Job,
    backend: str,
    options: Mapping[str, Any],
    ours: dict[str, Any],
    keys: list[_Key],
    owned: SpecOwned,
    *,
    nested: bool = True,
) -> list[_Change]:
    """Each passthrough key against ptsdk's own (dotted leaf -> value): what to apply, or every problem."""
    where = f"backend_options.{backend}"
    entries, problems = _override_entries(options, where)
    changes: list[_Change] = []
    fields: dict[str, Any] | None = None
    for key in keys:
        d, value = key.dotted, key.value
        loc = f"{where}.{_cut(key.written)}"
        hint = f"name it in {where}.{PTSDK_OVERRIDE}: [{_cut(d)}]"
        exact = d in ours
        old = ours.get(d)
        below = [k for k in ours if k.startswith(d + ".")] if nested else []
        above = next((k for k in ours if d.startswith(k + ".") and not _is_empty_mapping(ours[k])), None)
        above = above if nested else None
        if exact and _same(old, value):
            changes.append(_Change(key, f"{_show(value)}: ptsdk's own value, unchanged", apply=False))
            continue
        if _is_empty_mapping(value) and below:
            changes.append(_Change(key, "an empty mapping: ptsdk's keys under it stay", apply=False))
            continue
        extends = exact and isinstance(old, list) and isinstance(value, list) and _keeps(old, value)
        allowed = any(d == e or d.startswith(e + ".") for e in entries)
        owner = _owned_field(d, owned)
        if owner is not None and not allowed:
            now = f" (ptsdk sets {_show(old)})" if exact else ""
            verb = "replace ptsdk's value" if exact or below else "set it anyway"
            problems.append(f"{loc}: the job's {owner} owns this{now}; set it there, or {hint} to {verb}")
            continue
        if exact and not extends and not allowed:
            if fields is None:
                fields = _job_fields(job)
            source = _source(fields, old, d)
            said = f"{_show(old)}, from {source}" if source else _show(old)
            fix = "set it there" if source else "change the job"
            if isinstance(old, list) and isinstance(value, list):
                keep = _show([*old, *(v for v in value if not any(_same(v, o) for o in old))])
                problems.append(
                    f"{loc}: ptsdk sets this from the job ({said}) and a list replaces it: keep ptsdk's entries "
                    f"({keep}), or {hint} to replace ptsdk's value"
                )
            else:
                problems.append(
                    f"{loc}: ptsdk sets this from the job ({said}); {fix}, or {hint} to replace ptsdk's value"
                )
            continue
        if below and not allowed:
            shown = ", ".join(_cut(k) for k in below[:3]) + (f" and {len(below) - 3} more" if len(below) > 3 else "")
            problems.append(
                f"{loc}: ptsdk sets {shown} under this from the job; give a mapping to merge with ptsdk's keys, "
                f"or {hint} to replace them"
            )
            continue
        if above is not None and not allowed:
            problems.append(
                f"{loc}: ptsdk sets {_cut(above)} to {_show(ours[above])}, not a mapping; "
                f"name it in {where}.{PTSDK_OVERRIDE}: [{_cut(above)}] to replace it"
            )
            continue
        if exact and extends:
            note = f"set to {_show(value)}, keeping ptsdk's entries {_show(old)}"
        elif exact or below or above is not None:
            replaced = _show(old) if exact else f"its keys under {_cut(d)}" if below else _show(ours[above or ""])
            note = f"set to {_show(value)}, replacing ptsdk's {replaced} ({PTSDK_OVERRIDE})"
        else:
            note = f"set to {_show(value)} (ptsdk sets no value)"
        if owner is not None:
            note += f"; the job's {owner} does not say so ({PTSDK_OVERRIDE})"
        changes.append(_Change(key, note))
    for entry in entries:
        if not any(k.dotted == entry or k.dotted.startswith(entry + ".") for k in keys):
            problems.append(
                f"{where}.{PTSDK_OVERRIDE}: {_cut(entry)} names no key set in {where}; remove it or check its spelling"
            )
    if problems:
        raise PassthroughError(
            f"{where}: {len(problems)} problem(s) with what the passthrough would set", lines=problems
        )
    return changes


def _override_entries(options: Mapping[str, Any], where: str) -> tuple[list[str], list[str]]:
    raw = options.get(PTSDK_OVERRIDE, [])
    if not isinstance(raw, list) or not all(isinstance(e, str) and e.strip() for e in raw):
        return [], [
            f"{where}.{PTSDK_OVERRIDE}: a list of the native keys (dotted) whose ptsdk value this job replaces, "
            f"got {brief(raw)}"
        ]
    return [_native_key(e.strip()) for e in raw], []


def _without_override(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k != PTSDK_OVERRIDE}


def _native_key(key: str) -> str:
    """A Hydra override's or a flag's key without its ``+``/``++``/``~`` or ``--`` prefix."""
    return key.lstrip("+~").removeprefix("--")


def _leaves(value: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) of every non-mapping value and empty mapping under `value`, in order."""
    for key, item in value.items():
        here = (*path, str(key))
        if isinstance(item, dict) and item:
            yield from _leaves(item, here)
        else:
            yield here, item


def _set_in(config: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = config
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def _resolve(config: dict[str, Any], path: tuple[str, ...]) -> tuple[str, ...]:
    """Where a passthrough path goes in a config mapping, as the same dotted key: a key the config has
    literally (``a.b`` in a flat mapping of dotted keys) is used as is, and a dotted key whose first part
    is a mapping of the config (``trl.beta`` beside a ``trl:`` section) goes inside it."""
    node: Any = config
    out: list[str] = []
    rest = list(path)
    while rest:
        for j in range(len(rest), 0, -1):
            name = ".".join(rest[:j])
            if isinstance(node, dict) and name in node:
                out.append(name)
                rest, node = rest[j:], node[name]
                break
        else:
            first, dot, tail = rest[0].partition(".")
            if dot and isinstance(node, dict) and isinstance(node.get(first), dict):
                rest = [first, tail, *rest[1:]]
                continue
            out += rest
            break
    return tuple(out)


def _set_override(overrides: dict[str, Any], key: _Key, value: Any) -> None:
    """Set a passthrough key in Hydra overrides: inside a mapping ptsdk set above it, else replacing the
    overrides at or under it (an override ptsdk set at this very key keeps ptsdk's spelling; a ``~key``
    deletion replaces it)."""
    d = key.dotted
    for name, current in overrides.items():
        base = _native_key(name)
        if d.startswith(base + ".") and isinstance(current, dict):
            inner = copy.deepcopy(current)
            sub = tuple(d[len(base) + 1 :].split("."))
            if key.written.startswith("~"):
                parent: Any = inner
                for part in sub[:-1]:
                    parent = parent.get(part) if isinstance(parent, dict) else None
                if isinstance(parent, dict):
                    parent.pop(sub[-1], None)
            else:
                _set_in(inner, sub, value)
            overrides[name] = inner
            return
    same = None if key.written.startswith("~") else next((n for n in overrides if _native_key(n) == d), None)
    for name in list(overrides):
        base = _native_key(name)
        if name != same and (base == d or base.startswith(d + ".") or d.startswith(base + ".")):
            del overrides[name]
    overrides[same or key.written] = value


def _flag_value(value: Any) -> Any:
    """A passthrough flag value as ptsdk's flags hold it: true, false, one string or a list of strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, list):
        return _one_or_list([_flag_text(v) for v in value])
    return _flag_text(value)


def _flag_text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _one_or_list(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


def _is_empty_mapping(value: Any) -> bool:
    return isinstance(value, dict) and not value


def _keeps(old: list[Any], new: list[Any]) -> bool:
    return all(any(_same(o, n) for n in new) for o in old)


def _owned_field(dotted: str, owned: SpecOwned) -> str | None:
    for pattern, field_name in owned.items():
        if fnmatchcase(dotted, pattern) or fnmatchcase(dotted, pattern + ".*"):
            return field_name
    return None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and len(value) < 40:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _same(a: Any, b: Any) -> bool:
    """Equal as native values: numbers by value (a flag's text too), booleans only as booleans."""
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
        )
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return (
            isinstance(a, (list, tuple))
            and isinstance(b, (list, tuple))
            and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        try:
            return x == y if type(x) is type(y) else float(x) == float(y)
        except OverflowError:
            return False
    return type(a) is type(b) and a == b


def _show(value: Any, limit: int = 80) -> str:
    """A value as it would read in YAML flow style, cut short."""
    text = _flow(value, limit)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flow(value: Any, budget: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return (
            value[: budget + 1] if value and value.strip() == value and "," not in value else json.dumps(value[:budget])
        )
    if isinstance(value, (list, tuple)):
        parts: list[str] = []
        for item in value:
            parts.append(_flow(item, budget))
            if sum(map(len, parts)) > budget:
                break
        return "[" + ", ".join(parts) + "]"
    if isinstance(value, dict):
        parts = []
        for k, item in value.items():
            parts.append(f"{k}: {_flow(item, budget)}")
            if sum(map(len, parts)) > budget:
                break
        return "{" + ", ".join(parts) + "}"
    return brief(value, budget)


def _cut(key: str, limit: int = 80) -> str:
    return key if len(key) <= limit else key[: limit - 3] + "..."


def _job_fields(job: Job) -> dict[str, Any]:
    """The job's own settings (not its passthrough), dotted field -> value."""
    data = job.model_dump(mode="json", exclude={"backend_options"})
    return {".".join(path): value for path, value in _leaves(data) if value is not None}


def _tokens(dotted: str) -> set[str]:
    return {t for t in re.split(r"[._\-+]+", dotted.lower()) if len(t) > 1 and t not in _STOP_WORDS}


def _field_tokens(name: str) -> set[str]:
    last = name.split(".")[-1]
    return _tokens(last) | set(_ALIASES.get(last, "").split())


def _source(fields: dict[str, Any], value: Any, dotted: str) -> str | None:
    """The job field a native value comes from, when that is clear: the only field with that value (a
    string, a fraction or a list), or the only one of those whose name shares a word with the native key."""
    if value is None or isinstance(value, bool) or _is_empty_mapping(value) or value == []:
        return None
    found = [name for name, v in fields.items() if not isinstance(v, bool) and _same(v, value)]
    number = _number(value)
    if isinstance(value, (list, dict)):
        distinctive = True
    elif number is not None:
        distinctive = isinstance(number, float) and not number.is_integer()
    else:
        distinctive = isinstance(value, str)
    if len(found) == 1 and distinctive:
        return found[0]
    words = _tokens(dotted)
    named = [name for name in found if _field_tokens(name) & words]
    return named[0] if len(named) == 1 else None
