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


def write_launched(entry: Entry, folder: Path) -> Path | None:
    """The entry as its upstream launch script: the command line behind its launcher (deepspeed, torchrun,
    accelerate launch, `trl <cmd>`, ray job submit, srun ... bash -c), with the files the launcher reads
    (e.g. an accelerate config) written beside it. None when the entry has no launcher."""
    launcher = entry.raw.get("launcher")
    if not launcher:
        return None
    plain = write_native(entry, folder / "plain")
    inner_command = shlex.split(plain.read_text().split("\n", 2)[2].replace("\\\n", " "))
    for rel, content in (entry.raw.get("referenced_files") or {}).items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump(nest(content), sort_keys=False)
        target.write_text(text)
    program = inner_command[1:]  # without the interpreter
    if program[:1] == ["-m"]:
        program = program[1:]
        module = True
    else:
        module = False

    def launched(spec: dict[str, Any], rest: list[str]) -> list[str]:
        command = str(spec["command"]).split()
        args = _launcher_args(spec.get("args") or {})
        if command[-1] == "submit":  # ray job submit ... -- python3 -m module args
            return [*command, *args, "--", "python3", *(["-m"] if module else []), *rest]
        if command[0] == "trl":  # the TRL CLI: trl grpo --accelerate_config zero2 --flags
            return [*command, *args, *rest[1:]]
        if command[0] == "deepspeed":
            return [*command, *args, *(["--module"] if module else []), *rest]
        if command[0] == "torchrun":
            return [*command, *args, *(["-m"] if module else []), *rest]
        return [*command, *args, *(["-m"] if module else []), *rest]

    if launcher.get("inner"):
        inner = launched(launcher["inner"], program)
        outer = [*str(launcher["command"]).split(), *_launcher_args(launcher.get("args") or {})]
        command = [*outer, "bash", "-c", " ".join(shlex.quote(c) for c in inner)]
    else:
        command = launched(launcher, program)
    path = folder / f"{entry.name}.sh"
    path.write_text("#!/bin/bash\nset -x\n" + " \\\n    ".join(shlex.quote(c) for c in command) + "\n")
    return path


def _launcher_args(args: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in args.items():
        flag = f"-{k}" if len(k) == 1 else f"--{k}"
        if v is True:
            out.append(flag)
        else:
            out += [flag, _text(v)]
    return out


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
