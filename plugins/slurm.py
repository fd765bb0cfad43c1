"""The ``slurm`` launcher: a run submitted to Slurm with ``sbatch``, followed until it ends, cancelled with it.

``ptsdk run JOB -b B --launcher slurm [--partition P] [--time T] [--account A] [--launcher-option KEY=VALUE]``:

- Before anything is written, ``sbatch --test-only`` asks the cluster whether it would take the job with these
  options (an unknown partition or account, a time limit over the partition's, is refused here, exit 2).
- The run directory gets ``slurm.sbatch``: one task on one node, working directory the run directory, output
  appended to ``logs/backend.log``, running the run's own ``command.sh`` (the backend's interpreter, the
  framework's own launcher inside it). The run directory must be on a filesystem the node sees.
- ``sbatch --parsable`` submits it; the Slurm job id goes into the manifest (``cluster.job_id``) at once.
- ptsdk follows the job (``scontrol show job``) and the log (live with ``-v``), and records how it ended:
  COMPLETED is the command's exit code, FAILED/TIMEOUT/OUT_OF_MEMORY/NODE_FAIL failed (with the state), CANCELLED
  by someone else ``cancelled``. Ctrl-C or SIGTERM cancels the Slurm job (``scancel``) and the run is recorded
  ``interrupted``, so ``ptsdk run --resume`` continues it, on Slurm again.

Options: ``partition``, ``time``, ``account``, ``qos``, ``cpus_per_task``, ``mem``, ``gres`` (each passed as
``#SBATCH --<name>``). Jobs of several nodes are refused for now (distributed.nodes > 1): the framework launchers'
rendezvous would have to come from the allocation's node list.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptsdk.errors import PtsdkError
from ptsdk.plugins.hookspecs import hookimpl
from ptsdk.plugins.launcher import Launch, Outcome, RunLauncher

if TYPE_CHECKING:
    from collections.abc import Callable

    from ptsdk.plugins.backend import Plan
    from ptsdk.spec import Job

SCRIPT = "slurm.sbatch"
#: Seconds between two looks at the job's state.
POLL_S = 1.0
#: Seconds Slurm may not answer for a job before ptsdk stops following it (it forgets finished jobs after
#: MinJobAge, 300 s by default; a controller restarting does not answer for a while).
UNSEEN_S = 60.0
#: Job states after which the job is over (squeue/scontrol's long names).
FINAL = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
    "SPECIAL_EXIT",
}
_VALUE = re.compile(r"^[A-Za-z0-9_.:,=/@+-]+$")


def _slurm_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PtsdkError(
            f"--launcher slurm: `{name}` is not on PATH; run ptsdk on a machine that can submit to Slurm "
            "(a login node), or without --launcher"
        )
    return path


def job_state(job_id: str) -> dict[str, str]:
    """The job's fields from ``scontrol show job -o`` (JobState, ExitCode, Reason, ...); {} when Slurm no longer
    knows the job."""
    proc = subprocess.run(
        [_slurm_tool("scontrol"), "show", "job", "-o", job_id], capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        return {}
    return dict(re.findall(r"(\w+)=(\S*)", proc.stdout))


class SlurmLauncher(RunLauncher):
    name = "slurm"
    description = "a Slurm cluster (sbatch; followed with scontrol, cancelled with scancel)"
    options = {
        "partition": "the partition (#SBATCH --partition)",
        "time": "the time limit, e.g. 30 or 2:00:00 (#SBATCH --time)",
        "account": "the account to charge (#SBATCH --account)",
        "qos": "the quality of service (#SBATCH --qos)",
        "cpus_per_task": "CPUs for the run (#SBATCH --cpus-per-task)",
        "mem": "memory for the run, e.g. 16G (#SBATCH --mem)",
        "gres": "generic resources, e.g. gpu:8 (#SBATCH --gres)",
    }

    def sbatch_options(self) -> list[str]:
        return [f"--{k.replace('_', '-')}={v}" for k, v in sorted(self.given.items())]

    def problems(self, job: Job, plan: Plan) -> list[str]:
        out = [
            f"--launcher-option {k}: {v!r} is not a Slurm value (letters, digits and .:,=/@+-_ only)"
            for k, v in sorted(self.given.items())
            if not _VALUE.match(v)
        ]
        if job.distributed.nodes > 1:
            out.append(
                f"distributed.nodes: the slurm launcher runs one node for now (the job has {job.distributed.nodes}); "
                "submit a multi-node job with your own sbatch script around `ptsdk translate --out`"
            )
        if out:
            return out
        # Ask the cluster itself whether it would take the job as it will be submitted.
        proc = subprocess.run(
            [_slurm_tool("sbatch"), "--test-only", "--nodes=1", "--ntasks=1", *self.sbatch_options(), "--wrap=true"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode != 0:
            said = " ".join(proc.stderr.split()) or f"exit code {proc.returncode}"
            return [f"--launcher slurm: the cluster would not take this job: {said}"]
        return []

    def script(self, launch: Launch) -> str:
        run = launch.run_dir.resolve()
        lines = [
            "#!/bin/bash",
            f"# Written by ptsdk: the run in {run}, submitted with `sbatch {SCRIPT}`.",
            f"#SBATCH --job-name={shlex.quote(('ptsdk-' + run.name)[:120])}",
            f"#SBATCH --chdir={shlex.quote(str(run))}",  # sbatch reads #SBATCH lines with shell quoting
            f"#SBATCH --output={shlex.quote(str(run / 'logs' / 'backend.log'))}",
            "#SBATCH --open-mode=append",
            "#SBATCH --nodes=1",
            "#SBATCH --ntasks=1",
            *(f"#SBATCH {o}" for o in self.sbatch_options()),
            "set -euo pipefail",
            'echo "ptsdk: Slurm job $SLURM_JOB_ID on $(hostname)"',
            f"exec bash {shlex.quote(launch.command_script.name)}",
        ]
        return "\n".join(lines) + "\n"

    def execute(self, launch: Launch) -> Outcome:
        script = launch.run_dir / SCRIPT
        script.write_text(self.script(launch))
        launch.log.flush()
        proc = subprocess.run(
            [_slurm_tool("sbatch"), "--parsable", SCRIPT],
            cwd=launch.run_dir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            said = " ".join(proc.stderr.split()) or f"exit code {proc.returncode}"
            launch.log.write(f"ptsdk: sbatch refused the job: {said}\n")
            launch.log.flush()
            return Outcome(1, record={"script": SCRIPT, "submit_error": said})
        job_id = proc.stdout.strip().split(";")[0]
        launch.note({"script": SCRIPT, "job_id": job_id})
        try:
            state = self._follow(job_id, launch)
        except KeyboardInterrupt:
            self._cancel(job_id)
            raise
        return self._outcome(job_id, state)

    def _follow(self, job_id: str, launch: Launch) -> dict[str, str]:
        """Wait for the job to end, echoing its log (-v) as it grows; its last known fields."""
        log_path = launch.run_dir / "logs" / "backend.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        fields: dict[str, str] = {}
        unseen = 0  # looks in a row that Slurm did not answer for the job (a busy controller, or it forgot the job)
        while True:
            now = job_state(job_id)
            if now:
                fields, unseen = now, 0
            else:
                unseen += 1
            if launch.echo is not None and log_path.exists():
                offset = _echo_new(log_path, offset, launch.echo.write)
            if now and fields.get("JobState", "") in FINAL:
                return fields
            if unseen * POLL_S >= UNSEEN_S:
                return {**fields, "JobState": "UNKNOWN", "Reason": f"Slurm did not know the job for {UNSEEN_S:.0f}s"}
            time.sleep(POLL_S)

    def _cancel(self, job_id: str) -> None:
        """scancel, then up to the stop grace for Slurm to call the job over."""
        from ptsdk.launch import stop_grace

        subprocess.run([_slurm_tool("scancel"), job_id], capture_output=True, timeout=60)
        deadline = time.monotonic() + stop_grace()
        while time.monotonic() < deadline:
            if job_state(job_id).get("JobState", "CANCELLED") in FINAL:
                return
            time.sleep(0.2)

    def _outcome(self, job_id: str, fields: dict[str, str]) -> Outcome:
        state = fields.get("JobState", "UNKNOWN")
        code_text, _, signal_text = fields.get("ExitCode", "1:0").partition(":")
        code = int(code_text) if code_text.isdigit() else 1
        record = {"script": SCRIPT, "job_id": job_id, "state": state, "exit_code": fields.get("ExitCode")}
        if fields.get("Reason") not in (None, "None"):
            record["reason"] = fields["Reason"]
        if state == "COMPLETED":
            return Outcome(code, record=record)
        if state == "CANCELLED":
            return Outcome(code or 1, status="cancelled", record=record)
        if signal_text.isdigit() and int(signal_text):
            code = code or 128 + int(signal_text)
        return Outcome(code or 1, record=record)


def _echo_new(path: Path, offset: int, write: Callable[[str], Any]) -> int:
    """Write what `path` gained since `offset`; the new offset."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return offset
    if data:
        write(data.decode("utf-8", "replace"))
    return offset + len(data)


@hookimpl
def ptsdk_register_launchers(register: Callable[[type[RunLauncher]], None]) -> None:
    register(SlurmLauncher)


__all__ = ["SCRIPT", "SlurmLauncher", "job_state"]
