"""Backend tests run the real framework in its environment; they never mock it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import EXAMPLES

REQUIRED = {b.strip() for b in os.environ.get("PTSDK_REQUIRE_BACKENDS", "").split(",") if b.strip()}


def backend_env(name: str):  # type: ignore[no-untyped-def]
    from ptsdk.plugins.manager import get_backend

    env = get_backend(name)().env
    if env.python is None:
        if name in REQUIRED:
            pytest.fail(f"PTSDK_REQUIRE_BACKENDS names {name}, but its environment is missing (ptsdk env create {name})")
        pytest.skip(f"{name} environment not available (ptsdk env create {name})")
    return env


@pytest.fixture(scope="session")
def trl_env():  # type: ignore[no-untyped-def]
    return backend_env("trl")


@pytest.fixture(scope="session")
def tiny_model(trl_env, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """The example's tiny Llama, built with the backend's own transformers."""
    out = tmp_path_factory.mktemp("model") / "tiny-model"
    subprocess.run([trl_env.python, str(EXAMPLES / "make_tiny_model.py"), str(out)], check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture
def example_job(tmp_path: Path, tiny_model: Path):  # type: ignore[no-untyped-def]
    """An example job pointed at the test's tiny model, with overrides merged in."""

    def make(name: str, **overrides: dict) -> Path:
        data = yaml.safe_load((EXAMPLES / "jobs" / name).read_text())
        data["model"]["name_or_path"] = str(tiny_model)
        for path in ("train", "eval"):
            if path in data["data"]:
                data["data"][path]["path"] = str((EXAMPLES / "jobs" / data["data"][path]["path"]).resolve())
        if "rewards" in data["method"]:
            data["method"]["rewards"] = [str((EXAMPLES / "jobs" / r.split(":")[0]).resolve()) + ":" + r.split(":")[1] for r in data["method"]["rewards"]]
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict) and "name" not in value:
                data[key].update(value)
            else:
                data[key] = value
        path = tmp_path / f"{Path(name).stem}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return make


def read_run(run_dir: Path) -> tuple[dict, list[dict]]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return manifest, metrics
