"""Issue #12: the TRL corpus, imported and translated back, passes TRL's own parser (one harness process)."""

from __future__ import annotations

from pathlib import Path

from ptsdk.backends.trl.backend import TRLBackend
from ptsdk.errors import PtsdkError
from ptsdk.rundir import write_plan
from ptsdk.spec import validate_job

from tests.roundtrip import corpus, write_native


def test_imported_corpus_passes_trl_parser(trl_env, tmp_path: Path) -> None:
    backend, names, requests = TRLBackend(), [], []
    for entry in corpus("trl"):
        try:
            result = backend.import_native(write_native(entry, tmp_path / "native"))
        except PtsdkError:
            continue  # fragments: tests/test_import_trl.py asserts why
        plan = backend.translate(validate_job(result.job, source=entry.name))
        write_plan(plan, tmp_path / entry.name)
        names.append(entry.name)
        requests.append(backend.check_request(plan, tmp_path / entry.name))
    assert len(names) >= 10
    answers = backend.run_check(requests, timeout=300)
    failed = {name: a["errors"] for name, a in zip(names, answers, strict=True) if a["errors"]}
    print(f"\ntrl native check: {len(names) - len(failed)}/{len(names)} imported entries accepted by TRL")
    assert not failed, failed
