"""The matrix is derived from declarations; check() says what is unmet and who can."""

from __future__ import annotations

import json

import pytest
from conftest import minimal_job
from ptsdk.errors import PtsdkError
from ptsdk.matrix import Capability, Verified, check, requirements_of
from ptsdk.matrix.check import KNOWN_KEYS
from ptsdk.matrix.render import build_rows, to_json, to_markdown
from ptsdk.plugins.manager import get_backends, get_registry
from ptsdk.plugins.testing import BackendContract, contract_problems
from ptsdk.spec import validate_job


def test_requirements_of_a_distributed_rl_job() -> None:
    job = validate_job(
        minimal_job(
            method={
                "name": "grpo",
                "num_generations": 8,
                "loss_type": "dr_grpo",
                "rewards": ["m:f"],
                "reward_model": "o/rm",
            },
            adapter={"type": "lora"},
            training={"global_batch_size": 64, "micro_batch_size": 4},
            distributed={"nodes": 2, "gpus_per_node": 8, "strategy": "deepspeed", "zero_stage": 3, "master_addr": "n0"},
        )
    )
    keys = {r.key for r in requirements_of(job)}
    assert keys == {
        ("method", "grpo"),
        ("loss", "grpo:dr_grpo"),
        ("adapter", "lora"),
        ("strategy", "deepspeed_zero3"),
        ("topology", "multi_node"),
        ("reward", "functions"),
        ("reward", "model"),
    }


def test_single_process_needs_no_strategy_and_many_default_to_ddp() -> None:
    assert ("strategy", "ddp") not in {r.key for r in requirements_of(validate_job(minimal_job()))}
    job = validate_job(minimal_job(distributed={"gpus_per_node": 2}))
    assert ("strategy", "ddp") in {r.key for r in requirements_of(job)}


def test_ppo_on_trl_is_rejected_with_alternatives() -> None:
    job = validate_job(minimal_job(method={"name": "ppo", "rewards": ["m:f"]}))
    registry = get_registry()  # the built-ins: distributions/* installed beside ptsdk may declare ppo too
    result = check(job, "trl", {n: b for n, b in registry.backends.items() if registry.origins[n].built_in})
    assert not result.ok
    (unmet,) = [u for u in result.unmet if u.requirement.kind == "method"]
    assert unmet.able == ["openrlhf", "verl"]
    assert str(unmet) == "method.name: trl cannot run method 'ppo'; backends that can: openrlhf, verl"


def test_accepted_by_lists_backends_meeting_everything() -> None:
    job = validate_job(minimal_job(method={"name": "kto"}, data={"train": {"path": "o/d"}}))
    result = check(job, "verl", get_backends())
    assert not result.ok
    assert "verl" not in result.accepted_by and "trl" in result.accepted_by


def test_matrix_is_derived_from_backends() -> None:
    backends = get_backends()
    rows = build_rows(backends)
    declared = {(c.kind, c.name) for cls in backends.values() for c in cls.capabilities}
    # every declared capability, plus a row for each optional setting's feature even where no backend runs it
    assert {(r.kind, r.name) for r in rows} == declared | KNOWN_KEYS
    rows = build_rows(backends, method="dpo")
    assert {r.name for r in rows} >= {"dpo", "dpo:sigmoid"} and all("dpo" in r.name for r in rows)


def test_matrix_filters_and_formats() -> None:
    backends = get_backends()
    rows = build_rows(backends, kind="adapter")
    assert {r.name for r in rows} == {"full", "lora", "qlora"}
    data = json.loads(to_json(backends, rows))
    assert set(data["backends"]) == set(backends)
    md = to_markdown(backends, rows)
    # built-in backends first, then the installed distributions (distributions/*), in registration order
    assert md.splitlines()[0].startswith("| capability | trl | axolotl | verl | openrlhf |")


def test_capability_needs_evidence_unless_declared() -> None:
    with pytest.raises(ValueError, match="names no test as evidence"):
        Capability("method", "sft", Verified.trained)
    with pytest.raises(ValueError, match="unknown capability kind"):
        Capability("flavour", "x", Verified.declared)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["trl", "axolotl", "verl", "openrlhf"])
def test_builtin_backends_keep_the_contract(name: str) -> None:
    assert contract_problems(get_backends()[name]) == []


def test_contract_kit_catches_a_broken_backend() -> None:
    from ptsdk.plugins.backend import Backend

    class Broken(Backend):
        name = "broken thing"
        framework = ""
        capabilities = (
            Capability("loss", "dpo:ipo", Verified.declared),
            Capability("loss", "dpo:ipo", Verified.declared),
        )

        def translate(self, job):  # type: ignore[no-untyped-def]
            return None

    problems = contract_problems(Broken)
    assert any("identifier" in p for p in problems)
    assert any("declared twice" in p for p in problems)
    assert any("does not declare" in p for p in problems)


def test_a_translating_backend_verifies_something_or_names_the_source_of_its_schema() -> None:
    """A backend for a git-only framework translates with every capability declared: it must name the pinned
    source its schema was read from, and cannot claim more than declared."""
    from ptsdk.plugins.backend import Backend
    from ptsdk.plugins.testing import declaration_problems

    def backend(source, verified=Verified.declared):  # type: ignore[no-untyped-def]
        class GitOnly(Backend):
            name = "gitonly"
            framework = "gitonly"
            capabilities = (
                Capability(
                    "method", "sft", verified, "tests/test_x.py::test_x" if verified is not Verified.declared else ""
                ),
            )
            schema_source = source

            def translate(self, job):  # type: ignore[no-untyped-def]
                return None

        return GitOnly

    assert any("schema_source" in p for p in declaration_problems(backend(None)))
    assert declaration_problems(backend("github.com/PrimeIntellect-ai/prime-rl@0123abcd")) == []
    assert any("OWNER/REPO@COMMIT" in p for p in declaration_problems(backend("prime-rl main")))
    assert any("OWNER/REPO@COMMIT" in p for p in declaration_problems(backend("github.com/a/b@main")))
    assert any(
        "only declare" in p for p in declaration_problems(backend("github.com/a/b@0123abcd", Verified.validated))
    )
    assert declaration_problems(backend(None, Verified.validated)) == []
    # and ptsdk env create cannot build its environment: it says so instead of installing a requirements file
    with pytest.raises(PtsdkError, match=r"gitonly installs from git only \(github.com/a/b@0123abcd\)"):
        backend("github.com/a/b@0123abcd").environment()


class TestDeclaredBackendContract(BackendContract):
    from ptsdk.backends.verl import VerlBackend

    backend = VerlBackend


def test_one_feasibility_verdict_for_every_command(ptsdk, write_job) -> None:
    """A 2-process CPU job: capabilities alone would accept Axolotl, its static check does not.
    validate -b trl, validate -b axolotl and matrix --job all give the same verdict."""
    job = write_job(minimal_job(distributed={"device": "cpu", "gpus_per_node": 2}, training={"precision": "fp32"}))
    r = ptsdk("validate", str(job), "-b", "trl")
    assert r.code == 0, r.err
    assert "also accepted by: none" in r.out
    r = ptsdk("validate", str(job), "-b", "axolotl")
    assert r.code == 2 and "Axolotl cannot run several processes on CPU" in r.err
    assert "backends that accept the whole job: trl" in r.err
    r = ptsdk("matrix", "--job", str(job), "--format", "json")
    verdicts = json.loads(r.out)["job"]["verdicts"]
    assert [b for b, v in verdicts.items() if v["can_run"]] == ["trl"]
    assert any("Axolotl cannot run several processes" in x for x in verdicts["axolotl"]["reasons"])
    r = ptsdk("matrix", "--job", str(job))
    assert r.code == 0 and "trl: can run this job" in r.out and "axolotl: cannot: distributed.gpus_per_node" in r.out


def test_a_quantized_base_on_cpu_is_the_backends_question(ptsdk, write_job) -> None:  # type: ignore[no-untyped-def]
    """Not a spec rule: bitsandbytes 0.50 has CPU kernels, and TRL, Axolotl and Unsloth train on a 4-bit base on a
    CPU (tests/backends); the others are refused before launch, naming them."""
    job = minimal_job(
        adapter={"type": "qlora"}, model={"name_or_path": "o/m", "quantization": "4bit"}, distributed={"device": "cpu"}
    )
    reasons = check(validate_job(job), "verl", get_backends()).reasons()
    assert "model.quantization: verl cannot run a 4-bit bitsandbytes base on CPU; backends that can: " in "\n".join(
        reasons
    )
    r = ptsdk("validate", str(write_job(job)))
    assert r.code == 0 and "accepted by 3 of" in r.out and "backends: axolotl, trl, unsloth" in r.out, r.out
    eight = {**job, "adapter": {"type": "lora"}, "model": {"name_or_path": "o/m", "quantization": "8bit"}}
    r = ptsdk("validate", str(write_job(eight, "eight.yaml")))
    assert r.code == 0 and "backends: axolotl, trl" in r.out, r.out  # Unsloth loads 8 bits on GPUs only
    two = {**job, "distributed": {"device": "cpu", "gpus_per_node": 2}}
    r = ptsdk("validate", str(write_job(two, "two.yaml")), "-b", "trl")
    assert (
        r.code == 2 and "a bitsandbytes base in several CPU processes; backends that can: no installed backend" in r.err
    ), r.err
    on_gpu = validate_job({**job, "distributed": {"device": "gpu"}})
    assert not any(
        "quantized" in line or "bitsandbytes" in line for line in check(on_gpu, "verl", get_backends()).reasons()
    )
