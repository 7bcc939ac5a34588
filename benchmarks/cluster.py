"""`stedi-etl run-all` in one process beside the same run on local Dask workers, and beside DuckDB's job, as
whole processes: what running on a cluster costs where there is nothing to gain (one machine, 2 cores).

    python benchmarks/cluster.py [--scale 100] [--workers 2] [--runs 2] [--work DIR] [--keep] [--output FILE]

Alternates, with fresh lakes each time: `stedi-etl run-all -q` (in-process), `stedi-etl run-all -q
--workers N` (N worker processes started by the run, one task at a time each: their start-up is timed too)
and `python benchmarks/duckdb_job.py`. Wall time, CPU time (user + sys, the run's process and every process
it started and reaped: the workers under their nannies) and peak RSS (of the largest single process: the
workers' memory is not added up) come from os.wait4 of each child. Reports the medians, the ratios, and
whether both lakes hold the same tables as DuckDB's output (scale.py's checksums).
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

from scale import HERE, Measured, compare, machine, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="where data goes (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--output", type=Path, default=None, help="also write the Markdown here")
    args = parser.parse_args()

    stedi = shutil.which("stedi-etl") or "stedi-etl"
    work = args.work or Path(tempfile.mkdtemp(prefix="stedi-cluster-"))
    landing = work / f"landing-{args.scale:g}"
    generated = not landing.exists()
    if generated:
        made = measure([stedi, "generate", str(landing), "--scale", str(args.scale), "--clean", "-q"])
        print(f"scale {args.scale:g}: generated in {made.wall:.1f}s", file=sys.stderr)
    lakes = {"in-process": work / "lake-in-process", "workers": work / "lake-workers"}
    duck = work / "duck"
    measured: dict[str, list[Measured]] = {"in-process": [], "workers": [], "duckdb": []}
    try:
        for _ in range(args.runs):
            for folder in (*lakes.values(), duck):
                shutil.rmtree(folder, ignore_errors=True)
            run_all = [stedi, "run-all", "--landing", str(landing), "-q", "--lake"]
            measured["in-process"].append(measure([*run_all, str(lakes["in-process"])]))
            measured["workers"].append(
                measure([*run_all, str(lakes["workers"]), "--workers", str(args.workers)])
            )
            measured["duckdb"].append(
                measure(
                    [
                        sys.executable,
                        str(HERE / "duckdb_job.py"),
                        "--landing",
                        str(landing),
                        "--out",
                        str(duck),
                    ]
                )
            )
            print({name: runs[-1] for name, runs in measured.items()}, file=sys.stderr)
        same = {name: all(compare(lake, duck).values()) for name, lake in lakes.items()}
    finally:
        if generated and not args.keep:
            shutil.rmtree(landing, ignore_errors=True)
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    median = {
        name: {k: statistics.median(getattr(m, k) for m in runs) for k in ("wall", "cpu", "peak_mib")}
        for name, runs in measured.items()
    }
    base = median["in-process"]
    label = {
        "in-process": "in-process",
        "workers": f"{args.workers} local Dask workers",
        "duckdb": "DuckDB job",
    }
    lines = [
        f"Machine: {machine()}",
        "",
        f"Scale {args.scale:g}, median of {args.runs} runs.",
        "",
        "| run | wall s | CPU s | cores busy | peak RSS MiB (largest process) | wall / in-process "
        "| same tables |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, m in median.items():
        check = "" if name == "duckdb" else ("yes" if same[name] else "NO")
        lines.append(
            f"| {label[name]} | {m['wall']:.2f} | {m['cpu']:.2f} | {m['cpu'] / m['wall']:.2f} | "
            f"{m['peak_mib']:.0f} | {m['wall'] / base['wall']:.2f} | {check} |"
        )
    lines += ["", "Load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg())]
    report = "\n".join(lines)
    print(report)
    if args.output:
        args.output.write_text(report + "\n")


if __name__ == "__main__":
    main()
