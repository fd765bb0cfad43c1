"""A native check that passed is not repeated for the same plan in the same environment; anything it depends on
changing checks again; a rejection is never cached."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from ptsdk import pipeline
from ptsdk.errors import UnsupportedError
from ptsdk.plugins.backend import Plan, PlanFile


class CountingBackend:
    name = "counting"
    framework = "counting"

    def __init__(self, verdict: list[str] | None = None) -> None:
        self.env = SimpleNamespace(python=sys.executable, container=None)
        self.calls = 0
        self.verdict = verdict or []

    def native_check(self, plan: Plan, folder: Path) -> list[str]:
        self.calls += 1
        assert (folder / "config.yaml").is_file()
        return list(self.verdict)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PTSDK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PTSDK_NO_CHECK_CACHE", raising=False)
    return tmp_path / "home"


def plan(text: str = "a: 1\n", inputs: list[str] | None = None) -> Plan:
    return Plan("counting", [PlanFile("config.yaml", content=text)], ["train.py"], inputs=inputs or [])


def test_a_passed_check_is_remembered(tmp_path: Path) -> None:
    b = CountingBackend()
    pipeline.native_check(b, plan())  # type: ignore[arg-type]
    pipeline.native_check(b, plan())  # type: ignore[arg-type]
    assert b.calls == 1
    pipeline.native_check(b, plan("a: 2\n"))  # type: ignore[arg-type]
    assert b.calls == 2


def test_inputs_and_the_switch_invalidate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text("{}\n")
    b = CountingBackend()
    pipeline.native_check(b, plan(inputs=[str(data)]))  # type: ignore[arg-type]
    data.write_text('{"changed": 1}\n')
    os.utime(data, ns=(1, 1))
    pipeline.native_check(b, plan(inputs=[str(data)]))  # type: ignore[arg-type]
    assert b.calls == 2
    monkeypatch.setenv("PTSDK_NO_CHECK_CACHE", "1")
    pipeline.native_check(b, plan(inputs=[str(data)]))  # type: ignore[arg-type]
    assert b.calls == 3


def test_a_rejection_is_never_cached() -> None:
    b = CountingBackend(["x: not a field"])
    for _ in range(2):
        with pytest.raises(UnsupportedError):
            pipeline.native_check(b, plan())  # type: ignore[arg-type]
    assert b.calls == 2


def test_an_unwritable_cache_only_costs_time(home: Path) -> None:
    home.mkdir()
    home.chmod(0o500)
    try:
        b = CountingBackend()
        pipeline.native_check(b, plan())  # type: ignore[arg-type]
        pipeline.native_check(b, plan())  # type: ignore[arg-type]
        assert b.calls == (1 if os.geteuid() == 0 else 2)  # root writes anyway
    finally:
        home.chmod(0o700)
