"""`ptsdk env create` with pip and with uv, from cold caches: wall times, and whether the two agree.

    python bench/bench_envs.py [--backends trl axolotl] [--installers pip uv] [--rounds 1] [--home /tmp/envbench]

Each build is a fresh `ptsdk env create BACKEND --force` with PTSDK_INSTALLER set, into its own scratch
PTSDK_HOME (<home>/<installer>; never the shared ~/.cache/ptsdk), with PIP_CACHE_DIR and UV_CACHE_DIR pointed
at new empty folders, which are deleted afterwards. The installers alternate (pip, uv, then uv, pip for the
next backend or round) so that load from other work on the machine falls on both; the load average before
each build is reported with it. Then the `pip freeze` recorded in each environment's marker is compared
between installers: the same packages at the same versions, or the differences.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MARKER = "ptsdk-env.json"  # ptsdk.envs.READY_MARKER; read back from the built environment


@dataclass
class Build:
    backend: str
    installer: str
    installer_version: str
    wall_s: float
    load_before: float  # 1-minute load average when the build started
    size_mb: int
    packages: list[str]  # the `pip freeze` in the environment's marker

    @property
    def torch(self) -> str:
        return next((p for p in self.packages if p.lower().startswith("torch==")), "-")


def build(backend: str, installer: str, home: Path) -> Build:
    """One cold build; returns its wall time, the load before it, and its freeze."""
    with tempfile.TemporaryDirectory(prefix=f"envbench-{installer}-cache-") as cache:
        env = {
            **os.environ,
            "PTSDK_HOME": str(home / installer),
            "PTSDK_INSTALLER": installer,
            "PIP_CACHE_DIR": str(Path(cache) / "pip"),
            "UV_CACHE_DIR": str(Path(cache) / "uv"),
        }
        load = os.getloadavg()[0]
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "ptsdk", "env", "create", backend, "--force"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wall = time.perf_counter() - start
    target = home / installer / "envs" / backend
    if proc.returncode != 0:
        log = home / installer / "envs" / f"{backend}.build.log"
        sys.exit(f"{backend} with {installer} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\nlog: {log}")
    marker = json.loads((target / MARKER).read_text())
    return Build(
        backend=backend,
        installer=marker.get("installer", "?"),
        installer_version=marker.get("installer_version", ""),
        wall_s=round(wall, 1),
        load_before=round(load, 2),
        size_mb=round(sum(f.stat().st_size for f in target.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20),
        packages=marker["packages"],
    )


def freeze_diff(a: list[str], b: list[str]) -> list[str]:
    """Lines in one freeze and not the other ('-' a's, '+' b's); names compared as normalized names."""
    norm = {line.lower().replace("_", "-"): line for line in a}
    other = {line.lower().replace("_", "-"): line for line in b}
    return [f"- {norm[k]}" for k in sorted(norm.keys() - other.keys())] + [
        f"+ {other[k]}" for k in sorted(other.keys() - norm.keys())
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=["trl", "axolotl"])
    parser.add_argument("--installers", nargs="+", default=["pip", "uv"], choices=["pip", "uv"])
    parser.add_argument("--rounds", type=int, default=1, help="Builds of each backend with each installer.")
    parser.add_argument("--home", type=Path, default=Path("/tmp/envbench"), help="Scratch PTSDK_HOME root.")
    parser.add_argument("--keep", action="store_true", help="Keep the built environments under --home.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    if args.home.resolve() == (Path.home() / ".cache" / "ptsdk").resolve():
        sys.exit("--home must be a scratch folder, not the shared ~/.cache/ptsdk")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    results: list[Build] = []
    order = list(args.installers)
    for _ in range(args.rounds):
        for backend in args.backends:
            for installer in order:
                print(f"building {backend} with {installer} ...", flush=True)
                row = build(backend, installer, args.home)
                print(f"  {row.wall_s} s (load before {row.load_before})", flush=True)
                results.append(row)
                if not args.keep:
                    shutil.rmtree(args.home / installer / "envs" / backend, ignore_errors=True)
            order.reverse()  # the next pair starts with the other installer
    print()
    print(f"{'backend':<9} {'installer':<14} {'wall s':>8} {'load':>5} {'MB':>6} {'pkgs':>5}  torch")
    verdicts: dict[str, str] = {}
    for backend in args.backends:
        rows = [r for r in results if r.backend == backend]
        diffs = sorted({line for r in rows[1:] for line in freeze_diff(rows[0].packages, r.packages)})
        verdicts[backend] = "same" if not diffs else "DIFFERENT:\n    " + "\n    ".join(diffs)
        for r in rows:
            name = f"{r.installer} {r.installer_version}"
            sizes = f"{r.wall_s:>8} {r.load_before:>5} {r.size_mb:>6} {len(r.packages):>5}"
            print(f"{backend:<9} {name:<14} {sizes}  {r.torch}")
    for backend, verdict in verdicts.items():
        print(f"{backend}: freezes {verdict}")
    if args.json:
        args.json.write_text(json.dumps({"results": [asdict(r) for r in results], "freezes": verdicts}, indent=1))
    return 0 if all(v == "same" for v in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
