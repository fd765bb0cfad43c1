"""Axolotl's own validator on the corpus round trip (issue 12): every upstream example ptsdk imports and its
Axolotl backend accepts, translated back, passes `validate_config` (one harness process for all)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ptsdk.backends.axolotl.backend import AxolotlBackend
from ptsdk.matrix.check import feasibility
from ptsdk.rundir import write_plan
from ptsdk.spec import validate_job

from tests.roundtrip import corpus, write_native

pytestmark = pytest.mark.axolotl


def test_imported_corpus_passes_axolotl_validator(axolotl_env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # hub model ids: no network waits (the validator reads no weights)
    backend = AxolotlBackend()
    requests, names = [], []
    for entry in corpus("axolotl"):
        if entry.name.endswith("_fragment"):
            continue  # no model or data of their own (tests/test_import_axolotl.py adds them)
        job = validate_job(backend.import_native(write_native(entry, tmp_path / "native")).job, source=entry.name)
        if not feasibility(job, {"axolotl": AxolotlBackend})["axolotl"].ok:
            continue
        plan = backend.translate(job)
        folder = tmp_path / entry.name
        write_plan(plan, folder)
        requests.append(backend.check_request(plan, folder, preprocess=False))
        names.append(entry.name)
    if not requests:
        pytest.fail("no corpus entry to validate")
    results = backend.run_check(requests, timeout=300)
    failed = {n: r["errors"] for n, r in zip(names, results, strict=True) if r["errors"]}
    print(f"\nnative-validated: {len(names) - len(failed)}/{len(names)}: {', '.join(sorted(set(names) - set(failed)))}")
    assert not failed, failed
