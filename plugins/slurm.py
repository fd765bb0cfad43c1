"""The ``slurm`` launcher: a run submitted to Slurm with ``sbatch``, followed until it ends, cancelled with it.

``ptsdk run JOB -b B --launcher slurm [--partition P] [--time T] [--account A] [--launcher-option KEY=VALUE]``:

- Before anything is written, ``sbatch --test-only`` asks the cluster whether it would take the job with these
  options (an unknown partition or account, a time limit over the partition's, is refused here, exit 2).
- The run directory gets ``slurm.sbatch``, working directory the run directory, output appended to
  ``logs/backend.log``. On one node it runs the run's own ``command.sh`` (the backend's interpreter, the
  framework's own launcher inside it). The run directory must be on a filesystem the nodes see.
- On several nodes (``distributed.nodes``; torchrun backends), one task per node: the plan's preparation
  commands run once, on the allocation's first node; ``srun`` then starts ``slurm_node.sh`` (the launch,
  torchrun with its c10d rendezvous) on every node, the rendezvous host being the first node of
  ``$SLURM_JOB_NODELIST`` (its NodeAddr) unless the job names its own ``distributed.master_addr``; then the
  finalize commands, once. DeepSpeed's launcher (ssh to a hostfile) and Ray-based backends are refused there.
- ``sbatch --parsable`` submits it; the Slurm job id goes into the manifest (``cluster.job_id``) at once.
- ptsdk follows the job (``scontrol show job``) and the log (live with ``-v``), and records how it ended:
  COMPLETED is the command's exit code, FAILED/TIMEOUT/OUT_OF_MEMORY/NODE_FAIL failed (with the state), CANCELLED
  by someone else ``cancelled``. Ctrl-C or SIGTERM cancels the Slurm job (``scancel``) and the run is recorded
  ``interrupted``, so ``ptsdk run --resume`` continues it, on Slurm again.

Options: ``partition``, ``time``, ``account``, ``qos``, ``cpus_per_task``, ``mem``, ``gres`` (each passed as
``#SBATCH --<name>``).
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
#: What every node runs of a multi-node job (srun starts it once per node).
NODE_SCRIPT = "slurm_node.sh"
#: distributed.master_addr of a multi-node job whose rendezvous host Slurm decides (the allocation's first node);
#: the node script reads it from $PTSDK_RDZV_HOST, which the batch script sets.
FIRST_NODE = "slurm-first-node"
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

    def adapt_job(self, job: Job) -> Job:
        """A multi-node job without a rendezvous host gets Slurm's: the allocation's first node."""
        d = job.distributed
        if d.nodes > 1 and not d.master_addr:
            return job.model_copy(update={"distributed": d.model_copy(update={"master_addr": FIRST_NODE})})
        return job

    def problems(self, job: Job, plan: Plan) -> list[str]:
        out = [
            f"--launcher-option {k}: {v!r} is not a Slurm value (letters, digits and .:,=/@+-_ only)"
            for k, v in sorted(self.given.items())
            if not _VALUE.match(v)
        ]
        nodes = job.distributed.nodes
        if nodes > 1 and plan.launcher.kind != "torchrun":
            out.append(_multi_node_problem(plan.launcher.kind, plan.backend, nodes))
        if out:
            return out
        # Ask the cluster itself whether it would take the job as it will be submitted.
        proc = subprocess.run(
            [
                _slurm_tool("sbatch"),
                "--test-only",
                f"--nodes={nodes}",
                "--ntasks-per-node=1",
                *self.sbatch_options(),
                "--wrap=true",
            ],
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
        nodes = launch.plan.launcher.nnodes
        lines = [
            "#!/bin/bash",
            f"# Written by ptsdk: the run in {run}, submitted with `sbatch {SCRIPT}`.",
            f"#SBATCH --job-name={shlex.quote(('ptsdk-' + run.name)[:120])}",
            f"#SBATCH --chdir={shlex.quote(str(run))}",  # sbatch reads #SBATCH lines with shell quoting
            f"#SBATCH --output={shlex.quote(str(run / 'logs' / 'backend.log'))}",
            "#SBATCH --open-mode=append",
            f"#SBATCH --nodes={nodes}",
            "#SBATCH --ntasks-per-node=1",
            *(f"#SBATCH {o}" for o in self.sbatch_options()),
            "set -euo pipefail",
        ]
        if nodes == 1:
            lines += [
                'echo "ptsdk: Slurm job $SLURM_JOB_ID on $(hostname)"',
                f"exec bash {shlex.quote(launch.command_script.name)}",
            ]
            return "\n".join(lines) + "\n"
        from ptsdk.launch import render_shell

        plan = launch.plan
        lines += [
            'echo "ptsdk: Slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST ($SLURM_JOB_NUM_NODES nodes)"',
            "# The preparation, once, on this node (the allocation's first).",
            *(render_shell(c, launch.env, plan.inputs) for c in plan.prepare),
        ]
        if plan.launcher.master_addr == FIRST_NODE:
            lines += [
                "# torchrun's c10d rendezvous at the allocation's first node (its address as Slurm knows it).",
                'first=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
                """PTSDK_RDZV_HOST=$(scontrol show node -o "$first" | sed -n 's/.* NodeAddr=\\([^ ]*\\).*/\\1/p')""",
                'export PTSDK_RDZV_HOST="${PTSDK_RDZV_HOST:-$first}"',
                'echo "ptsdk: rendezvous at $PTSDK_RDZV_HOST (node $first)"',
            ]
        lines += [
            "# The launch: one task per node, each starting torchrun's processes of that node.",
            f"srun --nodes={nodes} --ntasks-per-node=1 --kill-on-bad-exit=1 bash {NODE_SCRIPT}",
            "# After the launch, once.",
            *(render_shell(c, launch.env, plan.inputs) for c in plan.finalize),
        ]
        return "\n".join(lines) + "\n"

    def node_script(self, launch: Launch) -> str:
        """The launch as every node runs it, the rendezvous host read from $PTSDK_RDZV_HOST when Slurm picks it."""
        from ptsdk.launch import render_shell

        plan = launch.plan
        line = render_shell(plan.launch, launch.env, plan.inputs)
        if plan.launcher.master_addr == FIRST_NODE:
            line = line.replace(f"--rdzv_endpoint={FIRST_NODE}:", '--rdzv_endpoint="$PTSDK_RDZV_HOST":')
            if FIRST_NODE in line:
                raise PtsdkError(
                    f"--launcher slurm: the launch names the rendezvous host where ptsdk cannot set it: {line}"
                )
        return (
            "\n".join(
                [
                    "#!/usr/bin/env bash",
                    f"# Written by ptsdk: the launch, started by srun on each node of the Slurm job ({SCRIPT}).",
                    "set -euo pipefail",
                    'cd "$(dirname "$0")"',
                    'echo "ptsdk: node $SLURMD_NODENAME (task $SLURM_PROCID of $SLURM_NTASKS)"',
                    line,
                ]
            )
            + "\n"
        )

    def execute(self, launch: Launch) -> Outcome:
        script = launch.run_dir / SCRIPT
        if launch.plan.launcher.nnodes > 1:
            (launch.run_dir / NODE_SCRIPT).write_text(self.node_script(launch))
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
        if fields.get("NodeList") not in (None, "", "(null)"):
            record["nodes"] = fields["NodeList"]  # where it ran, in Slurm's notation (node[1-2])
        if state == "COMPLETED":
            return Outcome(code, record=record)
        if state == "CANCELLED":
            return Outcome(code or 1, status="cancelled", record=record)
        if signal_text.isdigit() and int(signal_text):
            code = code or 128 + int(signal_text)
        return Outcome(code or 1, record=record)


def _multi_node_problem(kind: str, backend: str, nodes: int) -> str:
    if kind == "deepspeed":
        return (
            f"distributed.nodes: {backend} starts its {nodes} nodes with DeepSpeed's launcher, which reaches them by "
            "ssh from a hostfile, not through Slurm's tasks; run it on one node, or choose a torchrun backend (trl)"
        )
    return (
        f"distributed.nodes: {backend} runs this job's {nodes} nodes as one Ray cluster, which its driver finds "
        f"({kind} launcher), not as one task per node; start Ray on the Slurm allocation and run with --launcher "
        "ray (or set distributed.ray_address), or run it on one node"
    )


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


__all__ = ["FIRST_NODE", "NODE_SCRIPT", "SCRIPT", "SlurmLauncher", "job_state"]
