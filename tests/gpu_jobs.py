"""The example jobs as GPU jobs, for backends whose frameworks have no CPU mode (the git-only ones): every example
job is a CPU job, which such a backend refuses before translating anything."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from conftest import EXAMPLES

JOBS = EXAMPLES / "jobs"


def gpu_copy(name: str, folder: Path, **changes: dict[str, object]) -> Path:
    """examples/jobs/NAME as a GPU job in folder, its paths absolute; `changes` update its sections."""
    job = yaml.safe_load((JOBS / name).read_text())
    job.setdefault("distributed", {})["device"] = "gpu"
    job["model"]["name_or_path"] = str((JOBS / job["model"]["name_or_path"]).resolve())
    for part in ("train", "eval"):
        if part in job["data"]:
            job["data"][part]["path"] = str((JOBS / job["data"][part]["path"]).resolve())
    method = job["method"]
    method["rewards"] = [
        str((JOBS / r.partition(":")[0]).resolve()) + ":" + r.partition(":")[2] for r in method.get("rewards", [])
    ]
    if not method["rewards"]:
        del method["rewards"]
    for section, values in changes.items():
        job.setdefault(section, {}).update(values)
    path = folder / f"gpu_{name}"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def gpu_jobs() -> list[Path]:
    """Every example job, plus a GPU copy of each (in a temporary folder that lives as long as the test session)."""
    folder = Path(tempfile.mkdtemp(prefix="ptsdk-gpu-jobs-"))
    names = sorted(p.name for p in JOBS.glob("*.yaml"))
    return [*(JOBS / n for n in names), *(gpu_copy(n, folder) for n in names)]
