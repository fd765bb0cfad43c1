from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


# Files whose tests start Ray: vERL's runs start a local Ray, and test_ray.py's head ends with `ray stop --force`,
# which stops every Ray on the machine. Ray also joins the latest cluster started here rather than a new one.
RAY_FILES = {"test_ray.py", "test_verl.py"}
RAY_FIXTURES = {"verl_env", "verl_model"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the groups off the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist's --dist loadgroup (`make test` runs two workers): each file stays on one worker,
    so its module fixtures (a Ray head, Slurm's daemons, shared runs) start once, and every test that starts Ray
    shares one worker, one after another."""
    for item in items:
        ray = item.path.name in RAY_FILES or bool(RAY_FIXTURES & set(getattr(item, "fixturenames", ())))
        item.add_marker(pytest.mark.xdist_group("ray" if ray else item.nodeid.split("::")[0]))


def minimal_job(**overrides: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "method": {"name": "sft"},
        "model": {"name_or_path": "org/model"},
        "data": {"train": {"path": "org/dataset"}},
    }
    job.update(overrides)
    return job


def fake_model(folder: Path) -> Path:
    """A folder that passes ptsdk's model preflight (config, weights, tokenizer files) but holds no
    real model: for tests that stop before a framework loads it, or run a stand-in interpreter."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "tokenizer.json").write_text("{}")
    return folder


def local_job(root: Path, **overrides: Any) -> dict[str, Any]:
    """minimal_job with a local (fake) model folder and a small local SFT data file under root, so a
    run gets past the data and model preflight without a network."""
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+1=", "completion": str(i + 1)}) + "\n" for i in range(8)))
    job = minimal_job(model={"name_or_path": str(fake_model(root / "model"))}, data={"train": {"path": str(data)}})
    job.update(overrides)
    return job


@pytest.fixture
def write_job(tmp_path: Path):
    def write(data: dict[str, Any], name: str = "job.yaml") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data))
        return path

    return write


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def ptsdk(capsys: pytest.CaptureFixture[str]):
    """Run the CLI in-process through its real entry function (exit codes and error rendering included)."""
    from ptsdk.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


@pytest.fixture
def python() -> str:
    return sys.executable


# --- processes, for the signal and lifecycle tests ---


def running(pid: int) -> bool:
    """Whether a process is alive (a zombie counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state not in ("Z", "X")  # a zombie has ended; only its parent's wait is missing


def watchdogs(pids: list[int]) -> list[int]:
    """ptsdk watchdog processes still watching one of these process groups."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"ptsdk-watchdog" in argv and any(str(p).encode() in argv for p in pids) and running(int(entry.name)):
                out.append(int(entry.name))
    return out
