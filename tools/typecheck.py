#!/usr/bin/env python
"""Type-check ptsdk with mypy, on the package layout the installed package has.

    python tools/typecheck.py [extra mypy arguments]

The source folders are mapped to packages by ``[tool.setuptools.package-dir]`` in pyproject.toml
(sdk/ -> ptsdk, plugins/ -> ptsdk.plugins, ...), which mypy cannot follow (nor the editable
install's import hook). This script builds that layout as symlinks under build/typecheck/, runs
mypy on it with pyproject.toml's [tool.mypy] configuration, and prints mypy's report with the
repository's own paths (build/typecheck/ptsdk/plugins/kit.py -> plugins/kit.py). The exit status
is mypy's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
OUT = ROOT / "build" / "typecheck"
SKIP = {"__pycache__"}


def package_dirs() -> dict[str, Path]:
    """Package name -> source folder, from pyproject.toml (a package not listed lives in its parent's folder),
    and the top-level package of every backend distribution under distributions/ (distributions/X/ptsdk_X/)."""
    with PYPROJECT.open("rb") as f:
        mapping = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    out = {package: ROOT / folder for package, folder in mapping.items() if package}
    for init in sorted(ROOT.glob("distributions/*/ptsdk_*/__init__.py")):
        out[init.parent.name] = init.parent
    return out


def build_tree(mapping: dict[str, Path]) -> list[tuple[str, str]]:
    """Symlink the layout under OUT; returns (path under OUT, repository path) prefixes, longest first."""
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    prefixes: list[tuple[str, str]] = []
    for package in sorted(mapping, key=lambda p: p.count(".")):
        source = mapping[package]
        target = OUT.joinpath(*package.split("."))
        if not target.parent.is_dir():
            raise SystemExit(f"typecheck: the parent of package {package} is not mapped in {PYPROJECT.name}")
        children = {
            p.split(".")[-1] for p in mapping if p.startswith(package + ".") and p.count(".") == package.count(".") + 1
        }
        if children:
            # A folder of its own: its source's entries, except those that other mappings provide.
            target.mkdir()
            for entry in sorted(source.iterdir()):
                if entry.name not in SKIP and entry.name not in children:
                    (target / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        else:
            target.symlink_to(source, target_is_directory=True)
        prefixes.append((relative(target) + "/", relative(source) + "/"))
    return sorted(prefixes, key=lambda p: len(p[0]), reverse=True)


def relative(path: Path) -> str:
    return os.path.relpath(path, ROOT).replace(os.sep, "/")


def main(argv: list[str]) -> int:
    mapping = package_dirs()
    prefixes = build_tree(mapping)
    roots = sorted({package.split(".")[0] for package in mapping})
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(PYPROJECT),
        *argv,
        *(relative(OUT / r) for r in roots),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    pattern = re.compile("|".join(re.escape(built) for built, _ in prefixes))
    original = dict(prefixes)
    for stream, text in ((sys.stdout, result.stdout), (sys.stderr, result.stderr)):
        stream.write(pattern.sub(lambda m: original[m.group(0)], text))
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
