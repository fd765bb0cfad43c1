"""The `ptsdk` process's exit (ptsdk.cli.entry): quick, but nothing printed or registered is lost."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import minimal_job


def ptsdk(*args: str, cwd: Path | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ptsdk", *args], capture_output=True, text=True, timeout=120, cwd=cwd, **kwargs
    )


def shell(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120)


def test_a_large_output_arrives_whole_through_a_pipe() -> None:
    proc = ptsdk("matrix", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout) > 50_000  # larger than a pipe's buffer: flushed before the process ends
    assert "trl" in json.loads(proc.stdout)["backends"]


def test_bad_input_keeps_its_exit_code_and_message(tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps(minimal_job(training={"learning_rate": -1})))
    proc = ptsdk("validate", str(job))
    assert proc.returncode == 2
    assert "training.learning_rate" in proc.stderr and "Traceback" not in proc.stderr


def test_exit_handlers_still_run(tmp_path: Path) -> None:
    """What a library registers with atexit (logging's flush, a temporary folder's removal) still happens."""
    marker = tmp_path / "ran"
    script = textwrap.dedent(f"""
        import atexit, sys
        from pathlib import Path
        atexit.register(lambda: Path({str(marker)!r}).write_text("yes"))
        sys.argv = ["ptsdk", "--version"]
        from ptsdk.cli import entry
        entry()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("ptsdk, version")
    assert marker.read_text() == "yes"


def test_a_thread_still_running_is_waited_for(tmp_path: Path) -> None:
    """With another (non-daemon) thread alive, the process exits the ordinary way: the thread finishes."""
    marker = tmp_path / "done"
    script = textwrap.dedent(f"""
        import sys, threading, time
        from pathlib import Path
        threading.Thread(target=lambda: (time.sleep(0.5), Path({str(marker)!r}).write_text("yes"))).start()
        sys.argv = ["ptsdk", "validate", "/nonexistent/job.yaml"]
        from ptsdk.cli import entry
        entry()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert marker.read_text() == "yes"


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    """`ptsdk matrix --format json | head -c 100`: the pipe closes under a large write."""
    proc = shell(f"{sys.executable} -m ptsdk matrix --format json | head -c 100 >/dev/null; echo ${{PIPESTATUS[0]}}")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.strip() in {"0", "1", "120", "141"}, proc.stdout


def test_a_closed_stdout_is_no_error() -> None:
    """Started with its standard output closed (`ptsdk --version >&-`), Python has no sys.stdout to flush."""
    proc = shell(f"{sys.executable} -m ptsdk --version >&-")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
