"""Contract test kit for backend authors.

Subclass :class:`BackendContract` in your own test suite::

    from ptsdk.plugins.testing import BackendContract

    class TestMyBackend(BackendContract):
        backend = MyBackend
        jobs = ["tests/jobs/sft.yaml", "tests/jobs/grpo.yaml"]   # jobs to try, runnable or not

or call :func:`contract_problems` directly. Every check runs without the framework: the
declaration, the one feasibility verdict (a job the backend cannot run must be refused with
`field: reason` lines, a job it can run must translate), and the Plan (deterministic, JSON, a
launcher that renders, native files and arguments that make sense). Training for real is your
backend's own tests' job (and what earns ``trained``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar, get_args

from ptsdk.errors import PtsdkError
from ptsdk.matrix.capability import KINDS, Capability, Verified
from ptsdk.matrix.check import feasibility
from ptsdk.plugins.backend import Backend, LauncherKind, Plan

#: Backend.schema_source: a repository and the commit its schema was read from.
SCHEMA_SOURCE = re.compile(r"github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@[0-9a-f]{7,40}")


def declaration_problems(backend: type[Backend]) -> list[str]:
    out: list[str] = []
    name = getattr(backend, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        out.append("`name` must be an identifier")
    if not getattr(backend, "framework", None):
        out.append("`framework` must name the distribution whose version is reported")
    seen: set[tuple[str, str]] = set()
    for cap in backend.capabilities:
        if not isinstance(cap, Capability):
            out.append(f"capability {cap!r} is not a ptsdk.matrix.Capability")
            continue
        if cap.key in seen:
            out.append(f"capability {cap.kind}:{cap.name} is declared twice")
        seen.add(cap.key)
        if cap.kind not in KINDS:
            out.append(f"capability {cap.kind}:{cap.name} has an unknown kind")
    methods = {n for k, n in seen if k == "method"}
    for k, n in seen:
        if k == "loss" and n.split(":")[0] not in methods:
            out.append(f"loss {n} is declared for a method the backend does not declare")
    source = getattr(backend, "schema_source", None)
    if source is not None and not (isinstance(source, str) and SCHEMA_SOURCE.fullmatch(source)):
        out.append(f"schema_source {source!r} must be github.com/OWNER/REPO@COMMIT (a 7-40 digit hex commit)")
    if (
        backend.translates
        and backend.capabilities
        and all(c.verified is Verified.declared for c in backend.capabilities)
        and source is None
    ):
        out.append(
            "a backend that translates should verify some capability (trained or validated), or, when its "
            "framework cannot be installed, name the pinned source its schema was read from (schema_source)"
        )
    if source is not None and any(c.verified is not Verified.declared for c in backend.capabilities):
        out.append("a backend checked against a schema read from source (schema_source) can only declare capabilities")
    if backend.check_script is not None and not Path(backend.check_script).is_file():
        out.append(f"check_script {backend.check_script} does not exist")
    return out


def plan_problems(backend: type[Backend], first: Plan, second: Plan) -> list[str]:
    """What is wrong with a plan (and a second translation of the same job)."""
    from ptsdk.pipeline import command_script

    out: list[str] = []
    if not isinstance(first, Plan):
        return [f"translate returned {type(first).__name__}, not a Plan"]
    if first.to_dict() != second.to_dict():
        out.append("translate is not deterministic")
    if first.backend != backend.name:
        out.append(f"plan.backend is {first.backend!r}")
    if not first.entrypoint or not all(isinstance(a, str) and a for a in first.entrypoint):
        out.append(
            f"plan.entrypoint must be a non-empty list of strings (a script or '-m', module), got {first.entrypoint!r}"
        )
    if not all(isinstance(a, str) for a in first.args):
        out.append("plan.args must be strings (a config path, Hydra overrides or flags)")
    if first.launcher.kind not in get_args(LauncherKind):
        out.append(f"plan.launcher.kind {first.launcher.kind!r} is not one of {get_args(LauncherKind)}")
    if first.native_config is not None and first.native_config not in {f.path for f in first.files}:
        out.append(f"plan.native_config {first.native_config!r} is not one of the plan's files")
    if first.native_config is None and not first.args:
        out.append("the plan has neither a native config file nor native arguments")
    if first.job is None:
        out.append("plan.job is not set: native checks and resume need the job the plan was made from")
    try:
        json.dumps(first.to_dict())
    except TypeError as exc:
        out.append(f"the plan is not JSON-serializable ({exc})")
    sources = first.effective.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        out.append("plan.effective['sources'] must map settings to explanations (strings)")
    try:
        script = command_script(first)
    except Exception as exc:  # a plan the core cannot render is broken whatever the reason
        out.append(f"command.sh cannot be rendered: {exc.__class__.__name__}: {exc}")
    else:
        if not all(a in script for a in first.entrypoint):
            out.append("command.sh does not start the entry point")
    return out


def contract_problems(backend: type[Backend], jobs: Iterable[str | Path] = ()) -> list[str]:
    """Everything wrong with a backend class; empty when it keeps the contract."""
    from ptsdk.spec import load_job

    out = declaration_problems(backend)
    for path in jobs:
        job = load_job(path, check_files=False)
        verdict = feasibility(job, {backend.name: backend})[backend.name]
        if not verdict.ok:
            bad = [r for r in verdict.reasons() if not isinstance(r, str) or ": " not in r]
            if bad:
                out.append(f"{path}: refusals must be `field: reason` lines, got {bad!r}")
            continue
        if not backend.translates:
            try:
                backend().translate(job)
                out.append(f"{path}: a backend that does not translate returned a plan")
            except PtsdkError:
                pass
            continue
        try:
            first, second = backend().translate(job), backend().translate(job)
        except PtsdkError as exc:
            out.append(
                f"{path}: feasibility accepts the job but translate refuses it ({exc.message}); "
                "put the reason in static_problems so every command agrees"
            )
            continue
        out += [f"{path}: {p}" for p in plan_problems(backend, first, second)]
    return out


class BackendContract:
    backend: ClassVar[type[Backend]]
    jobs: ClassVar[list[str | Path]] = []

    def test_contract(self) -> None:
        problems = contract_problems(self.backend, self.jobs)
        assert not problems, "\n".join(problems)

    def test_registered_name_is_unique(self) -> None:
        from ptsdk.plugins.manager import get_backends

        backends = get_backends()
        assert backends.get(self.backend.name, self.backend) is self.backend
