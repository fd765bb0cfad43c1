"""Preflight: read the job's data and model before anything launches, for every backend.

A job can be a valid spec and still fail minutes later inside the framework, with the cause only in
its log: an empty or CSV data file, one broken JSON line, columns named differently, preference
records in an SFT job, a number where text belongs, a hub model on a machine without network, an
empty model folder. :func:`preflight_problems` finds these in ptsdk's own process, in bounded time,
and names each as a ``field.path: problem and fix`` line.

- Data (``data.train``, ``data.eval``): local ``.jsonl``/``.json`` files are streamed (JSON Lines, or a
  top-level JSON array in a ``.json`` file, as ``datasets``' json loader reads them), ``.parquet``
  files through pyarrow (schema and row count from the footer, then the rows in batches). Every
  record is checked against the method's canonical format after ``data.columns``. Reading stops
  after ``budget_s`` seconds; a note then says how far it got.
- A path that is neither such a file nor a hub dataset id (``train.csv``, ``data/train.txt``, a
  folder) is named, with the conversion to make.
- Images (``data.images``): every record's image files are resolved (``data.images.root``, else the data
  file's folder) and decoded with PIL, each file once, within the same time budget; image parts in messages
  must match the listed images one to one. Without ``data.images`` an images column is refused, never ignored.
- Model (``model.name_or_path``, ``method.reward_model``): a local folder must hold a config.json
  with a ``model_type``, weights and a tokenizer; a hub id must be in the Hugging Face cache or the
  hub reachable (:func:`hub_reachable`, one cheap probe per process). :func:`hub_problems` gives
  these hub lines alone, without reading data, for a caller that only warns about them.

No torch, transformers or datasets import; pyarrow is imported only to read a .parquet file, PIL only to
open the images of a job with data.images.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from ptsdk.spec.data import FAMILY_FORMATS, LOCAL_SUFFIXES, RECORD_FIELDS, DataSource, ImageSpec
from ptsdk.spec.job import Job

ROLES = ("system", "user", "assistant", "tool")
OPTIONAL_FIELDS = frozenset({"ground_truth", "input"})
TEXT_FIELDS = ("prompt", "completion", "chosen", "rejected", "instruction", "input", "output")
MAX_LINE_BYTES = 64 << 20  # a longer line (or JSON array element) is not parsed
CHUNK_BYTES = 1 << 20
PARQUET_BATCH_ROWS = 1024
SHOWN_GROUPS = 5  # distinct problems shown per file
SHOWN_PLACES = 3  # line numbers shown per problem
HUB_PROBE_TIMEOUT_S = 2.0
#: Columns a text-only job would silently drop: the names TRL, Axolotl and vERL read images from.
IMAGE_COLUMNS = ("images", "image")
#: Files beside a model's config.json that make AutoProcessor build an image processor.
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")

FORMAT_WORDS = {
    "messages": "chat (messages)",
    "prompt_completion": "SFT (prompt/completion)",
    "preference": "pairwise preference (prompt/chosen/rejected)",
    "unpaired_preference": "unpaired preference, KTO-style (prompt/completion/label)",
    "prompt": "RL prompt",
    "instruction": "Alpaca instruction (instruction/input/output)",
}
FAMILY_METHODS = {
    "sft": "sft",
    "preference": "dpo, ipo, orpo, simpo or cpo",
    "unpaired_preference": "kto",
    "rl": "grpo, ppo, rloo or reinforce_pp",
}
# Column names that usually hold a canonical field, for the data.columns suggestion.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "prompt": ("question", "instruction", "input", "query", "problem", "prompt_text", "context"),
    "completion": ("answer", "response", "output", "target", "solution", "reply", "completion_text"),
    "chosen": ("chosen_response", "response_chosen", "preferred", "better", "accepted"),
    "rejected": ("rejected_response", "response_rejected", "dispreferred", "worse"),
    "messages": ("conversations", "conversation", "chat", "dialog", "dialogue", "turns"),
    "label": ("labels", "kto_label", "desirable", "is_good", "good"),
    "ground_truth": ("answer", "solution", "target", "reference", "gold"),
}
# File name endings that are not hub dataset ids; ptsdk reads none of them.
OTHER_FILE_SUFFIXES = frozenset(
    ".csv .tsv .txt .text .ndjson .jsonlines .jl .gz .bz2 .xz .zst .zip .tar .tgz .7z .arrow .feather .pq .parq "
    ".xlsx .xls .ods .yaml .yml .xml .html .md .pkl .pickle .npy .npz .pt .h5 .hdf5 .avro .orc .lance .sqlite "
    ".db".split()
)
COMPRESSED_SUFFIXES = frozenset({".gz", ".bz2", ".xz", ".zst", ".zip", ".tar", ".tgz", ".7z"})
REPO_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:/[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)?$")
WEIGHT_FILE = re.compile(
    r"(\.safetensors|\.safetensors\.index\.json|^pytorch_model.*\.bin|\.bin\.index\.json|^tf_model\.h5"
    r"|^flax_model\.msgpack|\.gguf|^consolidated.*\.pth)$"
)
TOKENIZER_FILE = re.compile(
    r"^(tokenizer\.json|tokenizer\.model|vocab\..+|merges\.txt|spiece\.model|.*sentencepiece.*\.model"
    r"|.+\.tiktoken|.*\.bpe\.model)$"
)


@dataclass
class Preflight:
    """What the preflight found: problems (the job must not launch) and notes (what was not checked)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: Preflight) -> None:
        self.problems += other.problems
        self.notes += other.notes


def preflight_problems(
    job: Job,
    *,
    budget_s: float = 5.0,
    max_records: int | None = None,
    base: Path | None = None,
    check_hub: bool = True,
) -> list[str]:
    """``field.path: problem and fix`` lines for the job's data and model; empty when all is well.

    budget_s bounds the time spent reading data files (all of them together); max_records stops each
    file after that many records. base is the job file's folder (relative paths that load_job left
    alone, such as ``data/train.csv``, are looked up there). check_hub=False leaves out the Hugging
    Face cache and reachability checks of hub ids (:func:`hub_problems`)."""
    return preflight(job, budget_s=budget_s, max_records=max_records, base=base, check_hub=check_hub).problems


def preflight(
    job: Job,
    *,
    budget_s: float = 5.0,
    max_records: int | None = None,
    base: Path | None = None,
    check_hub: bool = True,
) -> Preflight:
    """Problems and notes; see :func:`preflight_problems`."""
    deadline = time.monotonic() + max(budget_s, 0.0)
    spec = _Format.of(job)
    sources = _sources(job)
    results: dict[str, Preflight] = {}
    # Evaluation data first, with at most half the time: it is usually small, and training data gets the rest.
    for key, source in reversed(sources):
        limit = deadline if key == "train" else time.monotonic() + max(deadline - time.monotonic(), 0.0) / 2
        results[key] = _guarded(f"data.{key}.path", _check_source, key, source, spec, limit, max_records, base)
    report = Preflight()
    for key, _ in sources:
        report.extend(results[key])
    for where, ref, reported in _models(job):
        vision = job.data.images is not None and where == "model.name_or_path"
        report.extend(_guarded(where, _model_check, where, ref, base, reported, vision))
    if check_hub:
        report.problems += hub_problems(job, base=base)
    return report


def hub_problems(job: Job, *, base: Path | None = None) -> list[str]:
    """The hub ids of the job (model, reward model, hub datasets) that are neither in the Hugging Face
    cache nor fetchable from here (the hub does not answer, or an offline variable is set); reads no data.

    :func:`preflight` includes these lines unless check_hub=False: ``run`` refuses them, ``validate``
    (often run away from the cluster) can print them as warnings. base: as for :func:`preflight_problems`."""
    out = []
    for where, repo_id, repo_type in _hub_refs(job, base):
        out += _unreachable(where, repo_id, repo_type)
    return out


def _sources(job: Job) -> list[tuple[str, DataSource]]:
    return [("train", job.data.train)] + ([("eval", job.data.eval)] if job.data.eval is not None else [])


def _models(job: Job) -> list[tuple[str, str, bool]]:
    """(field, reference, whether load_job already names a missing local folder)."""
    models = [("model.name_or_path", job.model.name_or_path, True)]
    reward_model = getattr(job.method, "reward_model", None)
    if isinstance(reward_model, str) and reward_model:
        models.append(("method.reward_model", reward_model, False))
    return models


def _hub_refs(job: Job, base: Path | None) -> list[tuple[str, str, str]]:
    """(field, repo id, repo type) for each well-formed hub id the job names."""
    refs = [(f"data.{key}.path", source.path, "dataset") for key, source in _sources(job) if not source.is_local]
    refs += [(where, ref, "model") for where, ref, _ in _models(job)]
    return [ref for ref in refs if _names_hub_id(*ref, base)]


def _names_hub_id(where: str, ref: str, repo_type: str, base: Path | None) -> bool:
    try:
        hub = _is_hub_model(ref, base) if repo_type == "model" else _nonlocal_data_problems(where, ref, base) is None
    except (OSError, ValueError):
        return False  # preflight names the path the filesystem refuses
    return hub and _valid_repo_id(ref)


def _expand(text: str) -> Path:
    """`~/x` and `~user/x` expanded; a `~nosuchuser/x` stays as written (it is then no such folder)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory."
        return Path(text)


def _guarded(where: str, check: Callable[..., Preflight], *args: Any) -> Preflight:
    """A path the filesystem refuses (NUL byte, name too long, I/O error) is a problem line, not a traceback."""
    try:
        return check(*args)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return _fail(f"{where}: cannot be checked ({reason})")


# --- the record format -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    method: str
    family: str
    fmt: str
    allowed: tuple[str, ...]
    columns: dict[str, str]
    message_keys: dict[str, str] = field(default_factory=dict)
    role_names: dict[str, str] = field(default_factory=dict)
    implicit_prompt: bool = False
    images: ImageSpec | None = None

    @classmethod
    def of(cls, job: Job) -> _Format:
        family = job.method.family
        allowed = FAMILY_FORMATS[family]
        d = job.data
        return cls(
            job.method.name,
            family,
            d.format or allowed[0],
            allowed,
            dict(d.columns),
            {str(k): v for k, v in d.message_keys.items()},
            dict(d.role_names),
            d.prompt_in_answers,
            d.images,
        )

    @property
    def required(self) -> tuple[str, ...]:
        need = _required(self.fmt)
        return tuple(f for f in need if f != "prompt") if self.implicit_prompt else need

    @property
    def role_key(self) -> str:
        return self.message_keys.get("role", "role")

    @property
    def content_key(self) -> str:
        return self.message_keys.get("content", "content")


def _required(fmt: str) -> tuple[str, ...]:
    return tuple(f for f in RECORD_FIELDS[fmt] if f not in OPTIONAL_FIELDS)


def _family_of(fmt: str) -> str:
    return next(family for family, formats in FAMILY_FORMATS.items() if fmt in formats)


def _kind(value: Any) -> str:
    """A value's JSON type in words (no value: problems are grouped by their text)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Checker:
    """Checks records one by one against the job's format; returns problem texts (no place)."""

    def __init__(self, spec: _Format, images: _Images | None = None) -> None:
        self.spec = spec
        self.images = images
        self.renames = {source: canonical for canonical, source in spec.columns.items()}
        # With the prompt inside chosen/rejected a stray prompt column is never read (UltraFeedback has one).
        self.text_fields = tuple(
            f for f in RECORD_FIELDS[spec.fmt] if f in TEXT_FIELDS and not (spec.implicit_prompt and f == "prompt")
        )
        self.nonempty = {"completion", "chosen", "rejected"} | ({"prompt"} if spec.family == "rl" else set())
        self.shapes: dict[str, tuple[str, str]] = {}  # field -> (shape, place first seen)
        self._missing_cache: dict[tuple[str, ...], str] = {}

    def check(self, record: Any, place: str) -> list[str]:
        if not isinstance(record, dict):
            return [f"a record is a JSON object ({{...}}); this one is {_kind(record)}"]
        view: dict[str, Any] = {self.renames.get(str(k), str(k)): v for k, v in record.items()}
        missing = [f for f in self.spec.required if f not in view]
        if missing:
            key = tuple(record)
            if key not in self._missing_cache:
                self._missing_cache[key] = self._missing(record, view, missing)
            return [self._missing_cache[key]]
        out: list[str] = []
        shapes: dict[str, str] = {}
        for name in self.text_fields:
            if name not in view:
                continue
            problem, shape = self._text(name, view[name])
            if problem:
                out.append(problem)
            if shape:
                shapes[name] = shape
                first = self.shapes.setdefault(name, (shape, place))
                if first[0] != shape:
                    out.append(
                        f"{name} is {_SHAPE_WORDS[shape]} here but {_SHAPE_WORDS[first[0]]} at {first[1]}; "
                        "a column holds one kind of value: all strings or all message lists"
                    )
        if len(set(shapes.values())) > 1:
            text = [n for n, s in shapes.items() if s == "string"]
            chat = [n for n, s in shapes.items() if s == "messages"]
            out.append(
                f"{'/'.join(text)} {'is a string' if len(text) == 1 else 'are strings'} but {'/'.join(chat)} "
                f"{'is a message list' if len(chat) == 1 else 'are message lists'}; give {'/'.join(shapes)} "
                "all as strings or all as lists of {role, content} messages"
            )
        if "messages" in view and self.spec.fmt == "messages":
            value = view["messages"]
            if not isinstance(value, list):
                out.append(f"messages must be a list of {{role, content}} objects, got {_kind(value)}")
            else:
                problem = _messages_problem("messages", value, self.spec)
                if problem:
                    out.append(problem)
                elif not any(_role(m, self.spec) == "assistant" for m in value):
                    out.append("messages has no assistant turn: nothing to train on")
        if self.spec.fmt == "unpaired_preference" and not isinstance(view.get("label"), bool):
            out.append(f"label must be true or false, got {_kind(view.get('label'))}")
        return out + self._images(view)

    def _images(self, view: dict[str, Any]) -> list[str]:
        """The record's images: listed as data.images says, each file one PIL opens, one per image part."""
        images = self.spec.images
        if images is None:
            found = [c for c in IMAGE_COLUMNS if c in view]
            if found:
                return [
                    f"records have an {found[0]!r} column, which a text-only job would silently ignore: set "
                    f"data.images: {{column: {found[0]}}} to train on the images (with a model that has a "
                    "processor), or remove the column"
                ]
            return []
        where = f"{images.column} (data.images.column)"
        parts = [p for name in MESSAGE_FIELDS for p in _image_parts(view.get(name), self.spec.content_key)]
        named = [p for p in parts if p is not None]
        value = view.get(images.column)
        out = []
        if named:
            if value is not None or len(named) != len(parts):
                return [
                    "image parts name their files ({type: image, path: ...}) but "
                    + (f"{where} lists files too" if value is not None else "other image parts are placeholders")
                    + "; in one record give every image as a part with its path, or list them all in the column"
                ]
            value = named
        elif images.column not in view:
            return [
                f"records have no {images.column!r} column (data.images.column) and no image parts with a path: "
                "list each record's image files there"
            ]
        elif not isinstance(value, list):
            return [f"{where} must be a list of image file paths, got {_kind(value)}"]
        elif not all(isinstance(v, str) and v.strip() for v in value):
            return [f"{where} must be a list of image file paths (non-empty strings)"]
        elif not value:
            return [f"{where} is an empty list: a record of a job with data.images holds at least one image"]
        elif parts and len(parts) != len(value):
            out.append(
                f"the messages hold {len(parts)} image part{'s' if len(parts) != 1 else ''} but {where} lists "
                f"{len(value)} image" + ("s" if len(value) != 1 else "") + "; each image part is filled by the next "
                "listed image"
            )
        if len(value) > images.max_per_record:
            return [
                f"the record holds {len(value)} images, more than data.images.max_per_record="
                f"{images.max_per_record}; split the record or raise the limit"
            ]
        if self.spec.family == "rl" and not isinstance(view.get("prompt"), list):
            out.append(
                "prompt must be a list of {role, content} messages in a job with images (the trainers place the "
                "images in a chat turn)"
            )
        if self.images is not None:
            out += [p for p in map(self.images.problem, value) if p]
        return out

    def _text(self, name: str, value: Any) -> tuple[str | None, str | None]:
        if isinstance(value, str):
            if name in self.nonempty and not value.strip():
                what = "nothing to generate from" if name == "prompt" else "nothing to train on"
                return f"{name} is an empty string: {what}", "string"
            return None, "string"
        if isinstance(value, list):
            problem = _messages_problem(name, value, self.spec)
            return problem, None if problem else "messages"
        return f"{name} must be a string or a list of {{role, content}} messages, got {_kind(value)}", None

    def _missing(self, record: dict[str, Any], view: dict[str, Any], missing: list[str]) -> str:
        spec = self.spec
        names = [str(k) for k in record]
        have = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "") or "no fields"
        wanted = "/".join(spec.required)
        mapped = [f for f in missing if f in spec.columns]
        if mapped:
            f = mapped[0]
            return (
                f"data.columns.{f} names column {spec.columns[f]!r}, which the records do not have "
                f"(they have {have}); fix the column name"
            )
        keys = set(view)
        for other in ("preference", "unpaired_preference", "prompt_completion", "messages", "instruction"):
            need = _required(other)
            if other == spec.fmt or not set(need) <= keys:
                continue
            if other in spec.allowed:
                return f"records have {'/'.join(need)}, not {wanted}: set data.format: {other}"
            reads = " or ".join(f"{a} ({'/'.join(_required(a))})" for a in spec.allowed)
            return (
                f"records have {'/'.join(need)}: this looks like {FORMAT_WORDS[other]} data, but method "
                f"{spec.method} reads {reads} records; use method {FAMILY_METHODS[_family_of(other)]} for this "
                f"data, or give {wanted} records"
            )
        for key, value in record.items():
            if key != "messages" and isinstance(value, list) and value and isinstance(value[0], dict):
                if len(record) == 1:
                    return (
                        f"the file holds one object whose {key!r} is a list of records; write the records "
                        "themselves: one JSON object per line (or a JSON array in a .json file)"
                    )
        used = set(record) & (set(self.renames) | set(RECORD_FIELDS[spec.fmt]))
        guesses: dict[str, str] = {}
        for f in missing:
            for name in record:
                if name not in used and name not in guesses.values() and name.lower() in SYNONYMS.get(f, ()):
                    guesses[f] = name
                    break
        mapping = ", ".join(f"{f}: {guesses.get(f, '<column>')}" for f in missing)
        fields = " or ".join(repr(f) for f in missing)
        formats = [a for a in spec.allowed if a != spec.fmt]
        alt = f", or set data.format ({' or '.join(formats)})" if formats else ""
        return (
            f"records have no field {fields} ({spec.fmt} records have {wanted}; these have {have}); "
            f"map the columns with data.columns: {{{mapping}}}{alt}"
        )


_SHAPE_WORDS = {"string": "a string", "messages": "a list of messages"}
#: The record fields that may hold messages, hence image parts.
MESSAGE_FIELDS = ("messages", "prompt", "completion", "chosen", "rejected")


def _image_parts(value: Any, content_key: str = "content") -> list[Any]:
    """The {type: image} parts of a message list, in order: each its path, or None for a placeholder."""
    found: list[Any] = []
    for message in value if isinstance(value, list) else []:
        content = message.get(content_key) if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image":
                found.append(part.get("path"))
    return found


class _Images:
    """Image files of one data file, each opened once: resolved against a folder, decoded by PIL, within a deadline."""

    def __init__(self, root: Path, deadline: float) -> None:
        self.root, self.deadline = root, deadline
        self.seen: dict[str, str | None] = {}
        self.skipped = 0  # files not opened because the time was up

    def problem(self, ref: str) -> str | None:
        if ref in self.seen:
            return self.seen[ref]
        if time.monotonic() > self.deadline:
            self.skipped += 1
            return None
        p = _expand(ref)
        path = p if p.is_absolute() else self.root / p
        self.seen[ref] = problem = _image_problem(ref, path)
        return problem


def _image_problem(ref: str, path: Path) -> str | None:
    """Why PIL cannot read the image at path (ref is how the record names it), or None."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    shown = ref if str(path) == ref else f"{ref} ({path})"
    try:
        if not path.is_file():
            return f"image {shown}: no such file" + (
                "" if path.exists() else "; paths are relative to data.images.root, else the data file's folder"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()  # decodes every pixel: a cut-short file fails here, not in the middle of training
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        return f"image {shown}: more than {Image.MAX_IMAGE_PIXELS:,} pixels; resize it"
    except UnidentifiedImageError:
        return f"image {shown}: not an image file PIL can read (PNG, JPEG, WebP, ...)"
    except (OSError, SyntaxError, ValueError) as exc:  # PIL reports damaged data as OSError or SyntaxError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _first_line(exc)
        return f"image {shown}: cannot be read ({reason})"
    return None


def _role(message: dict[str, Any], spec: _Format) -> Any:
    role = message.get(spec.role_key)
    return spec.role_names.get(role, role) if isinstance(role, str) else role


def _messages_problem(name: str, value: list[Any], spec: _Format) -> str | None:
    if not value:
        return f"{name} is an empty list of messages"
    role_key, content_key = spec.role_key, spec.content_key
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            return f"{name}[{i}] must be a {{{role_key}, {content_key}}} object, got {_kind(message)}"
        role = _role(message, spec)
        if role not in ROLES:
            if role_key not in message:
                got = f"no {role_key} (keys: {', '.join(map(str, message))})"
                if {"from", "value"} <= set(message):
                    got += "; ShareGPT-style messages: set data.message_keys: {role: from, content: value}"
                return f"{name}[{i}].{role_key} must be one of {', '.join(ROLES)}; got {got}"
            got = f"{role!r}" if isinstance(role, str) else _kind(role)
            hint = (
                f"; map it with data.role_names: {{{role}: user}} (or assistant, system, tool)"
                if isinstance(role, str)
                else ""
            )
            return f"{name}[{i}].{role_key} must be one of {', '.join(ROLES)}; got {got}{hint}"
        content = message.get(content_key)
        if isinstance(content, list) and spec.images is not None:
            problem = _parts_problem(f"{name}[{i}].{content_key}", content)
            if problem:
                return problem
        elif not isinstance(content, str):
            parts = _image_parts([message], content_key)
            hint = "; a job with image parts sets data.images" if parts else ""
            return f"{name}[{i}].{content_key} must be a string, got {_kind(content)}{hint}"
    return None


def _parts_problem(where: str, parts: list[Any]) -> str | None:
    """A message content given as parts: {type: text, text: ...} and {type: image} placeholders."""
    if not parts:
        return f"{where} is an empty list of parts"
    for j, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str) and set(part) == {"type", "text"}:
            continue
        if kind == "image" and set(part) == {"type"}:
            continue
        if kind == "image" and set(part) == {"type", "path"} and isinstance(part["path"], str) and part["path"].strip():
            continue
        if kind == "image":
            return (
                f"{where}[{j}] is an image part with {', '.join(sorted(map(str, set(part) - {'type'})))}; an image "
                "part is {type: image, path: FILE} (a local file) or {type: image} (filled in order from "
                "data.images.column)"
            )
        got = _kind(part) if kind is None else f"type {kind!r}"
        return f"{where}[{j}] must be {{type: text, text: ...}} or {{type: image}}, got {got}"
    return None


class _Findings:
    """Record problems grouped by text: each once, with its first places and a count."""

    def __init__(self, where: str, unit: str) -> None:
        self.where, self.unit = where, unit
        self.places: dict[str, list[int]] = {}
        self.counts: dict[str, int] = {}

    def add(self, number: int, message: str) -> None:
        count = self.counts.get(message, 0)
        if count == 0:
            self.places[message] = []
        if count < SHOWN_PLACES:
            self.places[message].append(number)
        self.counts[message] = count + 1

    def __bool__(self) -> bool:
        return bool(self.counts)

    def lines(self) -> list[str]:
        out = []
        for message in list(self.counts)[:SHOWN_GROUPS]:
            numbers, count = self.places[message], self.counts[message]
            unit = self.unit if count == 1 else f"{self.unit}s"
            listed = ", ".join(str(n) for n in numbers)
            more = f" and {count - len(numbers)} more" if count > len(numbers) else ""
            out.append(f"{self.where}: {unit} {listed}{more}: {message}")
        hidden = list(self.counts)[SHOWN_GROUPS:]
        if hidden:
            total = sum(self.counts[m] for m in hidden)
            out.append(
                f"{self.where}: {len(hidden)} more kinds of problems in {total} more {self.unit}s; "
                "fix the ones above and check again"
            )
        return out


# --- data sources --------------------------------------------------------------------------------


def _check_source(
    key: str,
    source: DataSource,
    spec: _Format,
    deadline: float,
    max_records: int | None,
    base: Path | None,
) -> Preflight:
    where = f"data.{key}.path"
    if not source.is_local:
        problems = _nonlocal_data_problems(where, source.path, base)
        return Preflight(problems=_repo_id_problems(where, source.path, "dataset") if problems is None else problems)
    path = Path(source.path)
    if not path.exists():
        return Preflight()  # load_job's local_reference_problems names it
    if path.is_dir():
        return _fail(f"{where}: {path} is a folder; point it at one .jsonl, .json or .parquet file")
    if not path.is_file():
        return _fail(f"{where}: {path} is not a regular file; give a .jsonl, .json or .parquet file")
    try:
        f = path.open("rb")
    except PermissionError:
        return _fail(f"{where}: {path} cannot be read (permission denied); make it readable (chmod a+r)")
    except OSError as exc:
        return _fail(f"{where}: {path} cannot be read ({exc.strerror or exc})")
    with f:
        if os.fstat(f.fileno()).st_size == 0:
            return _fail(f"{where}: {path} is empty (0 bytes): there are no records to train on")
        images = None
        if spec.images is not None:
            images = _Images(Path(spec.images.root) if spec.images.root else path.parent, deadline)
        scan = _Scan(where, path, _Checker(spec, images), deadline, max_records)
        try:
            if path.suffix == ".parquet":
                scan.read_parquet(f)
            else:
                scan.read_json(f)
        except OSError as exc:
            scan.problems.append(f"{where}: reading {path} failed ({exc.strerror or exc})")
        return scan.result()


def _fail(problem: str) -> Preflight:
    return Preflight(problems=[problem])


class _Scan:
    """One local data file, read in a stream until the end, the deadline or max_records."""

    def __init__(self, where: str, path: Path, checker: _Checker, deadline: float, max_records: int | None) -> None:
        self.where, self.path, self.checker = where, path, checker
        self.deadline, self.max_records = deadline, max_records
        self.started = time.monotonic()
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.findings = _Findings(where, "line")
        self.records = 0
        self.stopped: str | None = None  # why reading stopped before the end
        self.done_bytes = 0

    def result(self) -> Preflight:
        problems = self.problems + self.findings.lines()
        if not problems and self.records == 0 and self.stopped is None:
            problems.append(f"{self.where}: {self.path} holds no records")
        notes = list(self.notes)
        images = self.checker.images
        if images is not None and images.skipped:
            notes.append(
                f"{self.where}: opened {len(images.seen):,} image files and stopped there (time limit); "
                f"{images.skipped:,} image references not checked"
            )
        if self.stopped:
            read = ""
            if self.findings.unit != "row":  # a Parquet file is read by row groups: no byte position
                read = f" ({self.done_bytes / 2**20:,.1f} of {self.path.stat().st_size / 2**20:,.1f} MiB)"
            notes.append(
                f"{self.where}: checked the first {self.records:,} records{read} in "
                f"{time.monotonic() - self.started:.1f} s and stopped there ({self.stopped})"
            )
        return Preflight(problems=problems, notes=notes)

    def _record(self, number: int, value: Any, f: IO[bytes]) -> bool:
        """Check one record; False when reading must stop."""
        for message in self.checker.check(value, f"{self.findings.unit} {number}"):
            self.findings.add(number, message)
        return self._tick(f)

    def _tick(self, f: IO[bytes]) -> bool:
        """Count a record (or a line that should have been one); False when the time or max_records is up."""
        self.records += 1
        if self.max_records is not None and self.records >= self.max_records:
            self.stopped = f"max_records={self.max_records}"
        elif time.monotonic() > self.deadline:
            self.stopped = "time limit"
        if self.stopped:
            self.done_bytes = f.tell()
        return self.stopped is None

    # --- JSON ---

    def read_json(self, f: IO[bytes]) -> None:
        if f.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            self.problems.append(f"{self.where}: {self.path} is UTF-16 text; save it with UTF-8 encoding")
            return
        f.seek(0)
        first = _first_char(f)
        if first is None:
            self.problems.append(f"{self.where}: {self.path} holds only blank lines: there are no records")
        elif first == b"[":
            if self.path.suffix == ".jsonl":
                self.problems.append(
                    f"{self.where}: {self.path} holds a JSON array; a .jsonl file holds one JSON object per line: "
                    "rename it to .json or write one record per line"
                )
            else:
                self.findings.unit = "record"
                self._json_array(f)
        else:
            self._json_lines(f)

    def _json_lines(self, f: IO[bytes]) -> None:
        number = 0
        seen_record = False
        while True:
            raw = f.readline(MAX_LINE_BYTES)
            if not raw:
                return
            number += 1
            if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := f.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
                self.notes.append(f"{self.where}: line {number} is longer than {MAX_LINE_BYTES >> 20} MiB; not checked")
                continue
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.findings.add(
                    number, f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file with UTF-8 encoding"
                )
                if not self._tick(f):
                    return
                continue
            stripped = text.strip()
            if not stripped:
                continue
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError as exc:
                if not seen_record:
                    problem = self._not_json_lines(number, stripped, exc)
                    if problem:
                        self.problems.append(problem)
                        return
                seen_record = True
                cut = exc.pos >= len(stripped)
                self.findings.add(
                    number,
                    f"not valid JSON ({exc.msg})"
                    + ("; the object continues on the next line" if cut else "")
                    + f"; each line of a {self.path.suffix} file is one whole JSON object",
                )
                if not self._tick(f):
                    return
                continue
            seen_record = True
            if not self._record(number, value, f):
                return

    def _not_json_lines(self, number: int, line: str, exc: json.JSONDecodeError) -> str | None:
        """A file-level problem when the first record line shows the file is not JSON Lines at all."""
        shown = line if len(line) <= 60 else line[:57] + "..."
        if line.startswith("{") and exc.pos >= len(line):
            layout = "one JSON object per line" + (" or a JSON array" if self.path.suffix == ".json" else "")
            return (
                f"{self.where}: {self.path} holds JSON spread over several lines (line {number}: {shown!r}); "
                f"ptsdk reads {layout}: write each record with json.dumps(record) on its own line"
            )
        if line.startswith(("{", "[")):
            return None
        if "," in line or "\t" in line:
            kind, sep = ("TSV", "\\t") if "\t" in line else ("CSV", ",")
            target = self.path.with_suffix(".converted.jsonl").name
            return (
                f"{self.where}: {self.path} holds {kind} text (line {number}: {shown!r}), not JSON; convert it "
                f"to JSON Lines, e.g. python -c \"import pandas as pd; pd.read_csv('{self.path.name}', "
                f"sep='{sep}').to_json('{target}', orient='records', lines=True, force_ascii=False)\""
            )
        return (
            f"{self.where}: {self.path} is not JSON (line {number}: {shown!r}); a {self.path.suffix} file holds "
            "one JSON object per line"
        )

    def _json_array(self, f: IO[bytes]) -> None:
        stream = _TextStream(f)
        decoder = json.JSONDecoder()
        try:
            stream.skip_ws()
            stream.pos += 1  # the '['
            number = 0
            if stream.skip_ws() == "]":
                self.problems.append(f"{self.where}: {self.path} holds an empty JSON array: there are no records")
                return
            while True:
                stream.skip_ws()
                while True:
                    try:
                        value, end = decoder.raw_decode(stream.buf, stream.pos)
                    except json.JSONDecodeError as exc:
                        if not stream.eof and len(stream.buf) - stream.pos < MAX_LINE_BYTES:
                            stream.more()
                            continue
                        self.problems.append(
                            f"{self.where}: record {number + 1} (line {stream.line_at(exc.pos)}): not valid JSON "
                            f"({exc.msg}); a .json file holds a JSON array of objects or one object per line"
                        )
                        return
                    if end >= len(stream.buf) and not stream.eof:
                        stream.more()  # a number or literal may go on in the next chunk
                        continue
                    break
                number += 1
                stream.pos = end
                if not self._record(number, value, f):
                    return
                c = stream.skip_ws()
                if c == ",":
                    stream.pos += 1
                    continue
                if c == "]":
                    stream.pos += 1
                    if stream.skip_ws() is not None:
                        self.problems.append(
                            f"{self.where}: line {stream.line_at(stream.pos)}: text after the closing ']' of the "
                            "JSON array; a .json file holds one array"
                        )
                    return
                if c is None:
                    self.problems.append(
                        f"{self.where}: the JSON array is not closed: the file ends after record {number}; "
                        "the file may be cut short"
                    )
                    return
                self.problems.append(
                    f"{self.where}: line {stream.line_at(stream.pos)}: expected ',' or ']' after record {number}, "
                    f"found {c!r}"
                )
                return
        except UnicodeDecodeError as exc:
            self.problems.append(
                f"{self.where}: {self.path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} near line "
                f"{stream.line_at(len(stream.buf))}); save the file with UTF-8 encoding"
            )

    # --- Parquet ---

    def read_parquet(self, f: IO[bytes]) -> None:
        """Schema and row count from the footer, then the rows in batches (only the columns checked)."""
        self.findings.unit = "row"
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:  # a dependency of ptsdk: only a broken installation lacks it
            self.problems.append(
                f"{self.where}: reading {self.path} needs pyarrow, which does not import in ptsdk's interpreter; "
                "install it (pip install 'pyarrow>=15')"
            )
            return
        try:
            parquet = pq.ParquetFile(self.path)
            num_rows, schema = parquet.metadata.num_rows, parquet.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            self.problems.append(f"{self.where}: {self._not_parquet(f, exc)}")
            return
        with parquet:
            if num_rows == 0:
                self.problems.append(f"{self.where}: {self.path} holds no rows: there are no records to train on")
                return
            columns = {c.name: _Column(c.name, *_arrow_kind(c.type)) for c in schema}
            problems = self._parquet_columns(columns)
            if problems:
                self.problems += [f"{self.where}: {p}" for p in problems]
                return
            images = self.checker.spec.images
            fields = set(RECORD_FIELDS[self.checker.spec.fmt]) | ({images.column} if images else set(IMAGE_COLUMNS))
            needed = [name for name in columns if self.checker.renames.get(name, name) in fields]
            try:
                batches = parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=needed)
                rows = (row for batch in batches for row in batch.to_pylist())
                for number, row in enumerate(rows, 1):
                    if not self._record(number, row, f):
                        return
            except (pa.ArrowException, OSError) as exc:
                self.problems.append(
                    f"{self.where}: reading the rows of {self.path} failed ({_first_line(exc)}); write the file again"
                )

    def _not_parquet(self, f: IO[bytes], exc: Exception) -> str:
        """What is wrong with a file pyarrow cannot open, by its first bytes."""
        f.seek(0)
        head = f.read(4)
        f.seek(-min(4, os.fstat(f.fileno()).st_size), os.SEEK_END)
        if head == b"PAR1":
            reason = "no PAR1 marker at the end" if f.read(4) != b"PAR1" else _first_line(exc)
            return (
                f"{self.path} is cut short or damaged ({reason}); write it again (e.g. with pandas "
                "DataFrame.to_parquet), or give a .jsonl file"
            )
        hint = (
            "it holds JSON: name it .jsonl (one object per line) or .json"
            if head.lstrip()[:1] in (b"{", b"[")
            else "write it again (e.g. with pandas DataFrame.to_parquet), or give a .jsonl file"
        )
        return f"{self.path} is not a Parquet file (no PAR1 marker at both ends); {hint}"

    def _parquet_columns(self, columns: dict[str, _Column]) -> list[str]:
        """The record checks that the schema alone answers: fields present, value types."""
        checker = self.checker
        spec = checker.spec
        placeholder: dict[str, Any] = {name: None for name in columns}
        view = {checker.renames.get(k, k): v for k, v in columns.items()}
        missing = [f for f in spec.required if f not in view]
        if missing:
            return [f"columns: {checker._missing(placeholder, dict.fromkeys(view), missing)}"]
        out = []
        for name in checker.text_fields:
            col = view.get(name)
            if col is not None and col.kind not in ("string", "list"):
                out.append(
                    f"column {col.name!r} ({name}) holds {col.kind} values; {name} must be a string or a list of "
                    "{role, content} messages"
                )
            elif col is not None and col.kind == "list" and not {spec.role_key, spec.content_key} <= set(col.fields):
                keys = f"{{{spec.role_key}, {spec.content_key}}}"
                out.append(f"column {col.name!r} ({name}) is a list but not of {keys} messages")
        if spec.fmt == "messages":
            col = view["messages"]
            if col.kind != "list" or not {spec.role_key, spec.content_key} <= set(col.fields):
                out.append(
                    f"column {col.name!r} (messages) must be a list of {{{spec.role_key}, {spec.content_key}}} objects"
                )
        if spec.fmt == "unpaired_preference" and view["label"].kind != "bool":
            out.append(f"column {view['label'].name!r} (label) holds {view['label'].kind} values; label must be bool")
        return out


def _first_char(f: IO[bytes]) -> bytes | None:
    """The first byte that is not whitespace (after a UTF-8 BOM), or None; rewinds the file."""
    start = True
    try:
        while chunk := f.read(CHUNK_BYTES):
            if start and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8) :]
            start = False
            stripped = chunk.lstrip()
            if stripped:
                return stripped[:1]
        return None
    finally:
        f.seek(0)


class _TextStream:
    """UTF-8 text of a binary file, decoded chunk by chunk, with line numbers for positions."""

    _WS = re.compile(r"\s*")

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.pos = 0
        self.line = 1  # the line buf[0] is on
        self.eof = False

    def more(self) -> bool:
        if self.eof:
            return False
        chunk = self.f.read(CHUNK_BYTES)
        self.eof = not chunk
        text = self.decoder.decode(chunk, final=self.eof)
        self.line += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return True

    def skip_ws(self) -> str | None:
        """The next character that is not whitespace (not consumed), or None at the end."""
        while True:
            match = self._WS.match(self.buf, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return None

    def line_at(self, pos: int) -> int:
        return self.line + self.buf.count("\n", 0, pos)


@dataclass
class _Column:
    name: str
    kind: str  # string, bool, int, float, bytes, list, map, struct, or the Arrow type's name
    fields: tuple[str, ...] = ()  # a struct's fields, or those of a list's struct elements


def _arrow_kind(t: Any) -> tuple[str, tuple[str, ...]]:
    """A pyarrow column type in the words of the checks, with the field names of its structs."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):  # pandas categoricals
        t = t.value_type
    if pa.types.is_map(t):
        return "map", ()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        element = t.value_type
        return "list", _struct_fields(element) if pa.types.is_struct(element) else ()
    if pa.types.is_struct(t):
        return "struct", _struct_fields(t)
    checks = (
        ("string", (pa.types.is_string, pa.types.is_large_string)),
        ("bool", (pa.types.is_boolean,)),
        ("int", (pa.types.is_integer,)),
        ("float", (pa.types.is_floating, pa.types.is_decimal)),
        ("bytes", (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary)),
    )
    return next((kind for kind, tests in checks if any(test(t) for test in tests)), str(t)), ()


def _struct_fields(t: Any) -> tuple[str, ...]:
    return tuple(t.field(i).name for i in range(t.num_fields))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --- paths that are not local data files ------------------------------------------------------------


def _suffix(path: str) -> str:
    """'train.jsonl.gz' -> '.jsonl.gz', 'train.CSV' -> '.csv', 'org/name' -> ''."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if not suffixes:
        return ""
    if suffixes[-1] in COMPRESSED_SUFFIXES and len(suffixes) > 1 and len(suffixes[-2]) <= 9:
        return "".join(suffixes[-2:])
    return suffixes[-1]


def _convert_hint(path: str, suffix: str) -> str:
    name = Path(path).name
    stem = name[: -len(suffix)] if name.lower().endswith(suffix) else Path(path).stem
    out = f"{stem}.jsonl"
    last = "." + suffix.rsplit(".", 1)[-1]
    if suffix in (".csv", ".tsv"):
        sep = "\\t" if suffix == ".tsv" else ","
        return (
            f"convert it, e.g. python -c \"import pandas as pd; pd.read_csv('{name}', sep='{sep}')"
            f".to_json('{out}', orient='records', lines=True, force_ascii=False)\""
        )
    if suffix in (".ndjson", ".jsonlines", ".jl"):
        return f"it is JSON Lines by another name: rename it to {out}"
    if suffix in (".pq", ".parq"):
        return f"rename it to {stem}.parquet"
    if last in COMPRESSED_SUFFIXES:
        return (
            f"decompress it first (e.g. {'gunzip -k' if last == '.gz' else 'unpack it'}) and point at the file inside"
        )
    if suffix in (".txt", ".text"):
        return f"write one JSON object per line with the canonical fields (see `ptsdk schema`) as {out}"
    if suffix in (".xlsx", ".xls", ".ods"):
        return (
            f"convert it, e.g. python -c \"import pandas as pd; pd.read_excel('{name}')"
            f".to_json('{out}', orient='records', lines=True, force_ascii=False)\""
        )
    return f"convert it to {out} (one JSON object per line) or to .parquet"


def _nonlocal_data_problems(where: str, path: str, base: Path | None) -> list[str] | None:
    """Problems with a data path that is no local data file; None when it is taken for a hub dataset id."""
    suffix = _suffix(path)
    p = _expand(path)
    candidate = p if p.is_absolute() else (base / p if base is not None else None)
    exists = candidate is not None and candidate.exists()
    if exists and candidate is not None and candidate.is_dir():
        return [
            f"{where}: {path} is a folder; ptsdk reads one .jsonl, .json or .parquet file, or a hub dataset id "
            "(org/name): point it at the file"
        ]
    if suffix in LOCAL_SUFFIXES or any(path.lower().endswith(s) for s in LOCAL_SUFFIXES):
        return [f"{where}: ptsdk recognizes .jsonl, .json and .parquet in lower case: rename {path} accordingly"]
    if exists or suffix in OTHER_FILE_SUFFIXES or "." + suffix.rsplit(".", 1)[-1] in OTHER_FILE_SUFFIXES:
        what = f"a {suffix} file" if suffix else "a file without .jsonl, .json or .parquet ending"
        return [
            f"{where}: {path} is {what}; ptsdk reads .jsonl, .json or .parquet files (any other path is taken for "
            f"a hub dataset id): {_convert_hint(path, suffix or '.txt')}"
        ]
    if _path_like(path):
        return [
            f"{where}: no such file {path}; give a .jsonl, .json or .parquet file (relative to the job file) "
            "or a hub dataset id (org/name)"
        ]
    return None


def _path_like(ref: str) -> bool:
    """Whether a reference reads as a filesystem path rather than a hub id (org/name)."""
    return ref.startswith((".", "/", "~")) or ref.count("/") > 1 or "\\" in ref


# --- models ----------------------------------------------------------------------------------------


def _model_check(where: str, ref: str, base: Path | None, missing_reported: bool, vision: bool = False) -> Preflight:
    return Preflight(_model_problems(where, ref, base=base, missing_reported=missing_reported, vision=vision))


def _is_hub_model(ref: str, base: Path | None) -> bool:
    p = _expand(ref)
    return not p.is_absolute() and not (base is not None and (base / p).exists()) and not _path_like(ref)


def _model_problems(
    where: str, ref: str, *, base: Path | None, missing_reported: bool, vision: bool = False
) -> list[str]:
    if _is_hub_model(ref, base):
        return _repo_id_problems(where, ref, "model")
    p = _expand(ref)
    if not p.is_absolute():
        if base is None:
            return []  # relative to a job file this call does not know
        p = base / p
        if not p.exists():
            return [f"{where}: no such folder {p}; give a local model folder or a hub id (org/name)"]
    if not p.exists():
        return [] if missing_reported else [f"{where}: no such folder {p}"]
    if not p.is_dir():
        return [f"{where}: {p} is a file; give the folder that holds the model (config.json, weights, tokenizer)"]
    try:
        names = sorted(os.listdir(p))
    except OSError as exc:
        return [f"{where}: {p} cannot be read ({exc.strerror or exc})"]
    if not names:
        return [
            f"{where}: {p} is an empty folder; it must hold a transformers model saved with save_pretrained "
            "(config.json, weights, tokenizer files)"
        ]
    if "config.json" not in names:
        return [_no_config(where, p, names)]
    out = []
    try:
        config = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        out.append(f"{where}: {p}/config.json is not valid JSON (line {exc.lineno}: {exc.msg})")
    except (OSError, UnicodeDecodeError) as exc:
        out.append(f"{where}: {p}/config.json cannot be read ({exc})")
    else:
        if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
            out.append(
                f"{where}: {p}/config.json has no model_type, so transformers cannot tell which architecture to "
                "build; save the model with save_pretrained (or add the model_type of its architecture)"
            )
        elif vision and not any("vision" in str(key) for key in config):
            out.append(
                f"{where}: {p}/config.json describes a text model ({config['model_type']}, no vision_config), "
                "but data.images gives the records images; train a vision-language model"
            )
    if vision and not any(n in names for n in PROCESSOR_FILES):
        out.append(
            f"{where}: {p} holds no image processor ({' or '.join(PROCESSOR_FILES)}), which data.images needs; "
            "save the model's processor beside it (processor.save_pretrained)"
        )
    if not any(WEIGHT_FILE.search(n) for n in names):
        out.append(
            f"{where}: {p} holds no weights (model.safetensors, pytorch_model.bin or a sharded index); save the "
            "model with save_pretrained"
        )
    if not any(TOKENIZER_FILE.match(n) for n in names):
        out.append(
            f"{where}: {p} holds no tokenizer (tokenizer.json, or vocabulary files such as tokenizer.model or "
            "vocab.json + merges.txt); save the tokenizer beside the model (tokenizer.save_pretrained)"
        )
    return out


def _no_config(where: str, p: Path, names: list[str]) -> str:
    listing = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    if "adapter_config.json" in names:
        base_model = ""
        try:
            base_model = json.loads((p / "adapter_config.json").read_text(encoding="utf-8")).get(
                "base_model_name_or_path", ""
            )
        except (OSError, ValueError, AttributeError):
            pass
        named = f" ({base_model})" if base_model else ""
        return (
            f"{where}: {p} holds a PEFT adapter (adapter_config.json), not a model: set model.name_or_path to its "
            f"base model{named} and adapter.init_path to this folder"
        )
    inner = [n for n in names if (p / n / "config.json").is_file()]
    hint = f"; its subfolder {inner[0]} has one: use {p / inner[0]}" if inner else ""
    return (
        f"{where}: {p} has no config.json (it holds {listing}); give the folder a transformers model was saved to{hint}"
    )


# --- the Hugging Face hub and its cache ------------------------------------------------------------


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hf_home() -> Path:
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface"


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloaded repositories (models--org--name, datasets--org--name)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    return hf_home() / "hub"


def datasets_cache_dir() -> Path:
    """Where datasets keeps prepared datasets (org___name), readable offline."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    return hf_home() / "datasets"


def _in_hub_cache(repo_id: str, repo_type: str) -> bool:
    snapshots = hub_cache_dir() / f"{repo_type}s--{repo_id.replace('/', '--')}" / "snapshots"
    try:
        for snapshot in snapshots.iterdir():
            if repo_type == "model" and (snapshot / "config.json").exists():
                return True
            if repo_type == "dataset" and any(snapshot.iterdir()):
                return True
    except OSError:
        pass
    if repo_type == "dataset":
        wanted = _plain(repo_id.replace("/", "___"))
        try:
            return any(e.is_dir() and _plain(e.name) == wanted for e in datasets_cache_dir().iterdir())
        except OSError:
            return False
    return False


def _plain(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def _valid_repo_id(repo_id: str) -> bool:
    return bool(REPO_ID.match(repo_id)) and "--" not in repo_id and ".." not in repo_id and len(repo_id) <= 96


def _repo_id_problems(where: str, repo_id: str, repo_type: str) -> list[str]:
    if _valid_repo_id(repo_id):
        return []
    local = "local folder" if repo_type == "model" else ".jsonl, .json or .parquet file"
    return [f"{where}: {repo_id!r} is neither a {local} nor a hub {repo_type} id (org/name)"]


def _unreachable(where: str, repo_id: str, repo_type: str) -> list[str]:
    """A hub id that is not in the cache and cannot be fetched from here (offline variable, no answer)."""
    if _in_hub_cache(repo_id, repo_type):
        return []
    offline_vars = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE" if repo_type == "model" else "HF_DATASETS_OFFLINE")
    set_var = next((v for v in offline_vars if _env_true(v)), None)
    if set_var:
        why = f"{set_var} is set"
    elif not hub_reachable():
        why = f"{_hub_endpoint()[0]} does not answer: offline"
    else:
        return []
    cache = hub_cache_dir() if repo_type == "model" else f"{hub_cache_dir()}, {datasets_cache_dir()}"
    local = "a local folder" if repo_type == "model" else "a local .jsonl, .json or .parquet file"
    download = "hf download" + (" --repo-type dataset" if repo_type == "dataset" else "")
    return [
        f"{where}: {repo_id!r} is not {local}, not in the Hugging Face cache ({cache}), and the hub cannot be "
        f"reached ({why}); download it on a machine with network ({download} {repo_id}, then copy the cache) "
        f"or give {local}"
    ]


def _hub_endpoint() -> tuple[str, int]:
    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


def _probe_target() -> tuple[str, int]:
    """The hub's host and port, or the proxy's when one is set for it."""
    host, port = _hub_endpoint()
    no_proxy = [
        h.strip().lstrip(".") for h in (os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or "").split(",")
    ]
    if any(h and (host == h or host.endswith("." + h)) for h in no_proxy) or "*" in no_proxy:
        return host, port
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        proxy = os.environ.get(name)
        if proxy:
            url = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            if url.hostname:
                return url.hostname, url.port or (443 if url.scheme == "https" else 80)
    return host, port


def hub_reachable() -> bool:
    """Whether a TCP connection to the hub (or its proxy) opens within HUB_PROBE_TIMEOUT_S; cached per process.

    Module-level so tests (and callers that know better) can replace it."""
    host, port = _probe_target()
    return _probe(host, port, HUB_PROBE_TIMEOUT_S)


@cache
def _probe(host: str, port: int, timeout: float) -> bool:
    answer: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    # A thread bounds the DNS lookup too, which create_connection's timeout does not.
    thread = threading.Thread(target=connect, name="ptsdk-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])
