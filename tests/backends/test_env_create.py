"""A real managed environment for a framework other than TRL: built from ptsdk's pinned
requirements, asked for Axolotl's own verdict from ptsdk, then removed without a trace."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.envbuild]


def test_create_validate_remove_axolotl_environment(ptsdk, example_job, tmp_path, monkeypatch) -> None:
    job = example_job("sft_lora.yaml")
    home = tmp_path / "home"
    monkeypatch.setenv("PTSDK_HOME", str(home))
    monkeypatch.delenv("PTSDK_AXOLOTL_PYTHON", raising=False)
    monkeypatch.setenv("PTSDK_CONFIG", str(tmp_path / "none.yaml"))

    r = ptsdk("env", "create", "axolotl")
    assert r.code == 0, r.err
    assert "[1/3] axolotl: create venv" in r.err and "ready at" in r.err
    marker = json.loads((home / "envs" / "axolotl" / "ptsdk-env.json").read_text())
    assert "axolotl==0.19.0" in marker["packages"]

    rows = {row["backend"]: row for row in json.loads(ptsdk("backends", "--format", "json").out)}
    assert rows["axolotl"]["source"] == "managed" and rows["axolotl"]["version"] == "0.19.0"

    r = ptsdk("translate", str(job), "--backend", "axolotl", "--out", str(tmp_path / "out"))
    assert r.code == 0, r.err
    assert "native check: passed (axolotl accepted the config)" in r.out

    r = ptsdk("env", "remove", "axolotl")
    assert r.code == 0 and not (home / "envs" / "axolotl").exists()
    assert "ptsdk env create axolotl" in ptsdk("backends").out
