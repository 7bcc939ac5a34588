"""Benchmarks: stedi-etl beside DuckDB on the same data, in one run, reported as times and ratios.

    python benchmarks/bench.py [--data ../shared/data] [--repeat 5]

1. Landing reader throughput (MB/s of JSON in, typed frame out): the native path on clean NDJSON
   (stedi-starter) and on stedi-2022's layout (trailing commas, `timeStamp`), the tolerant path on the same
   bytes, and DuckDB's read_json with the same explicit columns.
2. The whole job on stedi-starter: `pipeline.run` (read, validate every input and output with pandera,
   transform, write zstd Parquet, publish) beside the same five tables as DuckDB SQL (read, transform,
   write zstd Parquet; no validation). Both in this process, warm; best of --repeat.
3. Start-up: `stedi-etl --help` and a cold `stedi-etl run-all` as a new process.
4. With --scale N (default 10): the landing reader on generated clean data at that scale and on the same
   records in stedi-2022's layout (a trailing comma after every record, no final newline), in wall time and
   in CPU time (the machine is shared; CPU time is what the reader itself spends).

Times are the best of --repeat runs (the least disturbed by the machine), so ratios compare like with like.
Nothing here asserts a speed: it prints what it measured.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from stedi_etl.contracts import load_contract
from stedi_etl.lake.storage import Store
from stedi_etl.landing.read import read_landing, read_tolerant
from stedi_etl.run import runner as pipeline

REPO = Path(__file__).resolve().parents[1]
DUCK_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE"}


def best(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def landing_bytes(root: Path, dataset: str) -> int:
    return sum(p.stat().st_size for p in (root / dataset / "landing").rglob("*") if p.is_file())


def duckdb_read(root: Path, dataset: str, spelled: dict[str, str] | None = None) -> int:
    contract = load_contract(f"{dataset}_landing")
    columns = ", ".join(
        f"'{(spelled or {}).get(c.name, c.name)}': '{DUCK_TYPES[c.logical_type]}'" for c in contract.columns
    )
    pattern = str(root / dataset / "landing" / "*.json")
    # Materialise every column, as the landing reader does; a bare count(*) would let DuckDB skip parsing.
    connection = duckdb.connect()
    connection.execute(
        f"CREATE TABLE t AS SELECT * FROM read_json('{pattern}', columns={{{columns}}}, "
        "format='newline_delimited')"
    )
    return connection.execute("SELECT count(*) FROM t").fetchall()[0][0]


def landing_throughput(data: Path, repeat: int) -> list[tuple[str, float, float, float, str]]:
    rows = []
    cases = [
        ("stedi-starter", "accelerometer", None),
        ("stedi-starter", "step_trainer", None),
        ("stedi-2022", "accelerometer", {"timestamp": "timeStamp"}),
        ("stedi-2022", "step_trainer", None),
    ]
    for data_set, dataset, spelled in cases:
        root = data / data_set
        size = landing_bytes(root, dataset)
        store = Store(str(root))
        read = read_landing(store, dataset)
        paths = ",".join(sorted({f.path for f in read.files}))
        ours = best(repeat, lambda store=store, dataset=dataset: read_landing(store, dataset))
        blobs = [p.read_bytes() for p in sorted((root / dataset / "landing").glob("*.json"))]
        contract = load_contract(f"{dataset}_landing")
        tolerant = best(
            max(1, repeat // 2),
            lambda blobs=blobs, contract=contract: [read_tolerant(b, "x", contract) for b in blobs],
        )
        try:
            duck = best(
                repeat,
                lambda root=root, dataset=dataset, spelled=spelled: duckdb_read(root, dataset, spelled),
            )
        except duckdb.Error as err:
            duck = float("nan")  # the ratio prints as nan
            paths += f" (DuckDB: {str(err).splitlines()[0][:60]})"
        rows.append(
            (
                f"{data_set} {dataset} ({size / 1e6:.1f} MB, {paths})",
                size / ours,
                size / tolerant,
                size / duck,
                "",
            )
        )
    return rows


DUCKDB_JOB = """
CREATE OR REPLACE TABLE customer_landing AS SELECT * FROM read_json(
  '{root}/customer/landing/*.json', columns={{{customer}}}, format='newline_delimited');
CREATE OR REPLACE TABLE accelerometer_landing AS SELECT * FROM read_json(
  '{root}/accelerometer/landing/*.json', columns={{{accelerometer}}}, format='newline_delimited');
CREATE OR REPLACE TABLE step_trainer_landing AS SELECT * FROM read_json(
  '{root}/step_trainer/landing/*.json', columns={{{step_trainer}}}, format='newline_delimited');
CREATE OR REPLACE TABLE customer_trusted AS
  SELECT DISTINCT * FROM customer_landing WHERE shareWithResearchAsOfDate IS NOT NULL ORDER BY ALL;
CREATE OR REPLACE TABLE accelerometer_trusted AS
  SELECT DISTINCT a.* FROM accelerometer_landing a SEMI JOIN customer_trusted c ON a."user" = c.email
  ORDER BY ALL;
CREATE OR REPLACE TABLE customer_curated AS
  SELECT DISTINCT c.* FROM customer_trusted c SEMI JOIN accelerometer_trusted a ON a."user" = c.email
  ORDER BY ALL;
CREATE OR REPLACE TABLE step_trainer_trusted AS
  SELECT DISTINCT s.* FROM step_trainer_landing s
  SEMI JOIN customer_curated c ON s.serialNumber = c.serialNumber ORDER BY ALL;
CREATE OR REPLACE TABLE machine_learning_curated AS
  SELECT DISTINCT s.sensorReadingTime, s.serialNumber, s.distanceFromObject, a.x, a.y, a.z
  FROM step_trainer_trusted s
  JOIN (SELECT DISTINCT serialNumber, email FROM customer_curated) o ON s.serialNumber = o.serialNumber
  JOIN accelerometer_trusted a ON a."user" = o.email AND a."timestamp" = s.sensorReadingTime ORDER BY ALL;
"""
DUCKDB_TABLES = list(pipeline.STEPS)


def duckdb_job(root: Path, out: Path) -> dict[str, int]:
    columns = {}
    for dataset in ("customer", "accelerometer", "step_trainer"):
        contract = load_contract(f"{dataset}_landing")
        columns[dataset] = ", ".join(f"'{c.name}': '{DUCK_TYPES[c.logical_type]}'" for c in contract.columns)
    connection = duckdb.connect()
    connection.execute(DUCKDB_JOB.format(root=root, **columns))
    found = {}
    for step in DUCKDB_TABLES:
        connection.execute(
            f"COPY {step.table} TO '{out / step.table}.parquet' (FORMAT parquet, COMPRESSION zstd)"
        )
        found[step.table] = connection.execute(f"SELECT count(*) FROM {step.table}").fetchall()[0][0]
    return found


def whole_job(data: Path, repeat: int) -> tuple[float, float, dict[str, int], dict[str, int]]:
    root = data / "stedi-starter"
    with tempfile.TemporaryDirectory() as ours_dir, tempfile.TemporaryDirectory() as duck_dir:
        result = pipeline.run(str(root), ours_dir)
        ours_counts = {t.table: t.rows for t in result.tables}
        # A full refresh each time: an incremental re-run of unchanged data reads and builds nothing.
        ours = best(repeat, lambda: pipeline.run(str(root), ours_dir, full_refresh=True))
        duck_counts = duckdb_job(root, Path(duck_dir))
        duck = best(repeat, lambda: duckdb_job(root, Path(duck_dir)))
    return ours, duck, ours_counts, duck_counts  # type: ignore[return-value]


def start_up(data: Path, repeat: int) -> tuple[float, float]:
    executable = shutil.which("stedi-etl") or "stedi-etl"
    help_time = best(repeat, lambda: subprocess.run([executable, "--help"], capture_output=True, check=True))
    with tempfile.TemporaryDirectory() as lake:
        cold = best(
            max(1, repeat // 2),
            lambda: subprocess.run(
                [
                    executable,
                    "run-all",
                    "--landing",
                    str(data / "stedi-starter"),
                    "--lake",
                    lake,
                    "-q",
                    "--full-refresh",
                ],
                capture_output=True,
                check=True,
            ),
        )
    return help_time, cold


def trailing_comma_copy(source: Path, target: Path) -> None:
    """``source``'s landing files as stedi-2022 ships them: a comma after every record, no final newline."""
    for path in source.rglob("*.json"):
        copy = target / path.relative_to(source)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes().replace(b"}\n", b"},\n").rstrip(b"\n"))


def scaled_throughput(scale: float, repeat: int) -> list[tuple[str, float, float]]:
    """(label, MB/s by wall time, MB/s by CPU time) of read_landing on generated data, both layouts."""
    from stedi_etl.synth.scale import generate_scaled

    rows = []
    with tempfile.TemporaryDirectory() as work:
        clean, commas = Path(work) / "clean", Path(work) / "commas"
        generate_scaled(str(clean), scale=scale, clean=True)
        trailing_comma_copy(clean, commas)
        for layout, root in (("clean NDJSON", clean), ("trailing commas", commas)):
            for dataset in ("accelerometer", "step_trainer"):
                store = Store(str(root))
                size = landing_bytes(root, dataset)
                walls, cpus = [], []
                for _ in range(repeat):
                    started, cpu = time.perf_counter(), time.process_time()
                    read = read_landing(store, dataset)
                    walls.append(time.perf_counter() - started)
                    cpus.append(time.process_time() - cpu)
                assert read.quarantined == 0 and {f.path for f in read.files} == {"native"}
                label = f"scale {scale:g} {dataset}, {layout} ({size / 1e6:.0f} MB)"
                rows.append((label, size / min(walls), size / min(cpus)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scale", type=float, default=10, help="generated data for section 4 (0: skip)")
    args = parser.parse_args()
    print(f"polars {pl.__version__}, duckdb {duckdb.__version__}, python {sys.version.split()[0]}")

    print("\n## Landing reader throughput (MB/s, higher is better)\n")
    print("| landing files | stedi-etl | tolerant path alone | DuckDB read_json | stedi-etl / DuckDB |")
    print("|---|---:|---:|---:|---:|")
    for label, ours, tolerant, duck, _ in landing_throughput(args.data, args.repeat):
        ratio = ours / duck
        print(f"| {label} | {ours / 1e6:.0f} | {tolerant / 1e6:.0f} | {duck / 1e6:.0f} | {ratio:.2f} |")

    if args.scale:
        print(
            f"\n## Landing reader on generated data at scale {args.scale:g} (MB/s, best of {args.repeat})\n"
        )
        print("| landing files | by wall time | by CPU time |")
        print("|---|---:|---:|")
        for label, by_wall, by_cpu in scaled_throughput(args.scale, args.repeat):
            print(f"| {label} | {by_wall / 1e6:.0f} | {by_cpu / 1e6:.0f} |")

    ours, duck, ours_counts, duck_counts = whole_job(args.data, args.repeat)
    print("\n## The whole job on stedi-starter (seconds, lower is better)\n")
    print("| stedi-etl run (validated) | DuckDB SQL (not validated) | stedi-etl / DuckDB | same counts |")
    print("|---:|---:|---:|---|")
    print(f"| {ours:.3f} | {duck:.3f} | {ours / duck:.2f} | {ours_counts == duck_counts} |")

    help_time, cold = start_up(args.data, args.repeat)
    print("\n## Start-up (seconds)\n")
    print(f"| `stedi-etl --help` | {help_time:.3f} |")
    print(f"| cold `stedi-etl run-all -q` on stedi-starter | {cold:.3f} |")


if __name__ == "__main__":
    main()
