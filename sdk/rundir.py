"""The run directory: the only place a run writes, complete even after a crash."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ptsdk.plugins.backend import Plan

MANIFEST = "manifest.json"
LOG = "logs/backend.log"
METRICS = "metrics.jsonl"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: Any) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def write_plan(plan: Plan, target: Path) -> None:
    for f in plan.files:
        dest = target / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if f.content is not None:
            dest.write_text(f.content)
        else:
            shutil.copyfile(f.copy_from, dest)  # type: ignore[arg-type]


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Build a directory beside `final` and move it into place only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists() and not any(final.iterdir()):
        final.rmdir()
    os.replace(tmp, final)


def default_run_dir(parent: str | Path, job_name: str, backend: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(parent) / f"{job_name}-{backend}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path
