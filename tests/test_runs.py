"""`ptsdk runs` and `ptsdk show` on hand-made and damaged run directories (the real-run case is
tests/backends/test_run_experience.py)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import minimal_job


def make_run(folder: Path, status: str = "succeeded", losses: tuple[float, ...] = (2.0, 1.5, 1.0)) -> Path:
    folder.mkdir(parents=True)
    manifest = {
        "backend": "trl",
        "job": {**minimal_job(), "name": folder.name},
        "status": status,
        "exit_code": 0 if status == "succeeded" else 1,
        "started_at": f"2026-11-28T10:0{len(folder.name) % 10}:00+00:00",
        "wall_time_s": 12.5,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    lines = [json.dumps({"step": i + 1, "kind": "train", "loss": loss}) for i, loss in enumerate(losses)]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "logs").mkdir()
    (folder / "logs" / "backend.log").write_text("step 1\nTraceback (most recent call last):\nValueError: boom\n")
    return folder


def test_runs_lists_good_failed_and_damaged(ptsdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    make_run(tmp_path / "runs" / "a")
    make_run(tmp_path / "runs" / "group" / "b", "failed", ())
    (tmp_path / "runs" / "c").mkdir()
    (tmp_path / "runs" / "c" / "manifest.json").write_text("{")
    r = ptsdk("runs", str(tmp_path / "runs"), "--format", "json")
    rows = {Path(row["run_dir"]).name: row for row in json.loads(r.out)}
    assert r.code == 0 and set(rows) == {"a", "b", "c"}
    assert rows["a"]["status"] == "succeeded" and rows["a"]["steps"] == 3 and rows["a"]["last_loss"] == 1.0
    assert rows["b"]["status"] == "failed" and rows["b"]["steps"] == 0
    assert rows["c"]["status"] == "unreadable" and "truncated" in rows["c"]["problem"]
    r = ptsdk("runs", str(tmp_path / "runs"))
    assert r.code == 0 and "unreadable" in r.out and "truncated" in r.err


def test_show_draws_and_reports(ptsdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = make_run(tmp_path / "a")
    r = ptsdk("show", str(run))
    assert r.code == 0 and "loss       2.0000 -> 1.0000 (best 1.0000)" in r.out
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    failed = make_run(tmp_path / "b", "failed", ())
    info = json.loads(ptsdk("show", str(failed), "--format", "json").out)
    assert info["log_tail"][0].startswith("Traceback") and "png" not in info  # nothing to draw
    r = ptsdk("show", str(run), "--png", str(tmp_path / "missing" / "x.png"))
    assert r.code == 2 and "--png" in r.err and ".tmp" not in r.err
    assert not list((tmp_path / "a").glob(".*tmp*"))


def test_runs_and_show_refuse_what_is_not_a_run_folder(ptsdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "f").write_text("x")
    for args in (("runs", str(tmp_path / "nope")), ("runs", str(tmp_path / "f")), ("show", str(tmp_path / "nope"))):
        r = ptsdk(*args)
        assert r.code == 2 and "Traceback" not in r.err, args
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "up").symlink_to(tmp_path)
    r = ptsdk("runs", str(tmp_path / "loop"))
    assert r.code == 0 and "no runs" in r.err
