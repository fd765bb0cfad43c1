"""Contract test kit for backend authors.

Subclass :class:`BackendContract` in your own test suite::

    from ptsdk.plugins.testing import BackendContract

    class TestMyBackend(BackendContract):
        backend = MyBackend
        jobs = ["tests/jobs/sft.yaml"]   # jobs your backend claims to run

Every test runs without the framework: it checks the declaration and the translation.
Training for real is your backend's own tests' job (and what earns ``trained``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from ptsdk.matrix.capability import KINDS, Capability, Verified
from ptsdk.matrix.check import check
from ptsdk.plugins.backend import Backend, Plan


def contract_problems(backend: type[Backend], jobs: list[str | Path] = ()) -> list[str]:  # type: ignore[assignment]
    """Everything wrong with a backend class; empty when it keeps the contract."""
    from ptsdk.spec import load_job

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
    if backend.translates and backend.capabilities and all(c.verified is Verified.declared for c in backend.capabilities):
        out.append("a backend that translates should verify some capability (trained or validated)")
    for path in jobs:
        job = load_job(path, check_files=False)
        result = check(job, backend.name, {backend.name: backend})
        if not result.ok:
            out.append(f"{path}: the backend's own capabilities reject it: {'; '.join(map(str, result.unmet))}")
            continue
        if not backend.translates:
            continue
        first, second = backend().translate(job), backend().translate(job)
        if not isinstance(first, Plan):
            out.append(f"{path}: translate returned {type(first).__name__}, not a Plan")
            continue
        if first.to_dict() != second.to_dict():
            out.append(f"{path}: translate is not deterministic")
        if first.backend != backend.name:
            out.append(f"{path}: plan.backend is {first.backend!r}")
        if not first.commands:
            out.append(f"{path}: the plan has no command")
        if first.native_config not in {f.path for f in first.files}:
            out.append(f"{path}: plan.native_config {first.native_config!r} is not one of the plan's files")
        try:
            json.dumps(first.to_dict())
        except TypeError as exc:
            out.append(f"{path}: the plan is not JSON-serializable ({exc})")
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
