"""`stedi-etl run-all` beside the same job in DuckDB SQL at scale 1, 10 and 100 (or 300 and 1000: 3 and 10 GB
of landing data, generated, measured, then deleted), as whole processes.

    python benchmarks/scale.py [--scales 1 10 100 300 1000] [--runs 3] [--runs-at-100 2] [--work DIR] [--keep]
                               [--output FILE]

(cores busy = CPU time / wall time: how much of the machine each kept busy.)

For each scale: generate clean landing data (`stedi-etl generate --scale N --clean`), then alternate
`stedi-etl run-all --landing X --lake Y -q` and `python benchmarks/duckdb_job.py` (fresh output folders each
run), timing each child process: wall time, CPU time (user + sys) and peak RSS (ru_maxrss), all from
os.wait4 of that child alone. Reports the median of the runs and stedi-etl / DuckDB, and checks that every
table stedi-etl published equals DuckDB's: the same row count and the same order-independent checksum
(Polars' hash_rows of each row, summed in two 32-bit halves so nothing overflows), computed the same way
for both. The machine (CPU model, cores, memory, load) goes into the report: others may share it.

    python benchmarks/scale.py --cron [--scales 10 100]

The cron case: a lake built from the landing data, then one new accelerometer file (a copy of the first,
every reading 1 ms later: about 1 % more readings) and `stedi-etl run-all` again, against DuckDB rebuilding
every table from all the landing data. The report gives both, their ratio and the files the cron run
parsed and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from stedi_etl.run.runner import STEPS

HERE = Path(__file__).resolve().parent
TABLES = tuple(step.table for step in STEPS)  # the five tables, in DAG order


@dataclass(frozen=True)
class Measured:
    wall: float
    cpu: float
    peak_mib: float
    output: str = field(default="", repr=False)


# Started from this process, a child's peak RSS would be at least this process's: Linux keeps a process's
# high-water RSS across exec, and a child spawned by fork or vfork starts with its parent's pages (this
# process holds every table of the last scale checked, 1.9 GiB after scale 300, which the scale-1000 runs
# of both tools reported as their own). So each child is forked by a small launcher instead, which times
# it with wait4 and reports wall, CPU and peak RSS of the child alone (FINDINGS §15).
_LAUNCHER = """
import json, os, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(command[0], command)
    except OSError as err:
        sys.stderr.write(f"cannot run {command[0]}: {err}\\n")
    os._exit(127)
_pid, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(report, "w") as out:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_kib": usage.ru_maxrss}, out)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(command: list[str], keep_output: bool = False, cwd: Path | None = None) -> Measured:
    """Run one child process to completion; its wall time, CPU time and peak RSS (and its stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile(suffix=".json") as report:
        child = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, report.name, *command],
            stdout=out if keep_output else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
        assert child.stderr is not None
        errors = child.stderr.read().decode(errors="replace")  # read while it runs: a full pipe blocks it
        status = child.wait()
        child.stderr.close()
        if status != 0:
            raise SystemExit(f"{' '.join(command)} failed ({status}): {errors[-2000:]}")
        usage = json.loads(Path(report.name).read_text())
        out.seek(0)
        output = out.read().decode()
    return Measured(usage["wall"], usage["cpu"], usage["peak_kib"] / 1024, output)


def checksum(frame: pl.DataFrame) -> tuple[int, int, int]:
    """(rows, sum of the low 32 bits, sum of the high 32 bits) of every row's hash: order-independent."""
    hashes = frame.hash_rows(seed=1)
    low = int((hashes % 2**32).cast(pl.Int64).sum())
    high = int((hashes // 2**32).cast(pl.Int64).sum())
    return frame.height, low, high


def compare(lake: Path, duck: Path) -> dict[str, bool]:
    from stedi_etl.contracts import table_contract
    from stedi_etl.lake.tables import read_table

    same = {}
    for table in TABLES:
        # The partition column (the day of the reading time) is stedi-etl's layout; DuckDB's job has none.
        ours = read_table(str(lake), table).drop(table_contract(table).partition_columns)
        theirs = pl.read_parquet(duck / f"{table}.parquet")
        same[table] = ours.schema == theirs.schema and checksum(ours) == checksum(theirs)
    return same


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    import duckdb

    return (
        f"{model}, {os.cpu_count()} cores (nproc), {memory} memory, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, Polars {pl.__version__}, DuckDB "
        f"{duckdb.__version__}; load average {load}"
    )


def add_cron_file(landing: Path) -> Path:
    """One new accelerometer file: the first one's readings, each 1 ms later (so every row is new)."""
    folder = landing / "accelerometer" / "landing"
    first = min(folder.glob("*.json"))
    lines = []
    for line in first.read_text().splitlines():
        if line.strip():
            reading = json.loads(line)
            reading["timestamp"] += 1
            lines.append(json.dumps(reading, separators=(",", ":")))
    new = folder / "accelerometer-cron.json"
    new.write_text("\n".join(lines) + "\n")
    return new


def cron(stedi: str, landing: Path, lake: Path, duck: Path, runs: int) -> tuple[str, list[str]]:
    """The cron case at one landing folder: the table row, and the tables that differ from DuckDB's."""
    ours: list[Measured] = []
    theirs: list[Measured] = []
    parsed = ""
    new_mb = 0.0
    for _ in range(runs):
        for folder in (lake, duck):
            shutil.rmtree(folder, ignore_errors=True)
        (landing / "accelerometer" / "landing" / "accelerometer-cron.json").unlink(missing_ok=True)
        full = measure([stedi, "run-all", "--landing", str(landing), "--lake", str(lake), "-q"])
        new = add_cron_file(landing)
        new_mb = new.stat().st_size / 1e6
        command = [stedi, "run-all", "--landing", str(landing), "--lake", str(lake), "--json"]
        ours.append(measure([*command, "--no-progress"], keep_output=True))
        result = json.loads(ours[-1].output)
        parsed = ", ".join(
            f"{s['dataset']} {s['files_parsed']}/{s['files_reused']}"
            for s in result["landing_results"]
            if s["rows"] is not None
        )
        duck_job = [sys.executable, str(HERE / "duckdb_job.py"), "--landing", str(landing), "--out"]
        theirs.append(measure([*duck_job, str(duck), "-q"]))
        print(f"cron: full build {full}; cron run {ours[-1]} / DuckDB {theirs[-1]}", file=sys.stderr)
    wrong = [t for t, ok in compare(lake, duck).items() if not ok]
    o = {k: statistics.median(getattr(m, k) for m in ours) for k in ("wall", "cpu", "peak_mib")}
    t = {k: statistics.median(getattr(m, k) for m in theirs) for k in ("wall", "cpu", "peak_mib")}
    row = (
        f"| {new_mb:.1f} | {o['wall']:.2f} | {t['wall']:.2f} | {o['wall'] / t['wall']:.2f} | "
        f"{o['cpu']:.2f} | {t['cpu']:.2f} | {o['peak_mib']:.0f} | {t['peak_mib']:.0f} | {parsed} | "
        + ("yes (5/5)" if not wrong else f"NO: {', '.join(wrong)}")
        + " |"
    )
    return row, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10, 100])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--runs-at-100", type=int, default=2, help="runs at scales of 100 and above")
    parser.add_argument("--work", type=Path, default=None, help="where data goes (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--output", type=Path, default=None, help="also write the Markdown here")
    parser.add_argument("--cron", action="store_true", help="measure a run after one new accelerometer file")
    args = parser.parse_args()

    stedi = shutil.which("stedi-etl") or "stedi-etl"
    work = args.work or Path(tempfile.mkdtemp(prefix="stedi-scale-"))
    lines = [f"Machine: {machine()} (at start)", ""]
    if args.cron:
        lines += [
            "| scale | landing MB | accelerometer rows | new file MB | cron run wall s | DuckDB full "
            "rebuild wall s | wall ratio | cron run CPU s | DuckDB CPU s | cron run peak RSS MiB | DuckDB "
            "peak RSS MiB | files parsed/reused | same tables |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        ]
    else:
        lines += [
            "| scale | landing MB | accelerometer rows | stedi-etl wall s | DuckDB wall s | wall ratio | "
            "stedi-etl CPU s | DuckDB CPU s | cores busy (stedi-etl / DuckDB) | stedi-etl peak RSS MiB | "
            "DuckDB peak RSS MiB | RSS ratio | same tables |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
        ]
    try:
        for scale in args.scales:
            landing = work / f"landing-{scale:g}"
            if not landing.exists():
                made = measure([stedi, "generate", str(landing), "--scale", str(scale), "--clean", "-q"])
                print(f"scale {scale:g}: generated in {made.wall:.1f}s", file=sys.stderr)
            size = sum(p.stat().st_size for p in landing.rglob("*.json"))
            readings = sum(1 for p in (landing / "accelerometer").rglob("*.json") for _ in p.open("rb"))
            runs = args.runs_at_100 if scale >= 100 else args.runs
            ours: list[Measured] = []
            theirs: list[Measured] = []
            lake, duck = work / "lake", work / "duck"
            if args.cron:
                row, _wrong = cron(stedi, landing, lake, duck, runs)
                lines.append(f"| {scale:g} | {size / 1e6:.0f} | {readings:,} {row}")
                (landing / "accelerometer" / "landing" / "accelerometer-cron.json").unlink(missing_ok=True)
                if not args.keep:
                    shutil.rmtree(landing, ignore_errors=True)
                continue
            for _ in range(runs):
                for folder in (lake, duck):
                    shutil.rmtree(folder, ignore_errors=True)
                ours.append(measure([stedi, "run-all", "--landing", str(landing), "--lake", str(lake), "-q"]))
                theirs.append(
                    measure(
                        [
                            sys.executable,
                            str(HERE / "duckdb_job.py"),
                            "--landing",
                            str(landing),
                            "--out",
                            str(duck),
                            "-q",
                        ]
                    )
                )
                print(f"scale {scale:g}: {ours[-1]} / {theirs[-1]}", file=sys.stderr)
            same = compare(lake, duck)
            wrong = [t for t, ok in same.items() if not ok]
            o = {k: statistics.median(getattr(m, k) for m in ours) for k in ("wall", "cpu", "peak_mib")}
            t = {k: statistics.median(getattr(m, k) for m in theirs) for k in ("wall", "cpu", "peak_mib")}
            lines.append(
                f"| {scale:g} | {size / 1e6:.0f} | {readings:,} | {o['wall']:.2f} | {t['wall']:.2f} | "
                f"{o['wall'] / t['wall']:.2f} | {o['cpu']:.2f} | {t['cpu']:.2f} | "
                f"{o['cpu'] / o['wall']:.2f} / {t['cpu'] / t['wall']:.2f} | {o['peak_mib']:.0f} | "
                f"{t['peak_mib']:.0f} | {o['peak_mib'] / t['peak_mib']:.2f} | "
                + ("yes (5/5)" if not wrong else f"NO: {', '.join(wrong)}")
                + " |"
            )
            if not args.keep:
                shutil.rmtree(landing, ignore_errors=True)
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    lines += [
        "",
        f"Runs: median of {args.runs} ({args.runs_at_100} at scale 100); load average at end "
        + " ".join(f"{x:.2f}" for x in os.getloadavg()),
    ]
    report = "\n".join(lines)
    print(report)
    if args.output:
        args.output.write_text(report + "\n")


if __name__ == "__main__":
    main()
