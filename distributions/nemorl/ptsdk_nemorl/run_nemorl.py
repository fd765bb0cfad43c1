"""Starts one of NeMo RL's example entry points (examples/run_sft.py, run_dpo.py) from the run directory.

    python run_nemorl.py sft --config nemorl_config.yaml

NeMo RL's entry points live in its checkout's examples/ folder, not in the installed package: this finds them beside
the nemo_rl package that the environment's ``uv sync`` installed (editable, from the checkout). Standard library only.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path


def main() -> None:
    algorithm, args = sys.argv[1], sys.argv[2:]
    spec = importlib.util.find_spec("nemo_rl")
    if spec is None or spec.origin is None:
        raise SystemExit("nemo_rl is not importable here: point PTSDK_NEMORL_PYTHON at a NeMo RL checkout's .venv")
    script = Path(spec.origin).resolve().parents[1] / "examples" / f"run_{algorithm}.py"
    if not script.is_file():
        raise SystemExit(f"{script} not found: NeMo RL must be installed from its git checkout (uv sync)")
    sys.argv = [str(script), *args]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
