"""Starting a plan's commands in the run directory, with the output teed to the log, and stopping them.

Each command starts in its own session (its own process group), so the whole tree a framework starts
(a launcher, its workers, their data-loader processes) is signalled as one:

- ptsdk interrupted (Ctrl-C, SIGINT) or terminated (SIGTERM, raised as :class:`Terminated`): the same
  signal goes to the command's process group; after :data:`STOP_GRACE_S` seconds (``PTSDK_STOP_GRACE_S``)
  what is left of the group gets SIGKILL. A second signal meanwhile sends SIGKILL at once.
- ptsdk killed (SIGKILL, the OOM killer, a crash): on Linux the direct child gets SIGTERM from the kernel
  (``PR_SET_PDEATHSIG``; torchrun and the deepspeed launcher pass it on to their workers), and a watchdog
  (a tiny process in a session of its own, holding a pipe from ptsdk) sees the pipe close and signals the
  whole group, SIGTERM then SIGKILL after the grace period. The watchdog is what covers a launcher that
  does not pass signals on, a process that ignores SIGTERM, and systems without PDEATHSIG.
- the command ends by itself: whatever it left running in its process group gets SIGKILL.

Not covered: processes that leave the group themselves (``setsid``: Ray's daemons, say) and a framework
in a container (the signals reach the ``docker``/``apptainer`` client; docker forwards SIGTERM and SIGINT to
the container, but the container outlives a SIGKILLed client).

:func:`this_process` and :func:`process_state` identify ptsdk's own process in a manifest, so a run left
"running" by a ptsdk that died is recognized (a reused pid is not mistaken for the run).
"""

from __future__ import annotations

import os
import platform
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal, TextIO

from ptsdk import warm
from ptsdk.envs import BackendEnv
from ptsdk.plugins.backend import Command
from ptsdk.warm import process_env, start_process

#: Seconds a stopped command's processes get to exit before SIGKILL.
STOP_GRACE_S = 15.0
GRACE_VAR = "PTSDK_STOP_GRACE_S"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in ptsdk's main thread as SIGINT raises KeyboardInterrupt (see :func:`sigterm_raises`);
    a KeyboardInterrupt so that every clean-up written for Ctrl-C runs for it too."""

    signum = signal.SIGTERM
    exit_code = 128 + signal.SIGTERM


def stop_grace() -> float:
    try:
        return max(0.0, float(os.environ.get(GRACE_VAR, STOP_GRACE_S)))
    except ValueError:
        return STOP_GRACE_S


def render_argv(cmd: Command, env: BackendEnv, workdir: str, inputs: Sequence[str] = ()) -> list[str]:
    """The one place a command meets its environment: '{python}' becomes the backend's interpreter,
    and the whole command runs inside the backend's container image when it has one."""
    if env.container is not None:
        return env.container.wrap(cmd.resolved(env.container.python), workdir, cmd.env, inputs)
    return cmd.resolved(env.python or "python")


def render_shell(cmd: Command, env: BackendEnv | None, inputs: Sequence[str] = ()) -> str:
    """The command as one shell line run from the run directory (command.sh, the manifest)."""
    if env is None:
        return cmd.shell()
    if env.container is None:
        return cmd.shell(env.python or "python")
    argv = render_argv(cmd, env, "__WORKDIR__", inputs)
    return " ".join(shlex.quote(a) for a in argv).replace("__WORKDIR__", '"$PWD"')


def run_command(
    cmd: Command, env: BackendEnv, workdir: Path, log: TextIO, *, echo: TextIO | None, inputs: Sequence[str] = ()
) -> tuple[int, float]:
    """Run one command; returns its exit code and peak resident memory in MiB (largest process of its tree).

    KeyboardInterrupt (and :class:`Terminated`) while it runs: its whole process group is stopped
    (see the module's docstring), then the exception goes on."""
    argv = render_argv(cmd, env, str(workdir), inputs)
    # Unbuffered output only when someone watches it live (-v): flushing every write costs the framework time,
    # and the live view reads the metrics log, which the framework flushes itself.
    local = env.python if env.container is None else None
    proc_env = process_env(cmd.env, local, unbuffered=echo is not None)
    log.write(f"$ {render_shell(cmd, env, inputs)}\n")
    log.flush()
    # The interpreter `ptsdk run` started warm (ptsdk.warm), when it was started for exactly this command.
    proc = warm.take(argv, proc_env, workdir) if local else None
    warm.discard()  # not taken (a container's command, say): it must not idle through the run
    if proc is None:
        proc = start_process(argv, workdir, proc_env)
    assert proc.stdout is not None
    group = ProcessGroup(proc)
    watchdog = Watchdog(proc.pid, stop_grace())
    pump = threading.Thread(target=_pump, args=(proc.stdout, log, echo), name="ptsdk-log", daemon=True)
    pump.start()
    try:
        try:
            code, rss = group.wait()
        except BaseException as exc:
            group.stop(getattr(exc, "signum", signal.SIGINT), stop_grace())
            raise
    finally:
        watchdog.close()
        pump.join(timeout=10)  # EOF once the group is gone (a process outside it may still hold the pipe)
        if not pump.is_alive():
            proc.stdout.close()
    return code, rss


def _pump(stream: IO[str], log: TextIO, echo: TextIO | None) -> None:
    try:
        for line in stream:
            log.write(line)
            log.flush()
            if echo is not None:
                echo.write(line)
                echo.flush()
    except (OSError, ValueError):  # the log was closed under a straggler's output
        pass


class ProcessGroup:
    """A command's process and the process group it leads (same id: it was started with a new session)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.pgid = proc.pid

    def exited(self) -> bool:
        """Whether the leader has exited; it is not reaped, so its pid (the group's id) cannot be reused yet."""
        if not hasattr(os, "waitid"):
            return self.proc.poll() is not None
        if self.proc.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.pgid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def wait(self) -> tuple[int, float]:
        """Wait for the leader, kill what it left in its group, reap it: its exit code and peak RSS (MiB)."""
        if hasattr(os, "waitid"):
            os.waitid(os.P_PID, self.pgid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: the group id stays ours
            self.signal(signal.SIGKILL)  # stragglers of a finished command
        return self.reap()

    def reap(self) -> tuple[int, float]:
        # wait4 gives this child's own resource usage: the peak RSS of it or any process it waited for.
        if self.proc.returncode is not None:
            return self.proc.returncode, 0.0
        _, status, usage = os.wait4(self.pgid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return self.proc.returncode, usage.ru_maxrss / 1024

    def signal(self, signum: int) -> None:
        try:
            os.killpg(self.pgid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, signum: int, grace: float) -> None:
        """`signum` to the whole group, up to `grace` seconds for the leader to exit, then SIGKILL to what is
        left; a second SIGINT/SIGTERM meanwhile cuts the wait short."""
        again: list[int] = []
        with _signals_recorded(again):
            self.signal(signum)
            deadline = time.monotonic() + grace
            while not again and not self.exited() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.signal(signal.SIGKILL)
            try:
                self.reap()
            except ChildProcessError:
                pass


@contextmanager
def _signals_recorded(received: list[int]) -> Iterator[None]:
    """SIGINT and SIGTERM only noted in `received` (main thread; elsewhere signals are not delivered anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Inside the block SIGTERM raises :class:`Terminated` in the main thread, as SIGINT raises
    KeyboardInterrupt (an ignored SIGTERM stays ignored); the previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """SIGINT/SIGTERM only noted while the block runs (recording a run's outcome must not be cut short)."""
    received: list[int] = []
    with _signals_recorded(received):
        yield received


# --- the framework's processes end with ptsdk --------------------------------------------------

WATCHDOG = r"""# ptsdk watchdog: stops a command's process group when ptsdk dies
import os, signal, sys, time
pgid, grace = int(sys.argv[2]), float(sys.argv[3])
if sys.stdin.buffer.read().endswith(b"done"):
    sys.exit(0)

def alive():
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True

try:
    os.killpg(pgid, signal.SIGTERM)
except (ProcessLookupError, PermissionError):
    sys.exit(0)
deadline = time.monotonic() + grace
while alive() and time.monotonic() < deadline:
    time.sleep(0.1)
try:
    os.killpg(pgid, signal.SIGKILL)
except (ProcessLookupError, PermissionError):
    pass
"""


class Watchdog:
    """A process that stops a command's process group when ptsdk dies without doing it (SIGKILL, a crash):
    it waits for the end of a pipe only ptsdk holds; "done" before the end means ptsdk took care of it."""

    def __init__(self, pgid: int, grace: float) -> None:
        self.proc: subprocess.Popen[bytes] | None
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", WATCHDOG, "ptsdk-watchdog", str(pgid), str(grace)],
                stdin=subprocess.PIPE,
                cwd="/",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # outlives a signal sent to ptsdk's own process group
            )
        except OSError:
            self.proc = None

    def close(self) -> None:
        if self.proc is None or self.proc.stdin is None:
            return
        try:
            self.proc.stdin.write(b"done")
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- whose run is it: ptsdk's own process, recorded in the manifest ------------------------------


def this_process() -> dict[str, Any]:
    """ptsdk's process as the manifest records it: pid, host, boot, pid namespace and start time (Linux),
    enough to tell later whether that very process is still alive."""
    pid = os.getpid()
    return {
        "pid": pid,
        "hostname": platform.node(),
        "boot_id": _boot_id(),
        "pid_namespace": _pid_namespace(),
        "start_ticks": _start_ticks(pid),
    }


def process_state(info: dict[str, Any]) -> Literal["alive", "gone", "unknown"]:
    """Whether the process :func:`this_process` described is still running: "unknown" from another host
    (or pid namespace), "gone" when its pid is free, a zombie, or another process's (started later)."""
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0 or info.get("hostname") != platform.node():
        return "unknown"
    if info.get("pid_namespace") != _pid_namespace():
        return "unknown"
    boot = _boot_id()
    if info.get("boot_id") and boot and info["boot_id"] != boot:
        return "gone"  # the machine restarted since
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # it exists, as another user's process
    stat = _stat(pid)
    if stat is not None:
        if stat[0] in ("Z", "X"):
            return "gone"
        ticks = info.get("start_ticks")
        if isinstance(ticks, int) and stat[1] != ticks:
            return "gone"
    return "alive"


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _boot_id() -> str | None:
    return _read("/proc/sys/kernel/random/boot_id")


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) from /proc/PID/stat; None without /proc."""
    text = _read(f"/proc/{pid}/stat")
    if not text or ")" not in text:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3, starttime field 22
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _start_ticks(pid: int) -> int | None:
    stat = _stat(pid)
    return stat[1] if stat else None
