"""Two versions of stedi-etl, A and B, alternated on the same landing data: did a change make the cold build
faster, and by how much? (FINDINGS §15: the machine drifts by seconds between sittings, and a profile of
one run guesses wrong about what a change buys; only this decided.)

    python benchmarks/ab.py A_TREE B_TREE --landing DIR [--runs 3] [--work DIR]

A_TREE and B_TREE are source trees (checkouts, `git worktree add /tmp/a <commit>`); each run is
`python -m stedi_etl run-all -q` with that tree first on PYTHONPATH, started from outside both (a child's
working directory comes first on sys.path), with a fresh lake each time. Wall time, CPU time and peak RSS
come from os.wait4 of each child (scale.py's `measure`); the medians of each side and B / A are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import Measured, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs=2, type=Path, metavar="TREE", help="the A and B source trees")
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="where the lakes go (default: a temp dir)")
    args = parser.parse_args()
    trees = [tree.resolve() for tree in args.trees]
    for tree in trees:
        if not (tree / "stedi_etl" / "__init__.py").is_file():
            parser.error(f"{tree} holds no stedi_etl package")
    work = Path(tempfile.mkdtemp(dir=args.work, prefix="ab-"))
    measured: dict[Path, list[Measured]] = {tree: [] for tree in trees}
    try:
        for _ in range(args.runs):
            for tree in trees:
                lake = work / "lake"
                shutil.rmtree(lake, ignore_errors=True)
                os.environ["PYTHONPATH"] = str(tree)
                command = [sys.executable, "-m", "stedi_etl", "run-all", "--landing", str(args.landing)]
                run = measure([*command, "--lake", str(lake), "-q"], cwd=work)
                measured[tree].append(run)
                print(f"{tree}: {run.wall:.2f} s, {run.cpu:.2f} CPU-s, {run.peak_mib:.0f} MiB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    fields = ("wall", "cpu", "peak_mib")
    medians = {
        tree: tuple(statistics.median(getattr(m, field) for m in runs) for field in fields)
        for tree, runs in measured.items()
    }
    for label, tree in zip("AB", trees, strict=True):
        wall, cpu, peak = medians[tree]
        print(f"{label} {tree}: median {wall:.2f} s wall, {cpu:.2f} CPU-s, {peak:.0f} MiB peak")
    (a_wall, a_cpu, a_peak), (b_wall, b_cpu, b_peak) = medians[trees[0]], medians[trees[1]]
    print(f"B / A: wall {b_wall / a_wall:.3f}, CPU {b_cpu / a_cpu:.3f}, peak {b_peak / a_peak:.3f}")


if __name__ == "__main__":
    main()
