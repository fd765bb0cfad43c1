"""`ptsdk new`: a first job for every method, valid as written (spec, data and model preflight), or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, fake_model
from ptsdk.spec.method import METHOD_NAMES

DATA = {
    "sft": "sft_train.jsonl",
    "kto": "kto_train.jsonl",
    "grpo": "rl_train.jsonl",
    "ppo": "rl_train.jsonl",
    "rloo": "rl_train.jsonl",
    "reinforce_pp": "rl_train.jsonl",
}
TRL_RUNS = {"sft", "dpo", "ipo", "orpo", "simpo", "cpo", "kto", "grpo", "rloo"}


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_method_gets_a_valid_commented_job(ptsdk, tmp_path: Path, method: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    model = fake_model(tmp_path / "models" / "tiny")
    data = EXAMPLES / "data" / DATA.get(method, "pref_train.jsonl")
    args = ["new", "-m", method, "--model", str(model), "--data", str(data), "-o", "jobs/first.yaml", "--device", "cpu"]
    if method in ("grpo", "ppo", "rloo", "reinforce_pp"):
        args += ["--reward", str(EXAMPLES / "rewards.py") + ":correct"]
    (tmp_path / "jobs").mkdir()
    r = ptsdk(*args)
    assert r.code == 0, r.err
    text = (tmp_path / "jobs" / "first.yaml").read_text()
    assert text.startswith(f"# A {method} job written by `ptsdk new`")
    assert text.count("#") > 8  # commented
    job = yaml.safe_load(text)
    assert job["method"]["name"] == method
    assert job["model"]["name_or_path"] == "../models/tiny"  # relative to the job file
    r = ptsdk("validate", "jobs/first.yaml")
    assert r.code == 0, r.err
    if method in TRL_RUNS:
        r = ptsdk("validate", "jobs/first.yaml", "--backend", "trl")
        assert r.code == 0, r.err


def test_chat_data_gets_the_messages_format(ptsdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "chat.yaml"
    model = fake_model(tmp_path / "m")
    r = ptsdk(
        "new", "-m", "sft", "--model", str(model), "--data", str(EXAMPLES / "data" / "chat_train.jsonl"), "-o", str(out)
    )
    assert r.code == 0, r.err
    assert yaml.safe_load(out.read_text())["data"]["format"] == "messages"
    assert yaml.safe_load(out.read_text())["distributed"]["device"] == "cpu"  # no GPU on this machine


@pytest.mark.parametrize(
    ("method", "data", "extra", "says"),
    [
        ("dpo", "sft_train.jsonl", [], "the job would not be valid as written; nothing was written"),
        ("grpo", "rl_train.jsonl", [], "online RL needs a reward; pass --reward"),
        ("sft", "sft_train.jsonl", ["--reward", "r.py:f"], "--reward: sft learns from its data"),
        ("sft", "missing.jsonl", [], "--data"),
        ("grpo", "rl_train.jsonl", ["--reward", "/nope/r.py:f"], "no such file /nope/r.py"),
        ("nope", "sft_train.jsonl", [], "--method nope: not a method"),
    ],
)
def test_bad_input_writes_nothing(ptsdk, tmp_path: Path, method: str, data: str, extra: list, says: str) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "job.yaml"
    model = fake_model(tmp_path / "m")
    r = ptsdk(
        "new", "-m", method, "--model", str(model), "--data", str(EXAMPLES / "data" / data), "-o", str(out), *extra
    )
    assert r.code == 2 and says in r.err and "Traceback" not in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no job, no temporary file


def test_never_over_an_existing_file_or_a_missing_model(ptsdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "job.yaml"
    out.write_text("mine")
    data = str(EXAMPLES / "data" / "sft_train.jsonl")
    r = ptsdk("new", "-m", "sft", "--model", str(fake_model(tmp_path / "m")), "--data", data, "-o", str(out))
    assert r.code == 2 and "exists" in r.err and out.read_text() == "mine"
    r = ptsdk("new", "-m", "sft", "--model", "./no-model", "--data", data, "-o", str(tmp_path / "b.yaml"))
    assert r.code == 2 and "--model ./no-model: no such folder" in r.err
