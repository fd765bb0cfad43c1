"""The warm start (ptsdk.warm): a script handed to the warm interpreter runs as `python SCRIPT.py` would, anything
that does not match exactly starts cold, and a warm interpreter nobody takes never outlives ptsdk.

The "framework's interpreter" here is this test's own Python; its warm module is a probe that records its pid.
TRL's test (tests/backends/test_trl.py::test_warm_start_trains_as_a_cold_start) trains with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ptsdk import warm

PYTHON = sys.executable
#: Other interpreters a backend's environment may run, as far as this machine has them (the bootstrap is 3.8+).
OTHERS = sorted(
    str(p)
    for p in Path("/root/.pyenv/versions").glob("3.*/bin/python")
    if p.parent.parent.name.split(".")[1].isdigit() and int(p.parent.parent.name.split(".")[1]) >= 8
)
PROBE = """\
import json, os, sys
import multiprocessing.process
print(json.dumps({
    "argv": sys.argv, "file": __file__, "name": __name__, "path": sys.path, "cwd": os.getcwd(),
    "mp_dir": multiprocessing.process.ORIGINAL_DIR,
    "spec": repr(__spec__), "package": __package__, "doc": __doc__, "x": os.environ.get("X"),
    "main_keys": sorted(k for k in globals() if k.startswith("__")),
    "unbuffered": os.environ.get("PYTHONUNBUFFERED"),
    "environ": dict(os.environ),
    "child_environ": __import__("subprocess").run(
        [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"], capture_output=True, text=True
    ).stdout,
}))
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PTSDK_HOME in tmp_path, warm starts enabled as the `ptsdk` command enables them, a warm module that
    writes its interpreter's pid to tmp_path/pids/PID, and nothing left warm afterwards."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "warmprobe.py").write_text(
        "import multiprocessing.process, os, time\n"  # as torch does: it notes the directory it was imported in
        f"open(os.path.join({str(tmp_path / 'pids')!r}, str(os.getpid())), 'w').close()\n"
        "time.sleep(float(os.environ.get('WARMPROBE_SLEEP', '0')))\n"  # a slow import, as torch's (2 s)
    )
    (tmp_path / "pids").mkdir()
    monkeypatch.setenv("PTSDK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "mods"))
    monkeypatch.delenv(warm.SWITCH, raising=False)
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    monkeypatch.setattr(warm, "_enabled", True)
    yield tmp_path
    warm.discard()
    warm.handed_over(0.0)


def warm_pids(tmp_path: Path, timeout: float = 30) -> list[int]:
    """The pids of the warm interpreters started so far, once one has done its imports."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [int(p.name) for p in (tmp_path / "pids").iterdir()]
        if pids:
            return pids
        time.sleep(0.02)
    raise AssertionError("no warm interpreter imported its modules")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of ours counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def run_dir_with_probe(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "probe.py").write_text(PROBE)
    return run


@pytest.mark.parametrize("case", ["plain", "safe path", "symlinked script", *(f"python {p}" for p in OTHERS)])
def test_a_handed_over_script_runs_as_python_would(home: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    python = case.split(" ", 1)[1] if case.startswith("python ") else PYTHON
    run = run_dir_with_probe(home)
    script = "probe.py"
    if case == "safe path":
        monkeypatch.setenv("PYTHONSAFEPATH", "1")  # no script directory on sys.path
    elif case == "symlinked script":
        (home / "real").mkdir()
        (home / "real" / "probe.py").write_text(PROBE)
        (run / "link.py").symlink_to(home / "real" / "probe.py")  # sys.path[0] is the target's directory
        script = "link.py"
    warm.remember("fake", python, {"X": "1", "PTSDK_SEED": "1"}, ["warmprobe"])
    warm.start("fake", unbuffered=False)
    [pid] = warm_pids(home)
    # ptsdk's own variables come at the hand-over: another seed is still the same environment
    env = warm.process_env({"X": "1", "PTSDK_SEED": "7"}, python, unbuffered=False)
    argv = [python, script, "3", "two words"]
    started = time.monotonic()
    proc = warm.take(argv, env, run)
    assert proc is not None and proc.pid == pid
    out, _ = proc.communicate(timeout=60)
    native = subprocess.run(argv, cwd=run, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == native.returncode == 3
    seen, expected = json.loads(out), json.loads(native.stdout)
    for probe in (seen, expected):
        probe["child_environ"] = json.loads(probe["child_environ"])
    assert seen == expected
    assert seen["x"] == "1" and seen["mp_dir"] == str(run.resolve()) and seen["environ"]["PTSDK_SEED"] == "7"
    assert seen["child_environ"] == seen["environ"] == env
    handed = warm.handed_over(started)
    assert handed is not None and handed["lead_s"] > 0 and 0 <= handed["imports_s"] < 30, handed
    assert warm.handed_over(started) is None  # read once


def test_a_failing_script_prints_its_own_traceback(home: Path) -> None:
    run = home / "run"
    run.mkdir()
    (run / "fails.py").write_text("def f():\n    raise ValueError('the framework said no')\nf()\n")
    warm.remember("fake", PYTHON, {}, ["warmprobe"])
    warm.start("fake", unbuffered=False)
    env = warm.process_env({}, PYTHON, unbuffered=False)
    proc = warm.take([PYTHON, "fails.py"], env, run)
    assert proc is not None
    out, _ = proc.communicate(timeout=60)
    native = subprocess.run([PYTHON, "fails.py"], cwd=run, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == native.returncode == 1
    assert out == native.stderr  # no frame of ptsdk's bootstrap
    assert "<string>" not in out and "ValueError: the framework said no" in out


@pytest.mark.parametrize("script", ["broken.py", "gone.py"])
def test_a_script_that_does_not_compile_or_vanished(home: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    run = home / "run"
    run.mkdir()
    (run / "broken.py").write_text("def f(:\n")
    env = warm.process_env({}, PYTHON, unbuffered=False)
    warm.remember("fake", PYTHON, {}, ["warmprobe"])
    warm.start("fake", unbuffered=False)
    with monkeypatch.context() as m:
        m.setattr(Path, "is_file", lambda self: True)  # gone.py vanishes between ptsdk's check and the open
        handed = warm.take([PYTHON, script], env, run)
    assert handed is not None
    out, _ = handed.communicate(timeout=60)
    native = subprocess.run([PYTHON, script], cwd=run, env=env, capture_output=True, text=True, timeout=60)
    assert handed.returncode == native.returncode == (1 if script == "broken.py" else 2)
    assert out == native.stderr


def test_an_interrupt_in_the_hand_over_stops_it(home: Path, slow: None, monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_dir_with_probe(home)
    warm.remember("fake", PYTHON, {}, ["warmprobe"])
    warm.start("fake", unbuffered=False)
    [pid] = warm_pids(home)

    def interrupted(self: Path) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "is_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        warm.take([PYTHON, "probe.py", "0"], warm.process_env({}, PYTHON, unbuffered=False), run)
    assert gone(pid) and warm._warm is None


@pytest.mark.parametrize(
    "change",
    ["environment", "interpreter", "module command", "not a script", "unbuffered (-v)"],
)
def test_anything_but_an_exact_match_starts_cold(home: Path, slow: None, change: str) -> None:
    run = run_dir_with_probe(home)
    warm.remember("fake", PYTHON, {"X": "1"}, ["warmprobe"])
    warm.start("fake", unbuffered=change == "unbuffered (-v)")
    [pid] = warm_pids(home)
    env = warm.process_env({"X": "2" if change == "environment" else "1"}, PYTHON, unbuffered=False)
    argv = {
        "interpreter": ["/usr/bin/python3", "probe.py", "0"],
        "module command": [PYTHON, "-m", "probe"],
        "not a script": [PYTHON, "probe.txt"],
    }.get(change, [PYTHON, "probe.py", "0"])
    assert warm.take(argv, env, run) is None
    assert gone(pid)
    assert warm.handed_over(0.0) is None


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm imports take a minute: only a kill ends the warm interpreter before that."""
    monkeypatch.setenv("WARMPROBE_SLEEP", "60")


def test_a_warm_import_that_fails_is_left_to_the_script(home: Path) -> None:
    """The script's own import fails as it would natively: its traceback, its exit code."""
    warm.remember("fake", PYTHON, {}, ["no_such_module_for_ptsdk", "warmprobe"])
    warm.start("fake", unbuffered=False)
    run = home / "run"
    run.mkdir()
    (run / "imports.py").write_text("import no_such_module_for_ptsdk\n")
    env = warm.process_env({}, PYTHON, unbuffered=False)
    proc = warm.take([PYTHON, "imports.py"], env, run)
    assert proc is not None
    out, _ = proc.communicate(timeout=60)
    native = subprocess.run([PYTHON, "imports.py"], cwd=run, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == native.returncode == 1 and out == native.stderr
    assert "ModuleNotFoundError" in out and not list((home / "pids").iterdir())  # the rest is the script's


def test_discard_stops_it(home: Path, slow: None) -> None:
    warm.remember("fake", PYTHON, {}, ["warmprobe"])
    warm.start("fake", unbuffered=False)
    [pid] = warm_pids(home)
    warm.discard()
    assert gone(pid)


@pytest.mark.parametrize(
    "why", ["disabled", "switched off", "never ran", "corrupt record", "odd name", "relative", "empty entry"]
)
def test_nothing_starts_when(home: Path, monkeypatch: pytest.MonkeyPatch, why: str) -> None:
    name = "fake" if why != "odd name" else "../fake"
    warm.remember("fake", PYTHON, {}, ["warmprobe"])
    if why == "odd name":  # where ../fake would lead: refused by name, not for want of a record
        (home / "home" / "fake.json").write_text((home / "home" / "warm" / "fake.json").read_text())
    if why == "disabled":
        monkeypatch.setattr(warm, "_enabled", False)  # in-process callers: ptsdk.run(), tests, notebooks
    elif why == "switched off":
        monkeypatch.setenv(warm.SWITCH, "0")
    elif why == "never ran":
        name = "other"
    elif why == "corrupt record":
        (home / "home" / "warm" / "fake.json").write_text('{"python": ')
    elif why == "relative":
        monkeypatch.setenv("PYTHONPATH", "mods")  # resolved against where the interpreter starts
    elif why == "empty entry":
        monkeypatch.setenv("PYTHONPATH", f"{home / 'mods'}:")  # `export PYTHONPATH=$PYTHONPATH:/x`, unset before
    warm.start(name, unbuffered=False)
    assert warm._warm is None


def test_an_unwritable_home_only_means_no_warm_start(home: Path) -> None:
    (home / "home").write_text("a file where the folder should be")
    warm.remember("fake", PYTHON, {}, ["warmprobe"])
    warm.start("fake", unbuffered=False)
    assert warm._warm is None


def test_a_rejected_job_stops_the_warm_interpreter(home: Path, slow: None) -> None:
    """The real `ptsdk` command: the job is refused (exit 2, no traceback) and the warm interpreter it started
    for trl is gone by the time ptsdk has exited."""
    warm.remember("trl", PYTHON, {}, ["warmprobe"])
    job = home / "bad.yaml"
    job.write_text("method: {name: sft}\nmodel: {name_or_path: m}\ndata: {train: {path: nowhere.jsonl}}\n")
    proc = subprocess.run(
        [PYTHON, "-m", "ptsdk", "run", str(job), "-b", "trl"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PTSDK_HOME": str(home / "home")},
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    [pid] = warm_pids(home)
    assert gone(pid, timeout=2)


def test_ptsdk_killed_takes_the_warm_interpreter_with_it(home: Path, slow: None) -> None:
    """ptsdk dies (SIGKILL) while its warm interpreter imports: the kernel's parent-death signal ends it."""
    warm.remember("fake", PYTHON, {}, ["warmprobe"])
    code = textwrap.dedent(
        """
        import os, signal, time
        from ptsdk import warm
        warm.enable()
        warm.start("fake", unbuffered=False)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([PYTHON, "-c", code], env={**os.environ})
    try:
        [pid] = warm_pids(home)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert gone(pid)
    finally:
        parent.kill()
