"""Every installed backend side by side (issue #17): the four built in and each one under distributions/, which
registers through the `ptsdk` entry-point group like any third-party backend. One job gets one verdict per backend,
whichever command asks: `ptsdk validate`, `ptsdk validate -b B` and `ptsdk matrix --job`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, fake_model

ROOT = Path(__file__).resolve().parents[1]
BUILT_IN = {"trl", "axolotl", "verl", "openrlhf"}
#: Each distributions/NAME registers the backend NAME (`make setup` installs them all).
DISTRIBUTED = {p.parent.name for p in ROOT.glob("distributions/*/pyproject.toml")}
JOBS = sorted(p.name for p in (EXAMPLES / "jobs").glob("*.yaml"))


def job_copy(name: str, tmp: Path) -> Path:
    """An example job with absolute data and reward paths and a placeholder model folder (with a processor and a
    vision config for the image jobs), without the starting adapter the examples build."""
    source = EXAMPLES / "jobs" / name
    data = yaml.safe_load(source.read_text())
    model = fake_model(tmp / "model")
    if "images" in data["data"]:
        (model / "config.json").write_text(json.dumps({"model_type": "llava", "vision_config": {}}))
        (model / "processor_config.json").write_text("{}")
        data["data"]["images"]["root"] = str(EXAMPLES / "data")
    data["model"]["name_or_path"] = str(model)
    data.get("adapter", {}).pop("init_path", None)  # a saved adapter the examples build (make model)
    for split in ("train", "eval"):
        if split in data["data"]:
            data["data"][split]["path"] = str((source.parent / data["data"][split]["path"]).resolve())
    method = data["method"]
    if method.get("rewards"):
        method["rewards"] = [
            str((source.parent / r.rsplit(":", 1)[0]).resolve()) + ":" + r.rsplit(":", 1)[1] for r in method["rewards"]
        ]
    path = tmp / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_matrix_shows_every_backend_side_by_side(ptsdk) -> None:
    r = ptsdk("matrix", "--format", "json")
    backends = json.loads(r.out)["backends"]
    names = set(backends)
    assert BUILT_IN | DISTRIBUTED <= names, (
        f"missing: {sorted(BUILT_IN | DISTRIBUTED - names)} (make setup installs distributions/)"
    )
    table = ptsdk("matrix", "--kind", "method").out
    header = next(line for line in table.splitlines() if "trl" in line)
    assert all(name in header for name in BUILT_IN | DISTRIBUTED), header
    # a git-only framework's entries are declared, and the matrix names the commit its schema was read from
    sources = {name: b["schema_source"] for name, b in backends.items() if b["schema_source"]}
    assert all(source.split("@")[1] in table.replace("\n", "") for source in sources.values()), sources


@pytest.mark.parametrize("name", JOBS)
def test_one_verdict_per_backend_whichever_command_asks(ptsdk, tmp_path: Path, name: str) -> None:
    job = job_copy(name, tmp_path)
    verdicts = json.loads(ptsdk("matrix", "--job", str(job), "--format", "json").out)["job"]["verdicts"]
    assert BUILT_IN | DISTRIBUTED <= set(verdicts)
    accepted = sorted(b for b, v in verdicts.items() if v["can_run"])
    r = ptsdk("validate", str(job))
    assert r.code == 0, r.err
    assert f"accepted by {len(accepted)} of {len(verdicts)} backends: {', '.join(accepted) or 'none'}" in r.out
    for backend, verdict in verdicts.items():
        r = ptsdk("validate", str(job), "-b", backend)
        assert "Traceback" not in r.err
        if verdict["can_run"]:
            assert r.code == 0, (backend, r.err)
            others = ", ".join(b for b in accepted if b != backend) or "none"
            assert f"backend {backend}: supported (also accepted by: {others})" in r.out
        else:
            assert r.code == 2, (backend, r.out)
            assert all(reason in r.err for reason in verdict["reasons"]), (backend, verdict, r.err)
            assert f"backends that accept the whole job: {', '.join(accepted) or 'none'}" in r.err.replace(
                "none of the installed backends", "none"
            )


@pytest.mark.parametrize("name", sorted(DISTRIBUTED))
def test_registering_a_distribution_builds_no_schema(name: str) -> None:
    """Every ptsdk command loads every installed backend: registering one must not build its transcribed schema's
    models or import its config library (omegaconf). Its pinned commit is the schema's."""
    import importlib
    import subprocess
    import sys

    code = (
        f"import sys, ptsdk_{name}\n"
        f"print(sorted(m for m in sys.modules if m == 'omegaconf' or m.startswith('ptsdk_{name}.schema')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    try:
        pinned = importlib.import_module(f"ptsdk_{name}.pinned")
    except ModuleNotFoundError:  # a framework installed from the registry pins its version in requirements.txt
        return
    assert pinned.COMMIT == importlib.import_module(f"ptsdk_{name}.schema").COMMIT
