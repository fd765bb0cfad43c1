"""Warm start: the framework's interpreter starts while ptsdk checks the job.

Before a framework command starts, `ptsdk run` spends 0.2-0.3 s of its own: importing its libraries, reading
and checking the job, translating it, claiming the run directory. Most of a small job's time is the framework
starting (importing torch alone takes about 2 s), so that 0.3 s shows. The ``ptsdk`` command hides it: when the
backend declares :attr:`~ptsdk.plugins.backend.Backend.warm_modules` and ran here before, ptsdk starts the
backend's interpreter first thing, with the environment the backend's first command had last time, and that
interpreter imports those modules (nothing job-specific: no file of the run is read or written) while ptsdk does
its work. When the run's first command is then ``{python} SCRIPT.py ARGS...`` with exactly that interpreter and
exactly that environment (the whole of it: ptsdk's own, the command's variables, PATH), ptsdk hands it over.
ptsdk's own variables (``PTSDK_*``: the job's seed, its warm-up, read only by ptsdk's runtime in the script) are
the exception: the warm interpreter starts without them and gets the run's at the hand-over, so a job with
another seed starts warm too. At the hand-over the warm interpreter sets them, changes to the run directory and
runs the script as ``__main__`` as ``python SCRIPT.py`` would (the same ``sys.argv``, ``sys.path``,
``__file__``, environment, exit codes; its traceback without ptsdk's frames).
A warm import that failed is left to the script's own import, which fails the same way. Anything else (another
interpreter or environment, a module command, a job ptsdk rejects, Ctrl-C) stops the warm interpreter unused,
and the command starts as it always does.

What differs from a cold start: the warm modules are imported before the script's first line runs, so a script
must not need to do anything before importing them (set thread counts, say), and ``sys.orig_argv`` and the
process's command line show ``python -c``.

Only the ``ptsdk`` command does this (:func:`enable`); ``ptsdk.run()`` and in-process callers never start a
process before their job is checked. ``PTSDK_WARM_START=0`` turns it off. The manifest's attempt records a
hand-over as ``warm_start`` (:meth:`_Handed.record`): how much earlier the interpreter started (``lead_s``), how
long its imports took (``imports_s``), whether they were done at the hand-over and how long it had waited.

This module is imported before ptsdk's libraries, so it imports only the standard library.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SWITCH = "PTSDK_WARM_START"
#: What the last run of a backend started first, per backend: PTSDK_HOME/warm/NAME.json.
FOLDER = "warm"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# Runs in the backend's interpreter as `python -c BOOTSTRAP ptsdk-warm-start GO_FD READY_FD MODULES`; the command
# arrives on GO_FD as NUL-separated fields: the run directory, the number N of late variables, N KEY=VALUE, then
# argv (the script first). Python 3.8+ (a backend's environment may run another Python than ptsdk's); it imports
# nothing a script's interpreter has not loaded anyway (os, sys, time) until the hand-over.
BOOTSTRAP = r"""
def _ptsdk_warm_start(go_fd, ready_fd, modules):
    import os, sys, time
    begun = time.monotonic()
    go_fd, ready_fd = int(go_fd), int(ready_fd)
    if sys.path and sys.path[0] == "":  # the start-up directory (absent with PYTHONSAFEPATH): not the script's
        del sys.path[0]
    for name in filter(None, modules.split(",")):
        try:
            __import__(name)
        except Exception:  # the script's own import of it fails the same way, with its own traceback
            break
    try:  # how long the imports took, and when they were done (ptsdk reads it once the command ended)
        os.write(ready_fd, ("%r %r\n" % (begun, time.monotonic())).encode())
    except OSError:
        pass
    os.close(ready_fd)
    chunks = []
    while True:
        chunk = os.read(go_fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(go_fd)
    if not chunks:
        os._exit(0)  # not handed a command
    cwd, count, *fields = os.fsdecode(b"".join(chunks)).split("\0")
    late, argv = fields[: int(count)], fields[int(count) :]
    for pair in late:  # ptsdk's own variables (PTSDK_*): read by ptsdk's runtime in the script, never earlier
        key, _, value = pair.partition("=")
        os.environ[key] = value
    os.chdir(cwd)
    mp = sys.modules.get("multiprocessing.process")
    if mp is not None:  # set when it was imported, as in the script's own directory
        mp.ORIGINAL_DIR = os.path.abspath(cwd)
    path = argv[0] if os.path.isabs(argv[0]) else os.path.join(cwd, argv[0])
    shown = path if sys.version_info >= (3, 9) else argv[0]  # __file__ as given before 3.9, absolute since
    sys.argv = argv
    if not getattr(sys.flags, "safe_path", False):  # PYTHONSAFEPATH, 3.11+
        sys.path.insert(0, os.path.dirname(os.path.realpath(path)))
    hook = sys.excepthook

    def excepthook(kind, value, tb):  # the script's traceback, as `python SCRIPT.py` prints it
        while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
            tb = tb.tb_next
        if isinstance(value, BaseException):
            value.__traceback__ = tb  # what the default hook prints
        hook(kind, value, tb)

    sys.excepthook = excepthook
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as exc:
        sys.stderr.write("%s: can't open file %r: [Errno %d] %s\n" % (sys.executable, path, exc.errno, exc.strerror))
        sys.stderr.flush()
        os._exit(2)
    code = compile(source, shown, "exec", dont_inherit=True)
    import builtins, importlib.machinery
    main = sys.modules["__main__"].__dict__
    main.clear()
    main.update(
        __name__="__main__", __doc__=None, __package__=None, __spec__=None, __annotations__={},
        __builtins__=builtins, __file__=shown, __cached__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", shown),
    )
    exec(code, main)
_ptsdk_warm_start(*__import__("sys").argv[2:5])  # argv: -c ptsdk-warm-start GO_FD READY_FD MODULES
"""
#: The largest command handed over (a pipe holds 64 KiB; the warm interpreter reads it after its imports).
MAX_COMMAND = 32 * 1024

_enabled = False
_warm: _Warm | None = None
_handed: _Handed | None = None


class _Warm:
    def __init__(
        self, proc: subprocess.Popen[str], env: dict[str, str], go: int, ready: int, python: str, started: float
    ) -> None:
        self.proc, self.env, self.go, self.ready, self.python, self.started = proc, env, go, ready, python, started

    def exited(self) -> bool:
        """Whether it has exited, without reaping it (its pid, its group's id, stays its own until stop())."""
        try:
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def stop(self) -> None:
        for fd in (self.go, self.ready):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.returncode is None:  # not reaped yet: its pid (its group's id) is still its own
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def enable() -> None:
    """Let :func:`start` start warm interpreters in this process (the ``ptsdk`` command's entry point)."""
    global _enabled
    _enabled = True


def home() -> Path:
    """$PTSDK_HOME (default ~/.cache/ptsdk): managed environments, tool caches, warm-start records."""
    return Path(os.environ.get("PTSDK_HOME", Path.home() / ".cache" / "ptsdk")).expanduser()


def process_env(command_env: Mapping[str, str], python: str | None, *, unbuffered: bool) -> dict[str, str]:
    """The whole environment a command of a local environment runs with: ptsdk's own, PYTHONUNBUFFERED when its
    output is watched live (-v), the command's variables, and the environment's bin folder first on PATH."""
    env = {**os.environ, **({"PYTHONUNBUFFERED": "1"} if unbuffered else {}), **command_env}
    if python:
        # The environment's own console scripts (torchrun, accelerate) come first, as in an activated venv.
        env["PATH"] = os.pathsep.join([str(Path(python).parent), env.get("PATH", "")])
    return env


#: Variables a warm interpreter gets at the hand-over, not at its start: ptsdk's own (the job's seed, say), read
#: only by ptsdk's runtime in the script. Everything else is the environment it starts with.
LATE_PREFIX = "PTSDK_"


def _early(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith(LATE_PREFIX)}


def start_process(
    argv: Sequence[str], cwd: str | Path, env: Mapping[str, str], pass_fds: Sequence[int] = ()
) -> subprocess.Popen[str]:
    """A command's process as ptsdk starts every one: output (stdout and stderr together) to a pipe ptsdk copies to
    the log, in a session of its own (its process group is signalled, never ptsdk's), ended with ptsdk."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        errors="replace",
        pass_fds=pass_fds,
        start_new_session=True,
        preexec_fn=parent_death_signal(),
    )


@contextmanager
def warming(backend: str | None, *, unbuffered: bool) -> Iterator[None]:
    """`backend`'s interpreter warming up while the block checks its job (nothing for None); stopped at the end of
    the block unless a command took it."""
    if backend is not None:
        start(backend, unbuffered=unbuffered)
    try:
        yield
    finally:
        discard()


def is_script(argv: Sequence[str]) -> bool:
    """Whether a command is `PYTHON SCRIPT.py ARGS...`, what a warm interpreter can be handed."""
    return len(argv) >= 2 and argv[1].endswith(".py") and not argv[1].startswith("-")


def remember(backend: str, python: str, command_env: Mapping[str, str], modules: Sequence[str]) -> None:
    """Note what `backend`'s first command started with, for the next run's warm start (best effort: a home
    that cannot be written just means no warm start)."""
    if not _NAME.match(backend) or not modules:
        return
    folder = home() / FOLDER
    record = {"python": python, "env": dict(command_env), "modules": list(modules)}
    try:
        path = folder / f"{backend}.json"
        if path.is_file() and json.loads(path.read_text()) == record:
            return
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{backend}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
    except (OSError, ValueError):
        pass


def _relative_pythonpath(env: Mapping[str, str]) -> bool:
    """A relative PYTHONPATH entry is resolved against the directory the interpreter starts in."""
    value = env.get("PYTHONPATH", "")
    return bool(value) and any(not os.path.isabs(p) for p in value.split(os.pathsep))  # '' is the directory too


def start(backend: str, *, unbuffered: bool) -> None:
    """Start `backend`'s interpreter warming up, as its last run's first command did; nothing when disabled,
    unknown, or anything is off."""
    global _warm
    if not _enabled or _warm is not None or os.environ.get(SWITCH, "1") == "0" or not _NAME.match(backend):
        return
    try:
        record = json.loads((home() / FOLDER / f"{backend}.json").read_text())
        python, modules = record["python"], ",".join(record["modules"])
        env = _early(process_env(record["env"], python, unbuffered=unbuffered))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return
    if not isinstance(python, str) or not os.path.isabs(python) or _relative_pythonpath(env):
        return
    fds: list[int] = []
    try:
        go_read, go_write = os.pipe()
        fds += [go_read, go_write]
        ready_read, ready_write = os.pipe()
        fds += [ready_read, ready_write]
        argv = [python, "-c", BOOTSTRAP, "ptsdk-warm-start", str(go_read), str(ready_write), modules]
        spawned = time.monotonic()
        proc = start_process(argv, "/", env, pass_fds=(go_read, ready_write))
    except (OSError, ValueError, TypeError):  # out of descriptors, a bad record: no warm start
        for fd in fds:
            os.close(fd)
        return
    os.close(go_read)
    os.close(ready_write)
    _warm = _Warm(proc, env, go_write, ready_read, python, spawned)


def take(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> subprocess.Popen[str] | None:
    """The warm interpreter, now running `argv` in `cwd`, when it matches exactly; else None (it is stopped)."""
    global _warm, _handed
    warm = _warm
    if warm is None:
        return None
    try:
        late = [f"{k}={v}" for k, v in env.items() if k.startswith(LATE_PREFIX)]
        fields = [str(Path(cwd).resolve()), str(len(late)), *late, *argv[1:]]
        go = os.fsencode("\0".join(fields))
        if (
            argv[0] != warm.python
            or not is_script(argv)
            or not (cwd / argv[1]).is_file()
            or _early(env) != warm.env
            or len(go) > MAX_COMMAND
            or any("\0" in f for f in fields)
            or warm.exited()
        ):
            discard()
            return None
        now = time.monotonic()
        with os.fdopen(warm.go, "wb") as pipe:
            warm.go = -1  # closed with the pipe, whatever happens
            pipe.write(go)
    except OSError:  # it died meanwhile (BrokenPipeError)
        discard()
        return None
    except BaseException:  # ptsdk interrupted half-way: the warm interpreter is never left running untracked
        discard()
        raise
    _warm = None
    _handed = _Handed(warm.started, now, warm.ready)
    return warm.proc


class _Handed:
    """A hand-over: when the interpreter started and was handed the command (ptsdk's monotonic clock; the warm
    interpreter's is the same clock), and the pipe it writes its import times to."""

    def __init__(self, spawned: float, handed: float, ready: int) -> None:
        self.spawned, self.handed, self.ready = spawned, handed, ready

    def record(self, started: float) -> dict[str, Any]:
        """What the manifest keeps, for an attempt whose clock started at `started`: how long before it the
        interpreter started (``lead_s``: add it to the attempt's wall time for the command's whole life), how long
        its imports took (``imports_s``, null if it never said), whether they were done at the hand-over, and how
        long it had waited for it, imports done (``waited_s``: time in lead_s that it did nothing)."""
        begun = done = None
        try:
            if select.select([self.ready], [], [], 0)[0]:
                begun, done = (float(x) for x in os.read(self.ready, 128).decode().split())
        except (OSError, ValueError):
            pass
        finally:
            try:
                os.close(self.ready)
            except OSError:
                pass
        imports_done = done is not None and done <= self.handed
        return {
            "lead_s": round(max(0.0, started - self.spawned), 3),
            "imports_s": round(done - begun, 3) if done is not None and begun is not None else None,
            "imports_done": imports_done,
            "waited_s": round(self.handed - done, 3) if imports_done and done is not None else 0.0,
        }


def handed_over(started: float) -> dict[str, Any] | None:
    """The last hand-over's record (read once, after its command ended: the manifest's attempt keeps it), for an
    attempt whose clock started at `started` (monotonic)."""
    global _handed
    handed, _handed = _handed, None
    return handed.record(started) if handed is not None else None


def discard() -> None:
    """Stop a warm interpreter nobody took (the job was rejected, the run ended another way)."""
    global _warm
    warm, _warm = _warm, None
    if warm is not None:
        warm.stop()


PR_SET_PDEATHSIG = 1


def parent_death_signal() -> Callable[[], None] | None:
    """Linux: a preexec_fn making the kernel send SIGTERM to the child when ptsdk's thread that started it
    dies (ptsdk starts commands from the thread that runs the whole run). None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, called after it
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # ptsdk died before the prctl: nobody is left to tell us
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec
