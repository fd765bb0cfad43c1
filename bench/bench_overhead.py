"""Launch overhead: the same tiny job through `ptsdk run` and through the native command ptsdk generated.

    python bench/bench_overhead.py [--job examples/jobs/sft_lora.yaml] [--backend trl] [--rounds 9] [--steps 30]
                                   [--no-cold]

`ptsdk translate --out` writes the native files and command.sh once; then `bash command.sh` in a fresh copy of
that folder and `ptsdk run` (spec load, matrix check, preflight, native check from its cache, live view in plain
mode, metrics normalization, manifest) each run the job from scratch as fresh processes, each side first in
turn, so drift in the machine's speed falls on all sides. A third side runs `ptsdk run` without its warm start
(PTSDK_WARM_START=0, ptsdk.warm) for comparison (--no-cold leaves it out). The report gives each round's wall
times, the median of each side and the ratio (target: at most 2% slower), and splits ptsdk's side into the
framework's command as ptsdk ran it and ptsdk's own time around it. The command's time is the attempt's
wall_time_s plus, after a warm start, its interpreter's life before the attempt's clock started (lead_s, less
the waited_s it sat idle, imports done): ptsdk's own time is what remains of its wall time.

Single runs of a 10 s job vary by 5-10% on a small machine, more than the effect measured, and the ratio of
medians over a handful of rounds moves by a few per cent between invocations. So the verdict rests on what can
be measured to a few milliseconds, as a share of the native median:
- ptsdk's wall time outside the framework's command (within ptsdk's process: its wall time less the command's);
- the CPU ptsdk used while the command ran (the live view, the log copy): the most it can have taken from it;
- with a warm start, how much longer the warm imports took beside ptsdk's own checks (the warm interpreter
  reports it) than the same imports alone in that interpreter (timed in every round): what running the two side
  by side cost the framework.
The wall-time ratio is reported with a 90% bootstrap interval (rounds resampled whole), and the verdict fails
too when even that interval's low end is above the target. That check is weak (with 9 rounds the interval spans
about +-5% here), so the verdict stands on the three measured terms. For scale, the report also times a bare
interpreter importing the libraries ptsdk's start stands on (pydantic, click, PyYAML, importlib.metadata): what
no Python CLI built on them can beat without overlapping its start with the framework's, as the warm start does.

The first `ptsdk run` also pays the framework's own config check, and it is the run that leaves the record the
warm start starts from; it is reported apart (`first run`), and the rounds start after it, as a rerun of a job
does. All sides run with Python's bytecode cache on (an installed ptsdk has its .pyc files;
PYTHONDONTWRITEBYTECODE, set on some machines, would make ptsdk recompile its sources on every start, about
0.2 s here, while the framework's installed packages keep theirs).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from ptsdk import warm

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.02
LIBRARIES = "import importlib.metadata, click, yaml; from pydantic import BaseModel, Field"


def framework_time(run_dir: Path) -> tuple[float, float, float | None, str]:
    """The framework's command as ptsdk ran it, ptsdk's CPU meanwhile, and how long a warm interpreter's imports
    took. The command's time is the attempt's wall time plus, after a warm start, the interpreter's life before
    the attempt's clock started (lead_s), less what of it it sat idle, imports done (waited_s)."""
    attempt = json.loads((run_dir / "manifest.json").read_text())["attempts"][-1]
    warm = attempt.get("warm_start")
    if warm is None:
        return attempt["wall_time_s"], attempt["ptsdk_cpu_s"], None, "cold start"
    command = attempt["wall_time_s"] + warm["lead_s"] - warm["waited_s"]
    return command, attempt["ptsdk_cpu_s"], warm["imports_s"], f"warm, {warm['lead_s']:.2f}s ahead"


def bare_import(backend: str) -> list[str] | None:
    """The command that imports the backend's warm modules alone in its interpreter and prints how long that
    took, from the record the first run left (None: the backend has no warm start)."""
    try:
        record = json.loads((warm.home() / warm.FOLDER / f"{backend}.json").read_text())
    except OSError:
        return None
    imports = "; ".join(f"import {m}" for m in record["modules"])
    return [record["python"], "-c", f"import time; t = time.monotonic(); {imports}; print(time.monotonic() - t)"]


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PTSDK_PROGRESS_EVERY": "5"}


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job", type=Path, default=ROOT / "examples" / "jobs" / "sft_lora.yaml")
    parser.add_argument("--backend", default="trl")
    parser.add_argument("--rounds", "--pairs", type=int, default=9)
    parser.add_argument("--steps", type=int, default=30, help="training.max_steps of the job")
    parser.add_argument("--json", type=Path, help="Also write the numbers here.")
    parser.add_argument(
        "--cold",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also run ptsdk without its warm start (PTSDK_WARM_START=0) in each round, for comparison.",
    )
    args = parser.parse_args()
    ptsdk = [sys.executable, "-m", "ptsdk"]
    env = environment()
    with tempfile.TemporaryDirectory(prefix="ptsdk-overhead-") as tmp:
        work = Path(tmp)
        data = yaml.safe_load(args.job.read_text())
        data["training"]["max_steps"] = args.steps
        data.setdefault("output", {})["dir"] = str(work / "runs")
        data["name"] = "overhead"
        job = args.job.parent / f".bench-overhead-{os.getpid()}.yaml"  # beside the original: relative paths hold
        job.write_text(yaml.safe_dump(data))
        try:
            native = work / "native"
            subprocess.run(
                [*ptsdk, "translate", str(job), "-b", args.backend, "--out", str(native)],
                check=True,
                stdout=subprocess.DEVNULL,
                env=env,
            )
            first = timed([*ptsdk, "run", str(job), "-b", args.backend, "--run-dir", str(work / "first")], work, env)
            bare = bare_import(args.backend)
            rounds: list[dict[str, float]] = []
            for i in range(args.rounds):
                copy = work / f"native-{i}"
                shutil.copytree(native, copy)
                run_dirs = {"ptsdk": work / f"run-{i}", "cold": work / f"cold-{i}"}
                sides = {
                    "native": (["bash", "command.sh"], copy, env),
                    **{
                        side: (
                            [*ptsdk, "run", str(job), "-b", args.backend, "--run-dir", str(folder)],
                            work,
                            env | ({"PTSDK_WARM_START": "0"} if side == "cold" else {}),
                        )
                        for side, folder in run_dirs.items()
                    },
                }
                order = ["native", "ptsdk", "cold"] if args.cold else ["native", "ptsdk"]
                order = order[i % len(order) :] + order[: i % len(order)]  # each side first in turn
                took = {side: timed(*sides[side]) for side in order}
                one = {"native": took["native"]}
                if bare is not None:  # the warm modules imported alone, as the warm interpreter imports them
                    one["bare_import"] = float(subprocess.run(bare, capture_output=True, text=True, env=env).stdout)
                words = []
                for side in order[:]:
                    if side == "native":
                        continue
                    command, cpu, imports, how = framework_time(run_dirs[side])
                    one |= {side: took[side], f"{side}_own": took[side] - command, f"{side}_cpu": cpu}
                    if imports is not None:
                        one[f"{side}_imports"] = imports
                    words.append(f"{side} {took[side]:.2f}s (own {took[side] - command:.2f}s, {how})")
                rounds.append(one)
                print(
                    f"round {i + 1} ({' then '.join(order)}): native {took['native']:.2f}s  "
                    + "  ".join(words)
                    + f"  ratio {took['ptsdk'] / took['native']:.3f}"
                )
        finally:
            job.unlink(missing_ok=True)
    return report(rounds, first, args)


def median(rounds: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def ratio_interval(rounds: list[dict[str, float]], side: str, draws: int = 4000) -> tuple[float, float]:
    """A 90% bootstrap interval of the ratio of medians (rounds resampled whole, so a round's sides stay together)."""
    rng = random.Random(0)
    ratios = sorted(
        median(sample, side) / median(sample, "native")
        for sample in ([rng.choice(rounds) for _ in rounds] for _ in range(draws))
    )
    return ratios[int(0.05 * draws)], ratios[int(0.95 * draws) - 1]


def report(rounds: list[dict[str, float]], first: float, args: argparse.Namespace) -> int:
    native = median(rounds, "native")
    libraries = min(timed([sys.executable, "-c", LIBRARIES], ROOT, environment()) for _ in range(7))
    print(f"first ptsdk run (with the framework's config check): {first:.2f}s")
    print(f"python importing ptsdk's libraries alone (pydantic, click, PyYAML, importlib.metadata): {libraries:.2f}s")
    results: dict[str, dict[str, float]] = {}
    for side in ("ptsdk", "cold") if args.cold else ("ptsdk",):
        wall, own, cpu = median(rounds, side), median(rounds, f"{side}_own"), median(rounds, f"{side}_cpu")
        low, high = ratio_interval(rounds, side)
        # What ptsdk adds: its wall time outside the framework's command, the CPU it used while the command ran
        # (the most it can have taken from the framework), both measured within one process to a few ms, and,
        # with a warm start, how much longer the warm imports took beside ptsdk's checks than alone.
        warm = [r[f"{side}_imports"] for r in rounds if f"{side}_imports" in r]
        slower = max(0.0, statistics.median(warm) - median(rounds, "bare_import")) if warm else 0.0
        cost = 1 + (own + cpu + slower) / native
        results[side] = {
            "median_s": wall, "own_s": own, "cpu_during_run_s": cpu, "warm_imports_slower_s": slower, "cost": cost,
            "wall_ratio": wall / native, "wall_ratio_90": [low, high],
        }  # fmt: skip
        name = "ptsdk run" if side == "ptsdk" else "ptsdk run without the warm start (PTSDK_WARM_START=0)"
        imports = (
            f" + its warm imports' slowdown {slower:.3f}s ({statistics.median(warm):.2f}s beside ptsdk, "
            f"{median(rounds, 'bare_import'):.2f}s alone)"
            if warm
            else ""
        )
        print(
            f"{name}: median {wall:.2f}s against native {native:.2f}s, wall-time ratio {wall / native:.3f} "
            f"(90% interval {low:.3f}-{high:.3f}); ptsdk's own time {own:.3f}s + its CPU during the run {cpu:.3f}s"
            f"{imports} = {cost - 1:.1%} of the job"
        )
    cost, (low, _) = results["ptsdk"]["cost"], results["ptsdk"]["wall_ratio_90"]
    within = cost <= TARGET and low <= TARGET
    print(
        f"verdict: ptsdk adds {cost - 1:.1%} ({'within' if within else 'ABOVE'} the {TARGET - 1:.0%} target), and the "
        f"wall times {'agree' if low <= TARGET else 'DISAGREE: ptsdk run is slower beyond their noise'}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rounds": rounds,
                    "first_run_s": first,
                    "native_median_s": native,
                    "sides": results,
                    "libraries_start_s": libraries,
                    "steps": args.steps,
                    "backend": args.backend,
                    "target": TARGET,
                    "within": within,
                },  # fmt: skip
                indent=2,
            )
        )
    return 0 if within else 1


if __name__ == "__main__":
    raise SystemExit(main())
