"""Every trained/validated capability names a test that exists: the matrix cannot claim more than the tests show."""

from __future__ import annotations

import ast

from conftest import ROOT
from ptsdk.matrix.capability import Verified
from ptsdk.plugins.manager import get_backends


def test_evidence_names_real_tests() -> None:
    missing = []
    for name, cls in get_backends().items():
        for cap in cls.capabilities:
            if cap.verified is Verified.declared:
                continue
            path, _, func = cap.evidence.partition("::")
            file = ROOT / path
            defined = set()
            if file.exists():
                defined = {n.name for n in ast.walk(ast.parse(file.read_text())) if isinstance(n, ast.FunctionDef)}
            if func not in defined:
                missing.append(f"{name} {cap.kind}:{cap.name} -> {cap.evidence}")
    assert not missing, "\n".join(missing)


def test_trl_claims_nothing_merely_declared() -> None:
    trl = get_backends()["trl"]
    assert trl.capabilities and all(c.verified is not Verified.declared for c in trl.capabilities)
    assert ("method", "ppo") not in {c.key for c in trl.capabilities}
