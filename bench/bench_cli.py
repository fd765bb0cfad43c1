"""CLI start-up benchmark: the light commands must answer well under a second.

    python bench/bench_cli.py [--repeat 10]

Runs each command as a fresh process (what a user pays) and reports min / median wall time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.yaml"
        job.write_text("method: {name: sft}\nmodel: {name_or_path: org/m}\ndata: {train: {path: org/d}}\n")
        commands = {
            "--help": ["--help"],
            "validate": ["validate", str(job)],
            "validate --backend trl": ["validate", str(job), "--backend", "trl"],
            "matrix --format json": ["matrix", "--format", "json"],
            "matrix (table)": ["matrix"],
            "schema": ["schema"],
        }
        worst = 0.0
        print(f"{'command':<26} {'min s':>7} {'median s':>9}")
        for label, argv in commands.items():
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "ptsdk", *argv], check=True, capture_output=True)
                times.append(time.perf_counter() - t)
            median = statistics.median(times)
            worst = max(worst, median)
            print(f"{label:<26} {min(times):7.3f} {median:9.3f}")
    print(f"worst median {worst:.3f}s (target < {TARGET_S}s): {'OK' if worst < TARGET_S else 'MISSED'}")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
