"""Where a backend lives: env var, config file, managed environment, this interpreter; containers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES
from ptsdk.envbuild import create_env, list_envs, remove_env, requirements_for
from ptsdk.envs import READY_MARKER, resolve_env
from ptsdk.errors import BackendUnavailable, PtsdkError
from ptsdk.plugins.manager import get_backends


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PTSDK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PTSDK_CONFIG", str(tmp_path / "config.yaml"))
    for name in get_backends():
        monkeypatch.delenv(f"PTSDK_{name.upper()}_PYTHON", raising=False)
    return tmp_path


def test_resolution_order(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    verl = get_backends()["verl"]
    assert resolve_env(verl).source == "missing"
    managed = home / "home" / "envs" / "verl"
    (managed / "bin").mkdir(parents=True)
    assert resolve_env(verl).source == "missing"  # no ready marker: a half-built env is never used
    (managed / READY_MARKER).write_text("{}")
    assert resolve_env(verl).source == "managed"
    (home / "config.yaml").write_text(f"backends:\n  verl: {{python: {sys.executable}}}\n")
    assert resolve_env(verl).python == sys.executable
    monkeypatch.setenv("PTSDK_VERL_PYTHON", "/opt/verl/bin/python")
    assert resolve_env(verl).source == "$PTSDK_VERL_PYTHON"


def test_versions_are_read_without_importing(home: Path) -> None:
    (home / "config.yaml").write_text(f"backends:\n  verl: {{python: {sys.executable}}}\n")
    env = resolve_env(get_backends()["verl"])
    versions = env.versions(("pydantic",))
    assert versions["verl"] is None and versions["pydantic"]


def test_missing_backend_says_how_to_get_it(home: Path) -> None:
    env = resolve_env(get_backends()["verl"])
    with pytest.raises(BackendUnavailable) as info:
        env.require("pip install verl")
    assert "ptsdk env create verl" in info.value.render() and "pip install verl" in info.value.render()


def test_bad_config_file_is_a_clear_error(home: Path) -> None:
    (home / "config.yaml").write_text("backends: [\n")
    with pytest.raises(PtsdkError, match="not valid YAML"):
        resolve_env(get_backends()["verl"])


def test_translate_emits_container_command(home: Path, ptsdk, tmp_path: Path) -> None:
    (home / "config.yaml").write_text("backends:\n  trl: {container: {image: 'ghcr.io/acme/trl:1.16', runtime: apptainer}}\n")
    job = tmp_path / "job.yaml"
    job.write_text(f"method: {{name: sft}}\nmodel: {{name_or_path: org/m}}\ndata: {{train: {{path: {EXAMPLES}/data/sft_train.jsonl}}}}\n")
    r = ptsdk("translate", str(job), "--backend", "trl", "--no-native-check", "--out", str(tmp_path / "out"))
    assert r.code == 0, r.err
    script = (tmp_path / "out" / "command.sh").read_text()
    assert 'apptainer exec --nv --bind "$PWD":"$PWD"' in script
    assert f"--bind {EXAMPLES}/data/sft_train.jsonl:{EXAMPLES}/data/sft_train.jsonl:ro" in script
    assert "ghcr.io/acme/trl:1.16 python train_trl.py --config trl_config.yaml" in script
    r = ptsdk("translate", str(job), "--backend", "trl")
    assert r.code == 2 and "runs in container" in r.err


def test_failed_build_leaves_nothing(home: Path) -> None:
    # A requirement set that cannot install: the build fails and the folder is gone.
    with pytest.raises(PtsdkError):
        create_env("trl", python="/nonexistent/python", say=lambda s: None)
    assert not (home / "home" / "envs" / "trl").exists()
    assert list_envs() == []


def test_requirements_pin_torch_first() -> None:
    for name in ("trl", "axolotl"):
        reqs = requirements_for(name)
        assert "torch==2.13.0" in reqs and all("==" in r for r in reqs)
    with pytest.raises(PtsdkError, match="no known-good requirement set"):
        requirements_for("verl")


def test_remove_missing_env(home: Path) -> None:
    with pytest.raises(PtsdkError, match="no managed environment"):
        remove_env("trl")


def test_env_cli_list(home: Path, ptsdk) -> None:
    managed = home / "home" / "envs" / "trl"
    managed.mkdir(parents=True)
    r = ptsdk("env", "list")
    assert "incomplete" in r.out
    (managed / READY_MARKER).write_text(json.dumps({}))
    assert "ready" in ptsdk("env", "list").out
    assert ptsdk("env", "remove", "trl").code == 0 and not managed.exists()


def test_create_reuses_a_ready_env_only_when_pins_match(home: Path) -> None:
    from ptsdk.envbuild import requirements_sha

    target = home / "home" / "envs" / "trl"
    target.mkdir(parents=True)
    sha = requirements_sha(requirements_for("trl"))
    (target / READY_MARKER).write_text(json.dumps({"requirements_sha": sha}))
    said: list[str] = []
    assert create_env("trl", say=said.append) == target
    assert "already ready" in said[0]
    # Built from other pins: rebuilt (here the rebuild fails at once, and nothing half-made stays).
    (target / READY_MARKER).write_text(json.dumps({"requirements_sha": "old"}))
    with pytest.raises(PtsdkError):
        create_env("trl", python="/nonexistent/python", say=said.append)
    assert any("built from other requirements" in s for s in said) and not target.exists()


def test_backends_flags_a_stale_managed_env(home: Path, ptsdk) -> None:
    target = home / "home" / "envs" / "trl"
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "python").symlink_to(sys.executable)
    (target / READY_MARKER).write_text(json.dumps({"requirements_sha": "old"}))
    rows = {r["backend"]: r for r in json.loads(ptsdk("backends", "--format", "json").out)}
    assert rows["trl"]["source"] == "managed"
    assert rows["trl"]["status"] == "stale: pins changed, run ptsdk env create trl"
