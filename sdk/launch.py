"""Starting a plan's commands in the run directory, with the output teed to the log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TextIO

from ptsdk.envs import BackendEnv
from ptsdk.plugins.backend import Command


def resolve_argv(cmd: Command, env: BackendEnv, workdir: Path, inputs: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    if env.container is not None:
        argv = [env.container.python if a == "{python}" else a for a in cmd.argv]
        return env.container.wrap(argv, str(workdir), cmd.env, inputs)
    python = env.python or sys.executable
    return [python if a == "{python}" else a for a in cmd.argv]


def run_command(cmd: Command, env: BackendEnv, workdir: Path, log: TextIO, *, echo: TextIO | None,
                inputs: list[str] = ()) -> tuple[int, float]:  # type: ignore[assignment]  # fmt: skip
    """Run one command; returns its exit code and peak resident memory in MiB (largest process of its tree)."""
    argv = resolve_argv(cmd, env, workdir, inputs)
    proc_env = {**os.environ, "PYTHONUNBUFFERED": "1", **cmd.env}
    if env.python and env.container is None:
        # The environment's own console scripts (torchrun, accelerate) come first, as in an activated venv.
        proc_env["PATH"] = os.pathsep.join([str(Path(env.python).parent), proc_env.get("PATH", "")])
    log.write(f"$ {cmd.shell(env.python or 'python')}\n")
    log.flush()
    proc = subprocess.Popen(argv, cwd=workdir, env=proc_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, errors="replace")  # fmt: skip
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
