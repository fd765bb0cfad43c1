"""A managed environment in a fresh PTSDK_HOME, asked for the framework's own verdict from ptsdk, then removed
without a trace. `make envs` (CI's first step) builds every managed environment with `ptsdk env create` from a
fresh home; this test takes TRL's, when it is ready and current, into its own home (a copy: seconds instead of the
1-3 minutes of a second build) and builds it only where there is none. `PTSDK_TEST_ENV_BUILD=1` always builds."""

from __future__ import annotations

import json
import os
import shutil

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.envbuild]


def test_create_validate_remove_a_managed_environment(ptsdk, example_job, tmp_path, monkeypatch) -> None:
    from ptsdk.envbuild import is_stale
    from ptsdk.envs import managed_env_dir
    from ptsdk.plugins.manager import get_backend

    job = example_job("sft_lora.yaml")
    built = managed_env_dir("trl")
    reuse = not os.environ.get("PTSDK_TEST_ENV_BUILD") and built.is_dir() and not is_stale(get_backend("trl"))
    home = tmp_path / "home"
    monkeypatch.setenv("PTSDK_HOME", str(home))
    monkeypatch.delenv("PTSDK_TRL_PYTHON", raising=False)
    monkeypatch.setenv("PTSDK_CONFIG", str(tmp_path / "none.yaml"))

    if reuse:
        shutil.copytree(built, home / "envs" / "trl", symlinks=True)
        r = ptsdk("env", "create", "trl")  # ready and current: kept, not rebuilt
        assert r.code == 0 and "[1/3]" not in r.err, r.err
    else:
        r = ptsdk("env", "create", "trl")
        assert r.code == 0, r.err
        assert "[1/3] trl: create venv" in r.err and "ready at" in r.err
    marker = json.loads((home / "envs" / "trl" / "ptsdk-env.json").read_text())
    assert "trl==1.16.0" in marker["packages"]

    rows = {row["backend"]: row for row in json.loads(ptsdk("backends", "--format", "json").out)}
    assert rows["trl"]["source"] == "managed" and rows["trl"]["version"] == "1.16.0"

    r = ptsdk("translate", str(job), "--backend", "trl", "--out", str(tmp_path / "out"))
    assert r.code == 0, r.err
    assert "native check: passed (trl accepted the config)" in r.out

    r = ptsdk("env", "remove", "trl")
    assert r.code == 0 and not (home / "envs" / "trl").exists()
    assert "ptsdk env create trl" in ptsdk("backends").out
