"""Folders ptsdk writes: read-only, busy, too-long or contested paths give a clear error, and
concurrent runs never share (or collide on) a run directory; `env create` builds one env at a time."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import local_job, minimal_job
from ptsdk.errors import PtsdkError
from ptsdk.rundir import LOCK, DirLock, claim_new_dir, claim_run_dir, lock_run_dir, staged_dir


def _mount(target: Path, *options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    opts = ",".join(("size=1m", *options))
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(target)], capture_output=True).returncode == 0
    )


@pytest.fixture
def read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real read-only filesystem where this machine lets us mount one (root in CI); otherwise mkdir
    under the folder fails with EROFS as the kernel would (a failure path, so a stand-in is fair)."""
    ro = tmp_path / "ro"
    if _mount(ro, "ro"):
        yield ro
        subprocess.run(["umount", str(ro)], check=False)
        return
    import errno

    real_mkdir = os.mkdir

    def mkdir(path: object, *args: object, **kwargs: object) -> None:
        if str(path).startswith(str(ro)) and str(path) != str(ro):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]

    ro.mkdir()
    monkeypatch.setattr(os, "mkdir", mkdir)
    yield ro


def test_output_dir_on_a_read_only_filesystem(ptsdk, write_job, read_only: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PTSDK_TRL_PYTHON", sys.executable)
    job = write_job(local_job(read_only.parent, output={"dir": str(read_only / "runs")}))
    r = ptsdk("run", str(job), "--backend", "trl")
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert f"output.dir {read_only}/runs/" in r.err and "the filesystem is read-only" in r.err


def test_run_dir_and_translate_out_on_a_read_only_filesystem(
    ptsdk, write_job, read_only: Path, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("PTSDK_TRL_PYTHON", sys.executable)
    job = str(write_job(local_job(tmp_path)))
    r = ptsdk("run", job, "--backend", "trl", "--run-dir", str(read_only / "run"))
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert f"--run-dir {read_only}/run: cannot write there: the filesystem is read-only" in r.err
    r = ptsdk("translate", job, "--backend", "trl", "--no-native-check", "--out", str(read_only / "out"))
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert f"--out {read_only}/out: cannot write there: the filesystem is read-only" in r.err


def test_a_mount_point_is_a_usable_out_folder(ptsdk, write_job, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    if not _mount(mnt):
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        r = ptsdk("translate", str(write_job(minimal_job())), "-b", "trl", "--no-native-check", "--out", str(mnt))
        assert r.code == 0, r.err
        assert {"NOTES.txt", "command.sh", "trl_config.yaml"} <= {p.name for p in mnt.iterdir()}
        assert not (mnt / LOCK).exists()
        claimed = claim_new_dir(mnt / "sub", "--run-dir")  # a fresh folder inside: fine
        claimed.discard()
        assert not (mnt / "sub").exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_a_path_too_long_for_the_filesystem(ptsdk, write_job, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PTSDK_TRL_PYTHON", sys.executable)
    long = tmp_path / ("x" * 300)
    r = ptsdk("run", str(write_job(local_job(tmp_path))), "--backend", "trl", "--run-dir", str(long))
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert "the path is too long for the filesystem" in r.err and "(3" in r.err  # shortened, with its length
    assert len(r.err) < 1000


def test_one_of_two_claims_on_one_folder_wins(tmp_path: Path) -> None:
    first = claim_new_dir(tmp_path / "run", "--run-dir")
    with pytest.raises(PtsdkError, match=rf"--run-dir {tmp_path}/run: another ptsdk process \(pid {os.getpid()}\)"):
        claim_new_dir(tmp_path / "run", "--run-dir")
    (tmp_path / "run" / "file").write_text("x")
    first.release()
    with pytest.raises(PtsdkError, match="exists and is not empty"):
        claim_new_dir(tmp_path / "run", "--run-dir")


def test_discard_removes_what_was_written_and_keeps_a_users_empty_folder(tmp_path: Path) -> None:
    made = claim_new_dir(tmp_path / "new", "--out")
    (made.path / "half.txt").write_text("x")
    made.discard()
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    taken = claim_new_dir(tmp_path / "mine", "--out")
    (taken.path / "sub").mkdir()
    taken.discard()
    assert (tmp_path / "mine").is_dir() and list((tmp_path / "mine").iterdir()) == []


def test_staged_dir_leaves_nothing_on_failure_and_no_lock_on_success(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with staged_dir(tmp_path / "out") as out:
            (out / "a.txt").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with staged_dir(tmp_path / "out") as out:
        (out / "a.txt").write_text("x")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt"]


def _claim_default(args: tuple[str, object]) -> str:
    parent, barrier = args
    barrier.wait()  # type: ignore[attr-defined]
    claimed = claim_run_dir(None, parent, "job", "trl")
    time.sleep(0.2)  # hold it while the others pick
    claimed.release()
    return str(claimed.path)


def test_runs_started_in_the_same_second_get_different_run_dirs(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    n = 6
    barrier = ctx.Manager().Barrier(n)
    with ctx.Pool(n) as pool:
        paths = pool.map(_claim_default, [(str(tmp_path), barrier)] * n)
    assert len(set(paths)) == n
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(p).name for p in paths)  # no staging leftovers


def test_two_runs_with_one_run_dir_through_the_cli(tmp_path: Path, write_job) -> None:
    """Two real `ptsdk run` processes on one --run-dir at once: the second is refused while the first
    holds the folder (here its native check takes 3 s and then fails), and nothing is left behind."""
    fake = tmp_path / "slowpython"
    fake.write_text("#!/bin/sh\nsleep 3\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PTSDK_TRL_PYTHON": str(fake)}
    job = str(write_job(local_job(tmp_path)))
    run = tmp_path / "shared"
    ptsdk = [sys.executable, "-m", "ptsdk", "run", job, "-b", "trl", "--run-dir", str(run), "-q"]
    first = subprocess.Popen(ptsdk, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (run / LOCK).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(ptsdk, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2, second.stderr
    assert f"--run-dir {run}: another ptsdk process (pid {first.pid}) is writing it" in second.stderr
    assert first.wait(timeout=120) == 2
    assert "harness.py failed" in first.stderr.read()  # type: ignore[union-attr]  # the holder got past the claim
    assert list(tmp_path.iterdir()) == [fake, tmp_path / "job.yaml"] or not run.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_killed_holder_never_blocks_a_later_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    code = (
        "import pathlib, sys, time; from ptsdk.rundir import lock_run_dir\n"
        f"lock = lock_run_dir(pathlib.Path({str(run)!r})); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(
        PtsdkError, match=rf"--resume {run}: another ptsdk process \(pid {holder.pid}\) is running it now"
    ):
        lock_run_dir(run)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    lock = lock_run_dir(run)  # the kernel dropped the dead holder's lock
    assert DirLock(run).held_elsewhere()  # and now this process holds it
    lock.release()
    assert not DirLock(run).held_elsewhere()


def test_env_create_waits_for_a_build_in_progress(tmp_path: Path, monkeypatch) -> None:
    """A second `env create` of one backend waits for the first and then finds it ready (no second build)."""
    from ptsdk.envbuild import create_env
    from ptsdk.envs import READY_MARKER, managed_env_dir
    from ptsdk.plugins.manager import get_backend

    monkeypatch.setenv("PTSDK_HOME", str(tmp_path / "home"))
    trl = get_backend("trl")
    target = managed_env_dir("trl")
    target.parent.mkdir(parents=True)
    first = DirLock(target.parent, ".trl.lock")
    assert first.acquire()  # a build in progress
    said: list[str] = []
    result: list[Path] = []
    second = threading.Thread(target=lambda: result.append(create_env(trl, python="/nonexistent", say=said.append)))
    second.start()
    time.sleep(0.5)
    assert second.is_alive() and any("is building it; waiting" in s for s in said), said
    target.mkdir()  # the first build finishes
    (target / READY_MARKER).write_text(json.dumps({"requirements_sha": trl.environment().sha}))
    first.release()
    second.join(timeout=10)
    assert result == [target] and "already ready" in said[-1]
