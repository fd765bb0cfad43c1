"""A real managed environment built in a fresh PTSDK_HOME from ptsdk's pinned requirements, asked
for the framework's own verdict from ptsdk, then removed without a trace. TRL's is the quickest to
build (1-3 min); `make envs` builds all four in CI anyway, so this checks the whole cycle, not each
framework's pins."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.envbuild]


def test_create_validate_remove_a_managed_environment(ptsdk, example_job, tmp_path, monkeypatch) -> None:
    job = example_job("sft_lora.yaml")
    home = tmp_path / "home"
    monkeypatch.setenv("PTSDK_HOME", str(home))
    monkeypatch.delenv("PTSDK_TRL_PYTHON", raising=False)
    monkeypatch.setenv("PTSDK_CONFIG", str(tmp_path / "none.yaml"))

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
