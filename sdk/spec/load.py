"""Reading a job file (JSON or YAML) into a validated Job, with paths made absolute."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import yaml
from ptsdk.errors import SpecError, validation_lines
from ptsdk.spec.adapter import Lora, QLora
from ptsdk.spec.job import Job
from ptsdk.spec.method import REWARD_REF, _OnlineRL
from pydantic import ValidationError


def read_job_data(path: Path) -> dict[str, Any]:
    """Parse the file; every failure becomes a SpecError naming the file and the line."""
    if not path.exists():
        raise SpecError(f"{path}: no such job file")
    if path.is_dir():
        raise SpecError(f"{path}: is a directory, expected a .json or .yaml job file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the job file ({exc.__class__.__name__}: {exc})") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{path}{where}: not valid YAML: {problem}") from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply to be a job file") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise SpecError(f"{path}: a job file holds a mapping (method:, model:, data: ...), this one is {kind}")
    return data


def validate_job(data: dict[str, Any], *, source: str = "job") -> Job:
    try:
        return Job.model_validate(data)
    except ValidationError as exc:
        lines = validation_lines(exc.errors(include_url=False))
        raise SpecError(f"{source}: {len(lines)} problem(s) in the job", lines=lines) from None
    except RecursionError:
        raise SpecError(f"{source}: nested too deeply to be a job") from None


def load_job(path: str | Path, *, check_files: bool = True) -> Job:
    """Load, validate and resolve a job file. Relative paths are relative to the file."""
    path = Path(path)
    job = validate_job(read_job_data(path), source=str(path))
    if job.name is None:
        job.name = path.stem
    resolve_paths(job, path.resolve().parent)
    if check_files:
        problems = local_reference_problems(job)
        if problems:
            raise SpecError(f"{path}: {len(problems)} problem(s) with files the job names", lines=problems)
    return job


def _looks_local(text: str) -> bool:
    return text.startswith((".", "/", "~")) or text.endswith((".py", ".jsonl", ".json", ".parquet", ".jinja"))


def resolve_paths(job: Job, base: Path) -> None:
    def absolute(text: str) -> str:
        p = Path(text).expanduser()
        return str(p if p.is_absolute() else (base / p).resolve())

    for source in (job.data.train, job.data.eval):
        if source is not None and source.is_local:
            source.path = absolute(source.path)
    if _looks_local(job.model.name_or_path) or (base / job.model.name_or_path).exists():
        job.model.name_or_path = absolute(job.model.name_or_path)
    if job.model.chat_template and job.model.chat_template.endswith(".jinja"):
        job.model.chat_template = absolute(job.model.chat_template)
    if isinstance(job.adapter, (Lora, QLora)) and job.adapter.init_path:
        job.adapter.init_path = absolute(job.adapter.init_path)
    if isinstance(job.method, _OnlineRL) and job.method.rewards:
        resolved = []
        for ref in job.method.rewards:
            target, fn = ref.rsplit(":", 1)
            resolved.append(f"{absolute(target)}:{fn}" if target.endswith(".py") else ref)
        job.method.rewards = resolved


def local_reference_problems(job: Job) -> list[str]:
    """Files the job names that are missing or wrong, found before anything launches."""
    out = []
    for key in ("train", "eval"):
        source = getattr(job.data, key)
        if source is not None and source.is_local and not Path(source.path).is_file():
            out.append(f"data.{key}.path: no such file {source.path}")
    if job.model.name_or_path.startswith("/") and not Path(job.model.name_or_path).exists():
        out.append(f"model.name_or_path: no such directory {job.model.name_or_path}")
    if (
        job.model.chat_template
        and job.model.chat_template.endswith(".jinja")
        and not Path(job.model.chat_template).is_file()
    ):
        out.append(f"model.chat_template: no such file {job.model.chat_template}")
    init = getattr(job.adapter, "init_path", None)
    if init and not (Path(init) / "adapter_config.json").is_file():
        out.append(f"adapter.init_path: {init} holds no saved adapter (adapter_config.json)")
    for i, ref in enumerate(getattr(job.method, "rewards", []) or []):
        problem = reward_ref_problem(ref)
        if problem:
            out.append(f"method.rewards.{i}: {problem}")
    return out


def reward_ref_problem(ref: str) -> str | None:
    """Check a `file.py:fn` reference statically: the file parses and fn accepts (prompts, completions, **kwargs)."""
    match = REWARD_REF.match(ref)
    if not match:
        return f"{ref!r} is not 'file.py:function' or 'module:function'"
    target, fn = match.group("target"), match.group("fn")
    if not target.endswith(".py"):
        return None  # a module: importable only in the backend's environment, checked there
    path = Path(target)
    if not path.is_file():
        return f"no such file {path}"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        return f"{path}:{exc.lineno}: syntax error: {exc.msg}"
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == fn:
            args = node.args
            if args.kwarg is None:
                return f"{fn}() in {path.name} must accept **kwargs (it receives every dataset column)"
            positional = [a.arg for a in args.posonlyargs + args.args]
            if len(positional) < 2 and "completions" not in positional + [a.arg for a in args.kwonlyargs]:
                return f"{fn}() in {path.name} must take (prompts, completions, **kwargs)"
            return None
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    hint = f"; it defines {', '.join(defined)}" if defined else ""
    return f"{path.name} has no function {fn!r}{hint}"
