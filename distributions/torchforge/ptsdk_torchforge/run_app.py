"""Runs one of TorchForge's apps (``apps/sft/main.py`` ...), copied into the run directory as torchforge_app.py.

TorchForge's package installs ``forge`` from ``src/`` only (pyproject.toml ``[tool.setuptools.packages.find]``), and
its apps are run from the checkout as ``python -m apps.sft.main --config FILE``. Here the checkout is the one the
editable ``forge`` package lives in (``src/forge/__init__.py``, two folders below it), so the app runs from the
run directory: ``python torchforge_app.py apps.sft.main --config sft.yaml``.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def checkout(package_file: str) -> Path:
    """The TorchForge checkout holding apps/, from the file of its editable forge package."""
    root = Path(package_file).resolve().parents[2]
    if not (root / "apps").is_dir():
        raise SystemExit(
            f"TorchForge's apps/ is not beside {package_file}: install forge with `pip install -e` from its checkout"
        )
    return root


def main() -> None:
    import forge  # type: ignore[import-not-found]  # TorchForge's package, in its own environment

    sys.path.insert(0, str(checkout(forge.__file__)))
    module = sys.argv.pop(1)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
