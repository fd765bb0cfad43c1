"""`ptsdk import`: bad input is a clear error (exit 2) and nothing is written."""

from __future__ import annotations

from pathlib import Path


def test_missing_file_and_existing_out(ptsdk, tmp_path: Path) -> None:
    r = ptsdk("import", str(tmp_path / "nope.yaml"), "--from", "axolotl")
    assert r.code == 2 and "no such file" in r.err and "Traceback" not in r.err
    src = tmp_path / "cfg.yaml"
    src.write_text("base_model: org/m\n")
    out = tmp_path / "job.yaml"
    out.write_text("keep: me\n")
    r = ptsdk("import", str(src), "--from", "axolotl", "-o", str(out))
    assert r.code == 2 and f"--out {out}: exists; choose a new file" in r.err
    assert out.read_text() == "keep: me\n"


def test_unknown_backend(ptsdk, tmp_path: Path) -> None:
    src = tmp_path / "cfg.yaml"
    src.write_text("base_model: org/m\n")
    r = ptsdk("import", str(src), "--from", "nosuch")
    assert r.code == 2 and "Traceback" not in r.err and "nosuch" in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml"]
