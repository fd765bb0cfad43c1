#!/usr/bin/env python
"""Fuzz `ptsdk validate` with hostile job files, longer than the test suite does.

    .venv/bin/python tools/fuzz_jobs.py --cases 10000 --seed 1 [--backend trl] [--show 5]

Each case (see tools/fuzzing.py: a valid job with hostile values, rendered as JSON or YAML and
sometimes damaged as text, or random bytes) is written to a scratch folder and run through the real
CLI entry in this process. A case is valid (exit 0), rejected (exit 2 with a bounded `error:`
message) or a failure (a traceback, another exit code, or an unbounded message). Prints the counts
and the time; exits 1 and prints the first failing inputs if any case failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from fuzzing import Case, Outcome, hostile_jobs, prepare_dir, random_files, run_case
from hypothesis import HealthCheck, Phase, given, seed, settings, strategies as st


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases to run (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed; the same seed gives the same cases")
    parser.add_argument("--backend", help="also pass --backend B to validate (checks the backend's feasibility code)")
    parser.add_argument("--show", type=int, default=5, help="failing cases to print (default 5)")
    args = parser.parse_args(argv)

    counts: Counter[str] = Counter()
    failures: list[tuple[Case, Outcome]] = []
    slowest = (0.0, "")
    extra = ("--backend", args.backend) if args.backend else ()
    # One case in ten is random bytes; the rest are hostile jobs.
    cases = st.integers(0, 9).flatmap(lambda i: random_files if i == 0 else hostile_jobs())

    with tempfile.TemporaryDirectory(prefix="ptsdk-fuzz-") as scratch:
        folder = Path(scratch)
        prepare_dir(folder)

        @seed(args.seed)
        @settings(
            max_examples=args.cases,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases)
        def run(case: Case) -> None:
            nonlocal slowest
            started = time.perf_counter()
            result = run_case(folder, case, extra)
            took = time.perf_counter() - started
            if took > slowest[0]:
                slowest = (took, case.describe(120))
            counts[result.kind] += 1
            if result.kind == "failure" and len(failures) < args.show:
                failures.append((case, result))
            done = sum(counts.values())
            if done % 1000 == 0:
                print(f"  {done:,} cases ...", file=sys.stderr, flush=True)

        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started

    total = sum(counts.values())
    print(
        f"{total:,} cases in {elapsed:.1f}s ({1000 * elapsed / max(total, 1):.1f} ms each, seed {args.seed}): "
        f"{counts['valid']:,} valid, {counts['rejected']:,} rejected, {counts['failure']:,} failures"
    )
    print(f"slowest case: {slowest[0]:.2f}s {slowest[1]}")
    for case, result in failures:
        print(f"\nFAILURE: {result.problem.strip().splitlines()[-1] if result.problem else ''}")
        print(f"  input: {case.describe()}")
        print(f"  exit code: {result.code}")
        print("  " + (result.problem or result.err)[-3000:].replace("\n", "\n  "))
    return 1 if counts["failure"] else 0


if __name__ == "__main__":
    sys.exit(main())
