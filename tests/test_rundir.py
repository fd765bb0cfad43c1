"""The run directory: its layout, its manifest read back safely, and the guard for new folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import local_job, minimal_job
from ptsdk.errors import PtsdkError
from ptsdk.metrics import MetricRecord, write_metrics
from ptsdk.rundir import LOG, MANIFEST, METRICS, RunDir, require_new_dir


def make_run(root: Path, manifest_text: str | None = None, **manifest: object) -> Path:
    """A run directory written by hand: a manifest (given as text, or built from a valid job) and nothing else."""
    run = root / "run"
    (run / LOG).parent.mkdir(parents=True)
    if manifest_text is None:
        data = {"backend": "trl", "status": "succeeded", "exit_code": 0, "job": minimal_job(name="tiny"), **manifest}
        manifest_text = json.dumps(data)
    (run / MANIFEST).write_text(manifest_text)
    return run


GOOD = json.dumps({"backend": "trl", "status": "succeeded", "job": minimal_job()}, indent=2)
BAD_MANIFESTS = {
    "truncated": (GOOD[: len(GOOD) // 2], "manifest.json is truncated (line"),
    "empty": ("", "manifest.json is truncated (empty file)"),
    "not json": ("{nope}", "manifest.json is not valid JSON"),
    "list": ("[1, 2]", "manifest.json holds a JSON list, not an object"),
    "no job": (json.dumps({"backend": "trl", "status": "failed"}), "manifest.json has no `job` object"),
    "no backend": (json.dumps({"job": minimal_job()}), "manifest.json has no `backend` name"),
}


def test_layout_names_are_the_module_constants() -> None:
    rd = RunDir("/r")
    assert (MANIFEST, LOG, METRICS) == (RunDir.MANIFEST, RunDir.LOG, RunDir.METRICS)
    assert rd.manifest_path == Path("/r/manifest.json") and rd.log_path == Path("/r/logs/backend.log")
    assert rd.metrics_path == Path("/r/metrics.jsonl") and rd.model_path == Path("/r/model")
    assert rd.checkpoints_path == Path("/r/checkpoints") and rd.command_path == Path("/r/command.sh")


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest_is_a_clear_error(tmp_path: Path, case: str) -> None:
    text, expected = BAD_MANIFESTS[case]
    run = make_run(tmp_path, text)
    with pytest.raises(PtsdkError, match="the run cannot be resumed") as err:
        RunDir(run, option="--resume", purpose="resumed").read_manifest()
    assert err.value.message.startswith(f"--resume {run}: ")
    assert expected in err.value.message


def test_missing_manifest_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PtsdkError, match=r"not a ptsdk run directory \(no manifest.json\)"):
        RunDir(tmp_path / "empty").read_manifest()
    with pytest.raises(PtsdkError, match="no such run directory"):
        RunDir(tmp_path / "absent").job()


def test_metrics_and_job_round_trip(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    records = [
        MetricRecord(step=1, loss=2.0, tokens_seen=64, wall_time_s=0.5),
        MetricRecord(step=2, loss=1.5, tokens_seen=128, wall_time_s=1.0, extra={"note": "x"}),
        MetricRecord(step=2, kind="summary", loss=1.75),
    ]
    write_metrics(run / METRICS, records)
    rd = RunDir(run)
    assert rd.metrics() == records
    job = rd.job()
    assert job.name == "tiny" and job.method.name == "sft" and job.model.name_or_path == "org/model"
    assert rd.backend == "trl" and rd.status == "succeeded"


def test_no_metrics_file_is_no_records_and_bad_metrics_are_an_error(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    assert RunDir(run).metrics() == []
    (run / METRICS).write_text('{"step": 1, "kind": "train", "loss": 1.0}\n{"step": 2, "kin')
    with pytest.raises(PtsdkError, match="metrics.jsonl is not valid"):
        RunDir(run, option="--runs", purpose="compared").metrics()


def test_write_manifest_is_atomic_and_read_back(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    rd = RunDir(run)
    data = {**rd.read_manifest(), "status": "failed", "exit_code": 1}
    rd.write_manifest(data)
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []
    assert RunDir(run).read_manifest() == data and rd.status == "failed"


def test_new_folder_guard(tmp_path: Path) -> None:
    require_new_dir(tmp_path / "absent", "--out")
    (tmp_path / "empty").mkdir()
    require_new_dir(tmp_path / "empty", "--out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(PtsdkError, match=r"^--out .*full: exists and is not empty; choose a new folder$"):
        require_new_dir(tmp_path / "full", "--out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(PtsdkError, match="exists and is not a folder"):
        require_new_dir(tmp_path / "file", "--out")


def test_run_refuses_a_non_empty_run_dir(ptsdk, write_job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTSDK_TRL_PYTHON", sys.executable)  # past the environment check, to the folder guard
    run = tmp_path / "busy"
    run.mkdir()
    (run / "keep.txt").write_text("x")
    r = ptsdk("run", str(write_job(local_job(tmp_path))), "--backend", "trl", "--run-dir", str(run))
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert f"--run-dir {run}: exists and is not empty; use --resume {run} to continue it" in r.err
    assert sorted(p.name for p in run.iterdir()) == ["keep.txt"]


def test_translate_out_refuses_a_non_empty_folder(ptsdk, write_job, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    r = ptsdk("translate", str(write_job(minimal_job())), "--backend", "trl", "--no-native-check", "--out", str(out))
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert f"--out {out}: exists and is not empty; choose a new folder" in r.err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_resume_of_a_bad_manifest_through_the_cli(ptsdk, tmp_path: Path, case: str) -> None:
    text, expected = BAD_MANIFESTS[case]
    run = make_run(tmp_path, text)
    r = ptsdk("run", "--resume", str(run))
    assert r.code == 2, r.err
    assert "Traceback" not in r.err
    assert f"error: --resume {run}: {expected}" in r.err and "the run cannot be resumed" in r.err
    assert (run / MANIFEST).read_text() == text  # left as it was


def test_resume_without_manifest_or_folder_through_the_cli(ptsdk, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = ptsdk("run", "--resume", str(tmp_path / "empty"))
    assert r.code == 2 and "Traceback" not in r.err and "not a ptsdk run directory (no manifest.json)" in r.err
    r = ptsdk("run", "--resume", str(tmp_path / "absent"))
    assert r.code == 2 and "Traceback" not in r.err and "no such run directory" in r.err


def test_resume_of_an_invalid_job_names_the_manifest(ptsdk, tmp_path: Path) -> None:
    run = make_run(tmp_path, json.dumps({"backend": "trl", "job": {"method": {"name": "sft"}}}))
    r = ptsdk("run", "--resume", str(run))
    assert r.code == 2 and "Traceback" not in r.err
    assert f"{run / MANIFEST}: " in r.err and "model" in r.err


def test_compare_names_the_bad_run(ptsdk, tmp_path: Path) -> None:
    run = make_run(tmp_path, '{"backend": "trl", "job": {')
    r = ptsdk("compare", "--runs", str(run), "--runs", str(run), "--out", str(tmp_path / "rep"))
    assert r.code == 2 and "Traceback" not in r.err
    assert f"--runs {run}: manifest.json is truncated" in r.err and "the run cannot be compared" in r.err


def test_manifest_is_strict_json_even_with_non_finite_values(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    rd = RunDir(run)
    rd.write_manifest({**rd.read_manifest(), "final_loss": float("nan"), "nested": {"x": [float("inf"), 1.5]}})
    text = (run / MANIFEST).read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert data["final_loss"] is None and data["nested"] == {"x": [None, 1.5]}
