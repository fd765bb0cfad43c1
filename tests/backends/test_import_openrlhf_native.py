"""OpenRLHF's own parsers on the command lines translated back from every imported upstream example (issue 12).

Each corpus entry is imported, pointed at the test's tiny model, the example data and reward (the only
changes: the upstream model, data and reward server are not here), translated, and checked by OpenRLHF in
one harness process: the CLI's __main__ block with abbreviations off (every passthrough flag included), the
argument-only asserts of train() and the run's preparation step on the data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EXAMPLES
from ptsdk.backends.openrlhf.backend import OpenRLHFBackend
from ptsdk.errors import PtsdkError
from roundtrip import corpus, write_native

from .conftest import natively_rejected

pytestmark = pytest.mark.openrlhf

REWARD = f"{EXAMPLES / 'rewards.py'}:correct"
DATA = {
    "sft": EXAMPLES / "data" / "sft_train.jsonl",
    "preference": EXAMPLES / "data" / "pref_train.jsonl",
    "rl": EXAMPLES / "data" / "rl_train.jsonl",
}
FAMILIES = {"train_sft": "sft", "train_dpo": "preference", "train_ppo_ray": "rl"}


def conversations(folder: Path) -> Path:
    """The example's pairs as whole conversations with no prompt column (train_dpo without --data.prompt_key)."""
    path = folder / "pref_conversations.jsonl"
    rows = [json.loads(line) for line in DATA["preference"].read_text().splitlines()]
    path.write_text(
        "".join(
            json.dumps(
                {
                    k: [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r[k]}]
                    for k in ("chosen", "rejected")
                }
            )
            + "\n"
            for r in rows
        )
    )
    return path


def test_every_imported_example_passes_openrlhfs_parsers(openrlhf_env, tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    backend, jobs = OpenRLHFBackend(), {}
    for entry in corpus("openrlhf"):
        try:
            job = backend.import_native(write_native(entry, tmp_path / "native")).job
        except PtsdkError:
            continue  # not a ptsdk job (a reward model, an agent loop): test_import_openrlhf.py checks why
        family = "rl" if "rewards" in job["method"] or "reward_model" in job["method"] else None
        family = family or ("preference" if job["method"]["name"] in ("dpo", "ipo") else "sft")
        job["model"]["name_or_path"] = str(tiny_model)
        source = conversations(tmp_path) if job["data"].get("prompt_in_answers") else DATA[family]
        data = {**job["data"], "train": {"path": str(source)}, "columns": {}}
        data.pop("format", None)
        if "eval" in data:
            data["eval"] = {"path": str(DATA[family])}
        job["data"] = data
        if family == "rl":
            job["method"].pop("reward_model", None)
            job["method"]["rewards"] = [REWARD]
        jobs[entry.name] = job
    failed = natively_rejected(backend, jobs, tmp_path, timeout=900)
    print(f"\nopenrlhf import, native check: {len(jobs) - len(failed)} of {len(jobs)} accepted by OpenRLHF")
    assert len(jobs) >= 9
    assert not failed, "\n".join(f"{k}: {v}" for k, v in failed.items())
