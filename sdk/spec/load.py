"""Reading a job file (JSON or YAML) into a validated Job, with paths made absolute."""

from __future__ import annotations

import ast
import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from ptsdk.errors import SpecError, brief, join_loc, validation_lines
from ptsdk.spec.adapter import Lora, QLora
from ptsdk.spec.job import JOB_NAME, MAX_NAME_CHARS, Job
from ptsdk.spec.method import REWARD_REF, _OnlineRL
from ptsdk.spec.parse import (
    MAX_FILE_VALUES,
    MAX_JOB_BYTES,
    DuplicateKey,
    TooManyValues,
    parse_json,
    parse_yaml,
    structure_problem,
    value_problems,
)
from pydantic import ValidationError

MAX_REWARD_FILE_BYTES = 10 << 20  # a reward function's source, parsed to check its signature


def shown_path(path: str | Path) -> str:
    """A path as error messages print it: a path of thousands of characters is cut in the middle."""
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]} ({len(text)} characters)"


def read_job_data(path: Path) -> dict[str, Any]:
    """Parse the file; every failure becomes a SpecError naming the file and the line."""
    where = shown_path(path)
    text = _read_text(path, where)
    try:
        data = parse_json(text) if path.suffix == ".json" else parse_yaml(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{where}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except DuplicateKey as exc:
        if exc.line is None:
            raise SpecError(f"{where}: duplicate key {brief(exc.key)} in one JSON object; keep one of them") from None
        raise SpecError(
            f"{where}:{exc.line}: duplicate key {brief(exc.key)} (first at line {exc.first_line}); keep one of them"
        ) from None
    except TooManyValues:
        raise SpecError(f"{where}: holds more than {MAX_FILE_VALUES:,} values; a job file is far smaller") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{where}{at}: not valid YAML: {problem[:200]}") from None
    except RecursionError:
        raise SpecError(f"{where}: nested too deeply to be a job file") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise SpecError(f"{where}: a job file holds a mapping (method:, model:, data: ...), this one is {kind}")
    return data


def _read_text(path: Path, where: str) -> str:
    """The file's text, read only if it is a regular file of bounded size: a FIFO, a device or a
    huge file is refused before anything is read, so nothing hangs or fills memory."""
    problem = path_problem(str(path))
    if problem:
        raise SpecError(f"{where}: {problem}")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat below refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise SpecError(f"{where}: no such job file") from None
        raise SpecError(f"{where}: cannot open the job file: {_os_reason(exc, str(path))}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SpecError(f"{where}: is a directory, expected a .json or .yaml job file")
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"{where}: is not a regular file (a pipe, device or socket); give a .json or .yaml file")
        if info.st_size > MAX_JOB_BYTES:
            raise SpecError(f"{where}: is {info.st_size:,} bytes; a job file is at most {MAX_JOB_BYTES:,}")
        chunks, size = [], 0
        while size <= MAX_JOB_BYTES:  # st_size can be 0 for files that are not (/proc): read at most the limit
            chunk = os.read(fd, MAX_JOB_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise SpecError(f"{where}: cannot read the job file: {_os_reason(exc, str(path))}") from None
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if len(raw) > MAX_JOB_BYTES:
        raise SpecError(f"{where}: is more than {MAX_JOB_BYTES:,} bytes, the most a job file may hold")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SpecError(
            f"{where}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the job file as UTF-8"
        ) from None


def validate_job(data: dict[str, Any], *, source: str = "job") -> Job:
    """The job the data describes. Values no job can hold (NaN, NUL bytes, huge integers, YAML dates,
    alias bombs) are refused before the spec is applied, each with its field."""
    found = structure_problem(data)
    if found:
        loc, problem = found
        raise SpecError(f"{source}: cannot be a job", lines=[f"{join_loc(loc)}: {problem}"])
    lines = [f"{join_loc(loc)}: {problem}" for loc, problem in value_problems(data)]
    if lines:
        raise SpecError(f"{source}: {len(lines)} problem(s) in the job", lines=lines)
    try:
        return Job.model_validate(data)
    except ValidationError as exc:
        lines = validation_lines(exc.errors(include_url=False), data)
        raise SpecError(f"{source}: {len(lines)} problem(s) in the job", lines=lines) from None
    except RecursionError:
        raise SpecError(f"{source}: nested too deeply to be a job") from None


def load_job(path: str | Path, *, check_files: bool = True) -> Job:
    """Load, validate and resolve a job file. Relative paths are relative to the file."""
    path = Path(path)
    where = shown_path(path)
    job = validate_job(read_job_data(path), source=where)
    if job.name is None:
        job.name = default_name(path.stem)
    return prepare_job(job, path.resolve().parent, source=where, check_files=check_files)


def prepare_job(job: Job, base: Path, *, source: str = "job", check_files: bool = True) -> Job:
    """A validated job made ready to run (in place): a name, paths checked and made absolute against `base`
    (the job file's folder; the working directory for a job built in code), the files it names checked."""
    if job.name is None:
        job.name = "job"
    problems = path_problems(job)
    if problems:
        raise SpecError(f"{source}: {len(problems)} problem(s) with paths the job names", lines=problems)
    resolve_paths(job, base)
    if check_files:
        problems = local_reference_problems(job)
        if problems:
            raise SpecError(f"{source}: {len(problems)} problem(s) with files the job names", lines=problems)
    return job


def default_name(stem: str) -> str:
    """A job file's stem made a valid job name (run directories are named after it)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip(".-")[:MAX_NAME_CHARS]
    return name if JOB_NAME.fullmatch(name) else "job"


# --- paths ----------------------------------------------------------------------------------


def _fs_limit(name: str, default: int) -> int:
    try:
        return int(os.pathconf("/", name))
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows) or no such limit
        return default


NAME_MAX = _fs_limit("PC_NAME_MAX", 255)
PATH_MAX = _fs_limit("PC_PATH_MAX", 4096)


def path_problem(text: str) -> str | None:
    """Why no filesystem call can take this path (NUL byte, too long, not encodable), or None."""
    if "\x00" in text:
        return "contains a NUL byte (\\x00); remove it"
    try:
        encoded = os.fsencode(text)
    except UnicodeError:
        return "is not valid Unicode text (an unpaired surrogate); fix it"
    longest = max(len(part) for part in encoded.split(os.fsencode(os.sep)))
    if longest > NAME_MAX:
        return f"path too long for the filesystem ({longest:,} bytes in one name; limit {NAME_MAX}); shorten it"
    if len(encoded) > PATH_MAX:
        return f"path too long for the filesystem ({len(encoded):,} bytes; limit {PATH_MAX}); shorten it"
    return None


def _os_reason(exc: OSError, path: str) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return path_problem(path) or f"path too long for the filesystem ({len(os.fsencode(path)):,} bytes)"
    return exc.strerror or exc.__class__.__name__


def _path_fields(job: Job) -> list[tuple[str, str]]:
    """(field, text) for every value the job uses as a filesystem path (or may: hub id or folder)."""
    out = [("model.name_or_path", job.model.name_or_path), ("output.dir", job.output.dir)]
    for key in ("train", "eval"):
        source = getattr(job.data, key)
        if source is not None:
            out.append((f"data.{key}.path", source.path))
    if job.model.chat_template and job.model.chat_template.endswith(".jinja"):
        out.append(("model.chat_template", job.model.chat_template))
    if job.data.images is not None and job.data.images.root:
        out.append(("data.images.root", job.data.images.root))
    init = getattr(job.adapter, "init_path", None)
    if init:
        out.append(("adapter.init_path", init))
    if isinstance(job.method, _OnlineRL):
        if job.method.reward_model:
            out.append(("method.reward_model", job.method.reward_model))
        for i, ref in enumerate(job.method.rewards):
            target = ref.rsplit(":", 1)[0]
            if target.endswith(".py"):
                out.append((f"method.rewards.{i}", target))
    return out


def path_problems(job: Job) -> list[str]:
    """Paths no filesystem call can take, named by field (checked before any is touched)."""
    return [f"{field}: {problem}" for field, text in _path_fields(job) if (problem := path_problem(text))]


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _looks_local(text: str) -> bool:
    return text.startswith((".", "/", "~")) or text.endswith((".py", ".jsonl", ".json", ".parquet", ".jinja"))


def resolve_paths(job: Job, base: Path) -> None:
    def absolute(text: str) -> str:
        try:
            p = Path(text).expanduser()
            return str(p if p.is_absolute() else (base / p).resolve())
        except (OSError, ValueError, RuntimeError):  # unresolvable (e.g. ~nosuchuser): left as written
            return text

    for source in (job.data.train, job.data.eval):
        if source is not None and source.is_local:
            source.path = absolute(source.path)
    if _looks_local(job.model.name_or_path) or _exists(base / job.model.name_or_path):
        job.model.name_or_path = absolute(job.model.name_or_path)
    if job.model.chat_template and job.model.chat_template.endswith(".jinja"):
        job.model.chat_template = absolute(job.model.chat_template)
    if job.data.images is not None and job.data.images.root:
        job.data.images.root = absolute(job.data.images.root)
    if isinstance(job.adapter, (Lora, QLora)) and job.adapter.init_path:
        job.adapter.init_path = absolute(job.adapter.init_path)
    reward_model = getattr(job.method, "reward_model", None)
    if reward_model and (_looks_local(reward_model) or _exists(base / reward_model)):
        job.method.reward_model = absolute(reward_model)  # type: ignore[union-attr]  # RL methods only
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
        if source is not None and source.is_local:
            problem = path_problem(source.path)
            if problem:
                out.append(f"data.{key}.path: {problem}")
            elif not _is_file(Path(source.path)):
                out.append(f"data.{key}.path: no such file {shown_path(source.path)}")
    name = job.model.name_or_path
    if name.startswith("/"):
        problem = path_problem(name)
        if problem:
            out.append(f"model.name_or_path: {problem}")
        elif not _exists(Path(name)):
            out.append(f"model.name_or_path: no such directory {shown_path(name)}")
    template = job.model.chat_template
    if template and template.endswith(".jinja"):
        problem = path_problem(template)
        if problem:
            out.append(f"model.chat_template: {problem}")
        elif not _is_file(Path(template)):
            out.append(f"model.chat_template: no such file {shown_path(template)}")
    root = job.data.images.root if job.data.images is not None else None
    if root:
        problem = path_problem(root)
        if problem:
            out.append(f"data.images.root: {problem}")
        elif not _is_dir(Path(root)):
            out.append(f"data.images.root: no such folder {shown_path(root)}")
    init = getattr(job.adapter, "init_path", None)
    if init:
        problem = path_problem(os.path.join(init, "adapter_config.json"))
        if problem:
            out.append(f"adapter.init_path: {problem}")
        elif not _is_file(Path(init) / "adapter_config.json"):
            out.append(f"adapter.init_path: {shown_path(init)} holds no saved adapter (adapter_config.json)")
    for i, ref in enumerate(getattr(job.method, "rewards", []) or []):
        problem = reward_ref_problem(ref)
        if problem:
            out.append(f"method.rewards.{i}: {problem}")
    return out


def reward_ref_problem(ref: str) -> str | None:
    """Check a `file.py:fn` reference statically: the file parses and fn accepts (prompts, completions, **kwargs)."""
    match = REWARD_REF.match(ref)
    if not match:
        return f"{brief(ref)} is not 'file.py:function' or 'module:function'"
    target, fn = match.group("target"), match.group("fn")
    if not target.endswith(".py"):
        return None  # a module: importable only in the backend's environment, checked there
    problem = path_problem(target)
    if problem:
        return problem
    path = Path(target)
    if not _is_file(path):
        return f"no such file {shown_path(path)}"
    try:
        if path.stat().st_size > MAX_REWARD_FILE_BYTES:
            return f"{path.name} is larger than {MAX_REWARD_FILE_BYTES:,} bytes; is it really a reward function?"
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {shown_path(path)} ({exc.__class__.__name__}); it must be a readable UTF-8 Python file"
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        at = f":{exc.lineno}" if exc.lineno else ""
        return f"{shown_path(path)}{at}: syntax error: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        return f"{shown_path(path)}: not Python source a reward function can live in ({exc.__class__.__name__})"
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
    hint = f"; it defines {', '.join(defined[:10])}{', ...' if len(defined) > 10 else ''}" if defined else ""
    return f"{path.name} has no function {brief(fn)}{hint}"
