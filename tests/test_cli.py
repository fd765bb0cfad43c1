"""The CLI: exit codes, error rendering, and a fast start without any framework."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import EXAMPLES, minimal_job


def test_validate_ok(ptsdk, write_job) -> None:
    r = ptsdk("validate", str(write_job(minimal_job())))
    assert r.code == 0 and "valid sft job" in r.out


def test_validate_ppo_on_trl_says_who_can(ptsdk) -> None:
    r = ptsdk("validate", str(EXAMPLES / "jobs" / "ppo.yaml"), "--backend", "trl")
    assert r.code == 2
    # the built-ins that can, and any distributions/* installed beside ptsdk that declare ppo, sorted
    assert re.search(r"method.name: trl cannot run method 'ppo'; backends that can: ([a-z_]+, )*openrlhf, verl", r.err)
    assert "Traceback" not in r.err


def test_invalid_job_lists_field_paths(ptsdk, write_job) -> None:
    path = write_job(minimal_job(method={"name": "dpo", "beta": -1}, training={"global_batch_size": 0}, bogus=1))
    r = ptsdk("validate", str(path))
    assert r.code == 2
    assert "method.beta: Input should be greater than 0" in r.err
    assert "training.global_batch_size: Input should be greater than or equal to 1" in r.err
    assert "bogus: unknown field" in r.err


@pytest.mark.parametrize(
    "text, expected",
    [
        ("method: [", "not valid YAML"),
        ("- a\n- b\n", "this one is list"),
        ("", "this one is empty"),
        ("method: {name: sft}\n", "model: required field is missing"),
    ],
)
def test_malformed_files(ptsdk, tmp_path, text: str, expected: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    r = ptsdk("validate", str(path))
    assert r.code == 2 and expected in r.err and "Traceback" not in r.err


def test_bad_json_has_line_and_column(ptsdk, tmp_path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{"method": {"name": "sft"},\n "model": }')
    r = ptsdk("validate", str(path))
    assert r.code == 2 and "job.json:2:" in r.err and "not valid JSON" in r.err


def test_missing_file_and_unknown_backend(ptsdk, write_job) -> None:
    assert ptsdk("validate", "/nonexistent/job.yaml").code == 2
    r = ptsdk("validate", str(write_job(minimal_job())), "--backend", "nemo")
    assert r.code == 2 and "no such backend" in r.err


def test_unknown_backend_option_section(ptsdk, write_job) -> None:
    r = ptsdk("validate", str(write_job(minimal_job(backend_options={"trll": {"x": 1}}))))
    assert r.code == 2 and "backend_options.trll: no such backend" in r.err


def test_usage_error_is_exit_2(ptsdk) -> None:
    assert ptsdk("validate").code == 2
    assert ptsdk("matrix", "--format", "html").code == 2


def test_schema_is_json_schema(ptsdk) -> None:
    r = ptsdk("schema")
    schema = json.loads(r.out)
    assert r.code == 0 and schema["title"] == "Job" and "method" in schema["required"]


def test_matrix_formats(ptsdk) -> None:
    r = ptsdk("matrix", "--format", "markdown", "--kind", "method")
    assert r.code == 0 and "| method ppo |" in r.out
    r = ptsdk("matrix", "--format", "json", "--backend", "verl")
    assert r.code == 0 and set(json.loads(r.out)["backends"]) == {"verl"}
    assert ptsdk("matrix", "--backend", "nope").code == 2


def test_backends_lists_all_even_when_missing(ptsdk, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PTSDK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PTSDK_VERL_PYTHON", "")
    r = ptsdk("backends", "--format", "json")
    rows = {row["backend"]: row for row in json.loads(r.out)}
    assert r.code == 0 and set(rows) >= {"trl", "axolotl", "verl", "openrlhf"}
    assert rows["verl"]["status"].startswith("missing")


def test_translate_for_a_declared_only_backend_is_refused_clearly(ptsdk, write_job, monkeypatch) -> None:
    from ptsdk.backends.declared import DeclaredBackend
    from ptsdk.matrix.capability import Verified, caps
    from ptsdk.plugins import hookimpl, manager

    class Planned(DeclaredBackend):  # every built-in backend translates now: a declared-only one, registered here
        name = "planned"
        framework = "planned"
        capabilities = (
            *caps("method", "ppo", Verified.declared),
            *caps("reward", "functions", Verified.declared),
            *caps("adapter", "full", Verified.declared),
            *caps("strategy", "fsdp", Verified.declared),
            *caps("feature", "kl_in_reward:k1", Verified.declared),
        )

    class PlannedPlugin:
        @hookimpl
        def ptsdk_register_backends(self, register):  # type: ignore[no-untyped-def]
            register(Planned)

    real = manager.get_plugin_manager

    def with_planned(**kwargs):  # type: ignore[no-untyped-def]
        pm = real(**kwargs)
        pm.register(PlannedPlugin(), name="planned")
        return pm

    monkeypatch.setattr(manager, "get_plugin_manager", with_planned)
    manager.clear_registry_cache()
    try:
        job = write_job(
            minimal_job(
                method={"name": "ppo", "rewards": ["m:f"]}, distributed={"gpus_per_node": 8, "strategy": "fsdp"}
            )
        )
        r = ptsdk("translate", str(job), "--backend", "planned")
        assert r.code == 2 and "cannot translate jobs for it yet" in r.err
    finally:
        manager.clear_registry_cache()


HEAVY = ("torch", "transformers", "trl", "axolotl", "verl", "openrlhf", "datasets", "rich")


@pytest.mark.parametrize("args", [["--help"], ["validate", "JOB"], ["matrix", "--format", "json"], ["schema"]])
def test_fast_start_imports_no_framework(args: list[str], write_job) -> None:
    """The light commands import no framework (and not even rich). Their speed is measured in bench/bench_cli.py."""
    args = [str(write_job(minimal_job())) if a == "JOB" else a for a in args]
    code = (
        "import sys\n"
        "from ptsdk.cli import main\n"  # what the ptsdk command runs, before its quick exit (test_cli_exit.py)
        f"try:\n    main({args!r})\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('\\nLOADED', ' '.join(m for m in " + repr(HEAVY) + " if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    loaded = next(line for line in lines if line.startswith("LOADED")).split()[1:]
    assert loaded == []
