"""The README's Python API example, run as written against a copy of the examples (a real TRL training)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from conftest import EXAMPLES

README = EXAMPLES.parent / "README.md"


def readme_python() -> str:
    text = README.read_text()
    section = text[text.index("## Python API") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_readme_python_example_runs(tmp_path: Path, tiny_model: Path, trl_env, capsys) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES / "jobs", copy / "jobs")
    shutil.copytree(EXAMPLES / "data", copy / "data")
    (copy / "tiny-model").symlink_to(tiny_model)
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        namespace: dict = {}
        exec(compile(readme_python(), str(README), "exec"), namespace)
    finally:
        os.chdir(cwd)
    run = namespace["run"]
    assert run.status == "succeeded" and run.exit_code == 0
    losses = [m.loss for m in run.train]
    assert len(losses) == 4 and losses[-1] < losses[0]  # it learns, even in 4 steps
    assert run.model_path == tmp_path / "runs" / "api-example" / "model"
    assert (run.model_path / "adapter_config.json").is_file()
    assert namespace["plan"].native_checked and namespace["plan"].native_config == "trl_config.yaml"
    out = capsys.readouterr().out
    assert "succeeded" in out and "trl" in out
