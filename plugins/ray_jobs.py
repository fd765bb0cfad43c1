"""The ``ray`` launcher: a run submitted to a Ray cluster through Ray's job submission API, followed, stopped with it.

``ptsdk run JOB -b B --launcher ray --launcher-option address=http://HEAD:8265`` (or ``RAY_ADDRESS``):

- Before anything is written, ptsdk connects to the cluster's job API (Ray's own ``JobSubmissionClient``, from
  ``pip install 'ptsdk[ray]'``); an unreachable address is exit 2.
- The entrypoint is the run directory's ``command.sh`` (the backend's interpreter, the framework's own launcher
  inside it), so the run directory must be on a filesystem the cluster's nodes see; the submission id
  (``ptsdk-<run>-<random>``) goes into the manifest (``cluster.job_id``) at once. Ray-native frameworks (vERL,
  OpenRLHF RL) started as a Ray job join that cluster (Ray sets ``RAY_ADDRESS`` for its jobs).
- ptsdk follows the job's status and appends its driver log to ``logs/backend.log`` (live with ``-v``).
  SUCCEEDED is exit 0, FAILED the driver's exit code, STOPPED by someone else ``cancelled``. Ctrl-C or SIGTERM
  stops the job (``stop_job``); the run is ``interrupted`` and ``--resume`` submits it again.
"""

from __future__ import annotations

import os
import secrets
import shlex
import time
from typing import TYPE_CHECKING, Any

from ptsdk.errors import PtsdkError
from ptsdk.plugins.hookspecs import hookimpl
from ptsdk.plugins.launcher import Launch, Outcome, RunLauncher

if TYPE_CHECKING:
    from collections.abc import Callable

    from ptsdk.plugins.backend import Plan
    from ptsdk.spec import Job

#: Seconds between two looks at the job.
POLL_S = 1.0
FINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def _status(status: Any) -> str:
    """A Ray JobStatus (an enum) as its name, e.g. ``RUNNING``."""
    return str(getattr(status, "value", status))


def job_client(address: str) -> Any:
    """Ray's JobSubmissionClient for `address` (it checks the cluster answers); PtsdkError when it cannot."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise PtsdkError(
            "--launcher ray: Ray's job client is not installed where ptsdk runs; pip install 'ptsdk[ray]'"
        ) from None
    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # ConnectionError, or Ray's own error for a dashboard that is not there
        said = " ".join(str(exc).split())[:300]
        raise PtsdkError(f"--launcher-option address: no Ray job API answers at {address}: {said}") from None


class RayLauncher(RunLauncher):
    name = "ray"
    description = "a Ray cluster (its job submission API)"
    options = {"address": "the cluster's dashboard, e.g. http://127.0.0.1:8265 (default: RAY_ADDRESS)"}

    @property
    def address(self) -> str | None:
        return self.given.get("address") or os.environ.get("RAY_ADDRESS")

    def record(self) -> dict[str, Any]:
        return {**super().record(), "address": self.address}

    def problems(self, job: Job, plan: Plan) -> list[str]:
        if not self.address:
            return ["--launcher-option address: the Ray cluster's dashboard address (or set RAY_ADDRESS)"]
        if job.distributed.nodes > 1 and plan.launcher.kind != "ray":
            return [
                f"distributed.nodes: the ray launcher starts the run's command once (the job has "
                f"{job.distributed.nodes} nodes); Ray-native frameworks (vERL, OpenRLHF) spread over the cluster"
            ]
        try:
            job_client(self.address)
        except PtsdkError as exc:
            return [str(exc)]
        return []

    def execute(self, launch: Launch) -> Outcome:
        assert self.address is not None  # problems() said so
        client = job_client(self.address)
        submission = f"ptsdk-{launch.run_dir.name}-{secrets.token_hex(3)}"[-120:]
        script = launch.command_script.resolve()
        client.submit_job(
            entrypoint=f"bash {shlex.quote(str(script))}",
            submission_id=submission,
            metadata={"ptsdk_run_dir": str(launch.run_dir.resolve())},
        )
        launch.note({"job_id": submission})
        try:
            info = self._follow(client, submission, launch)
        except KeyboardInterrupt:
            self._stop(client, submission)
            raise
        status = _status(info.status)
        code = getattr(info, "driver_exit_code", None)
        record = {"job_id": submission, "state": status, "driver_exit_code": code, "message": info.message}
        if status == "SUCCEEDED":
            return Outcome(0, record=record)
        if status == "STOPPED":
            return Outcome(1, status="cancelled", record=record)
        return Outcome(code if isinstance(code, int) and code > 0 else 1, record=record)

    def _follow(self, client: Any, submission: str, launch: Launch) -> Any:
        """Wait for the job to end, appending its driver log to the run's log as it grows; its final info."""
        written = 0
        while True:
            info = client.get_job_info(submission)
            written = _append_logs(client, submission, written, launch.log.write, launch.echo)
            launch.log.flush()
            if _status(info.status) in FINAL:
                written = _append_logs(client, submission, written, launch.log.write, launch.echo)
                return info
            time.sleep(POLL_S)

    def _stop(self, client: Any, submission: str) -> None:
        from ptsdk.launch import stop_grace

        try:
            client.stop_job(submission)
        except Exception:  # already over
            return
        deadline = time.monotonic() + stop_grace()
        while time.monotonic() < deadline:
            if _status(client.get_job_status(submission)) in FINAL:
                return
            time.sleep(0.2)


def _append_logs(client: Any, submission: str, written: int, write: Callable[[str], Any], echo: Any) -> int:
    """Write what the job's driver log gained since `written` characters; the new count."""
    try:
        text = client.get_job_logs(submission)
    except Exception:  # not there yet
        return written
    new = text[written:]
    if new:
        write(new)
        if echo is not None:
            echo.write(new)
            echo.flush()
    return len(text)


@hookimpl
def ptsdk_register_launchers(register: Callable[[type[RunLauncher]], None]) -> None:
    register(RayLauncher)
