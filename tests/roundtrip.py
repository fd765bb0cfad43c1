"""The upstream corpus round trip (issue 12), shared by every backend's import tests.

Each corpus entry (tests/data/upstream/<framework>/*.yaml) is written out as the native config it
records (`write_native`), imported (`Backend.import_native`), validated as a ptsdk job, translated back
(`Backend.translate`), and compared setting by setting (`unexplained`): a native setting whose value
does not come back must be explained by a note that names it, from the import or from the translation.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(__file__).resolve().parent / "data" / "upstream"


@dataclass
class Entry:
    name: str
    framework: str
    kind: str  # yaml | command_line | hydra_overrides | python_kwargs
    entrypoint: str
    method: str
    settings: dict[str, Any]
    raw: dict[str, Any]


def corpus(framework: str) -> list[Entry]:
    out = []
    for path in sorted((CORPUS / framework).glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        out.append(
            Entry(
                name=path.stem,
                framework=framework,
                kind=raw["kind"],
                entrypoint=str(raw.get("entrypoint") or ""),
                method=str(raw.get("method") or ""),
                settings=dict(raw.get("settings") or {}),
                raw=raw,
            )
        )
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'a.b': 1} -> {'a': {'b': 1}} (for YAML configs recorded with dotted keys)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def write_native(entry: Entry, folder: Path) -> Path:
    """The entry as the file a user would import: YAML, or a shell script with the command line."""
    folder.mkdir(parents=True, exist_ok=True)
    if entry.kind == "yaml":
        path = folder / f"{entry.name}.yaml"
        path.write_text(yaml.safe_dump(nest(entry.settings), sort_keys=False))
        return path
    path = folder / f"{entry.name}.sh"
    if entry.kind == "hydra_overrides":
        args = [f"{k}={_text(v)}" for k, v in entry.settings.items()]
        command = ["python3", "-m", entry.entrypoint, *args]
    else:  # command_line (python_kwargs is written the same way: keyword = flag)
        args = []
        for k, v in entry.settings.items():
            if v is True:
                args.append(f"--{k}")
            elif isinstance(v, list):
                args += [f"--{k}", *(_text(x) for x in v)]
            else:
                args += [f"--{k}", _text(v)]
        module = not entry.entrypoint.endswith(".py") and "/" not in entry.entrypoint
        command = ["python", *(["-m"] if module else []), entry.entrypoint, *args]
    path.write_text("#!/bin/bash\nset -x\n" + " \\\n    ".join(shlex.quote(c) for c in command) + "\n")
    return path


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def same(a: Any, b: Any) -> bool:
    """Equal as configs mean it: '5.0e-6' == 5e-06, 'True' == true, '8' == 8; lists item by item."""
    a, b = _value(a), _value(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not (isinstance(a, bool) or isinstance(b, bool)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    return a == b


def _value(v: Any) -> Any:
    if isinstance(v, str):
        text = v.strip()
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        if text.lower() in ("null", "none", "~"):
            return None
        try:
            return float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            return text
    return v


def unexplained(original: Mapping[str, Any], back: Mapping[str, Any], notes: Iterable[object]) -> list[str]:
    """Native settings that did not come back equal and that no note names (a note names a setting when
    its text holds the dotted key, e.g. `[passthrough] axolotl: special_tokens.pad_token: ...`)."""
    texts = [str(n) for n in notes]
    out = []
    for key, value in original.items():
        if key in back and same(value, back[key]):
            continue
        if any(_names(t, key) for t in texts):
            continue
        shown = repr(back[key]) if key in back else "absent"
        out.append(f"{key}: {value!r} in the example, {shown} after the round trip, and no note says why")
    return out


def _names(text: str, key: str) -> bool:
    for i in _find_all(text, key):
        before = text[i - 1] if i else " "
        after = text[i + len(key)] if i + len(key) < len(text) else " "
        if not (before.isalnum() or before in "_.") and not (after.isalnum() or after == "_"):
            return True
    return False


def _find_all(text: str, key: str) -> Iterator[int]:
    i = text.find(key)
    while i != -1:
        yield i
        i = text.find(key, i + 1)
