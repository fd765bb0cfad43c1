"""Starting a plan's commands in the run directory, with the output teed to the log."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ptsdk.envs import BackendEnv
from ptsdk.plugins.backend import Command


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
    """Run one command; returns its exit code and peak resident memory in MiB (largest process of its tree)."""
    argv = render_argv(cmd, env, str(workdir), inputs)
    proc_env = {**os.environ, "PYTHONUNBUFFERED": "1", **cmd.env}
    if env.python and env.container is None:
        # The environment's own console scripts (torchrun, accelerate) come first, as in an activated venv.
        proc_env["PATH"] = os.pathsep.join([str(Path(env.python).parent), proc_env.get("PATH", "")])
    log.write(f"$ {render_shell(cmd, env, inputs)}\n")
    log.flush()
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        env=proc_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        errors="replace",
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if echo is not None:
                echo.write(line)
                echo.flush()
        # wait4 gives this child's own resource usage: the peak RSS of it or any process it waited for.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode, usage.ru_maxrss / 1024
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
