"""User-facing errors. Anything else reaching the CLI is a bug and keeps its traceback."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2


class PtsdkError(Exception):
    """Bad input or a combination that cannot run: a message, exit code 2, no traceback."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, lines: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.lines = list(lines)

    def render(self) -> str:
        return "\n".join([f"error: {self.message}", *(f"  {line}" for line in self.lines)])


class SpecError(PtsdkError):
    """The job file does not describe a valid job."""


class UnsupportedError(PtsdkError):
    """The job is valid but the chosen backend cannot run it."""


class BackendUnavailable(PtsdkError):
    """The backend's framework is not installed where ptsdk looks for it."""


class RunFailed(PtsdkError):
    """The framework ran and failed."""

    exit_code = EXIT_RUN_FAILED


# Tags pydantic inserts into error locations for discriminated unions ('method', 'dpo', 'beta').
_UNION_FIELDS = {"method", "adapter"}


def format_loc(loc: Iterable[object]) -> str:
    """('data', 'columns', 0) -> 'data.columns.0'; discriminated-union tags are dropped."""
    parts: list[str] = []
    for item in loc:
        text = str(item)
        if "[" in text and "]" in text:  # function-after[...] and similar wrapper names
            continue
        if parts and parts[-1] in _UNION_FIELDS and len(parts) == 1 and _is_union_tag(parts[0], text):
            continue
        parts.append(text)
    return ".".join(parts) or "(job)"


def _is_union_tag(field: str, text: str) -> bool:
    from ptsdk.spec.method import METHOD_NAMES

    return text in (METHOD_NAMES if field == "method" else ("full", "lora", "qlora"))


def validation_lines(errors: Iterable[Mapping[str, Any]]) -> list[str]:
    """pydantic errors as `field.path: problem` lines."""
    lines = []
    for err in errors:
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field; remove it or check its spelling (see `ptsdk schema`)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "union_tag_invalid":
            msg = err["msg"].replace("Input tag", "got").replace("found using", "for")
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        lines.append(f"{format_loc(err['loc'])}: {msg}")
    return lines
