"""What a person sees around real runs (issue 14): the live view's plain progress lines against metrics.jsonl,
a failure's log excerpt, `ptsdk runs` and `ptsdk show` on a folder holding a succeeded and a failed TRL run."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import fake_model


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model: Path, trl_env) -> dict:  # type: ignore[no-untyped-def]
    from ptsdk.cli import main

    root = tmp_path_factory.mktemp("experience")
    examples = Path(__file__).resolve().parents[2] / "examples"
    job = yaml.safe_load((examples / "jobs" / "sft_lora.yaml").read_text())
    job["model"]["name_or_path"] = str(tiny_model)
    job["data"]["train"]["path"] = str(examples / "data" / "sft_train.jsonl")
    job["data"]["eval"]["path"] = str(examples / "data" / "sft_eval.jsonl")
    job["training"]["max_steps"] = 6
    good = root / "good.yaml"
    good.write_text(yaml.safe_dump(job))
    job["model"]["name_or_path"] = str(fake_model(root / "broken-model"))  # passes preflight, fails to load
    bad = root / "bad.yaml"
    bad.write_text(yaml.safe_dump(job))
    out = {}
    mp = pytest.MonkeyPatch()
    mp.setenv("PTSDK_PROGRESS_EVERY", "2")
    for name, path in (("good", good), ("bad", bad)):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["run", str(path), "--backend", "trl", "--run-dir", str(root / "runs" / name)])
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
        out[name] = (code, err.getvalue(), root / "runs" / name)
    mp.undo()
    out["root"] = root / "runs"
    return out


def test_plain_progress_lines_match_the_metrics(runs: dict) -> None:
    code, err, run_dir = runs["good"]
    assert code == 0, err
    printed = [int(m.group(1)) for m in re.finditer(r"^step (\d+)/6 \(\d+%\)", err, re.M)]
    logged = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert printed == [2, 4, 6]  # every 2 steps (PTSDK_PROGRESS_EVERY), the last step included
    assert set(printed) <= set(logged)
    assert "loss" in err and "tok/s" in err
    assert "{'loss'" not in err  # the framework's raw dicts went to the log, not the terminal
    assert "'loss'" in (run_dir / "logs" / "backend.log").read_text()


def test_a_failed_run_shows_the_end_of_its_log(runs: dict) -> None:
    code, err, run_dir = runs["bad"]
    assert code == 1
    assert f"trl exited with status 1; the end of {run_dir / 'logs' / 'backend.log'}:" in err
    assert "Error" in err.split("the end of", 1)[1]


def test_runs_lists_both(ptsdk, runs: dict) -> None:  # type: ignore[no-untyped-def]
    r = ptsdk("runs", str(runs["root"]), "--format", "json")
    assert r.code == 0
    rows = {Path(row["run_dir"]).name: row for row in json.loads(r.out)}
    assert rows["good"]["status"] == "succeeded" and rows["good"]["steps"] == 6
    assert rows["good"]["last_loss"] is not None and rows["good"]["backend"] == "trl"
    assert rows["bad"]["status"] == "failed" and rows["bad"]["steps"] == 0
    r = ptsdk("runs", str(runs["root"]))
    assert r.code == 0 and "succeeded" in r.out and "failed" in r.out


def test_show_summarizes_and_draws(ptsdk, runs: dict) -> None:  # type: ignore[no-untyped-def]
    good = runs["good"][2]
    r = ptsdk("show", str(good), "--format", "json")
    info = json.loads(r.out)
    assert r.code == 0 and info["status"] == "succeeded" and info["model"] == str(good / "model")
    assert Path(info["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert info["summary"]["final_loss"] < info["summary"]["first_loss"]
    r = ptsdk("show", str(runs["bad"][2]), "--no-png")
    assert r.code == 0 and "status     failed (exit 1)" in r.out and "end of the log:" in r.out
    r = ptsdk("show", str(runs["root"] / "nope"))
    assert r.code == 2 and "Traceback" not in r.err
