"""Landing readers side by side on the same NDJSON files: which one the fast path should use (issue 28).

    python benchmarks/readers.py LANDING [--runs 3]

For the accelerometer and step_trainer files of LANDING (a `stedi-etl generate` folder), each reader turns
every file into a typed frame; reported per reader: wall and CPU seconds (median), MB/s and rows.

- ``stedi-etl`` — ``read_landing`` as a run calls it (its reader plus every exactness guard and row check);
- ``polars bytes`` — the files read into Python ``bytes`` first, then ``pl.scan_ndjson`` over the bytes;
- ``polars paths`` — ``pl.scan_ndjson`` over the files' paths (no Python copy of their bytes);
- ``duckdb`` — ``read_json(files, columns=…, format='newline_delimited')`` into an Arrow-backed frame.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from stedi_etl.contracts import landing_table, load_contract
from stedi_etl.lake.storage import open_store
from stedi_etl.landing.read import read_landing

DATASETS = ("accelerometer", "step_trainer")
DUCK_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE"}


def files_of(landing: Path, dataset: str) -> list[Path]:
    return sorted((landing / dataset / "landing").rglob("*.json"))


def ours(landing: Path, dataset: str) -> int:
    return read_landing(open_store(str(landing)), dataset).rows


def polars_bytes(landing: Path, dataset: str) -> int:
    schema = load_contract(landing_table(dataset)).polars_schema()
    blobs = [path.read_bytes() for path in files_of(landing, dataset)]
    frames = pl.collect_all([pl.scan_ndjson(blob, schema=schema) for blob in blobs])
    return sum(frame.height for frame in frames)


def polars_paths(landing: Path, dataset: str) -> int:
    schema = load_contract(landing_table(dataset)).polars_schema()
    frames = pl.collect_all([pl.scan_ndjson(path, schema=schema) for path in files_of(landing, dataset)])
    return sum(frame.height for frame in frames)


def duck(landing: Path, dataset: str) -> int:
    contract = load_contract(landing_table(dataset))
    columns = ", ".join(f"'{c.name}': '{DUCK_TYPES[c.logical_type]}'" for c in contract.columns)
    files = [str(path) for path in files_of(landing, dataset)]
    connection = duckdb.connect()
    frame = connection.sql(
        f"SELECT * FROM read_json(?, columns={{{columns}}}, format='newline_delimited')", params=[files]
    ).pl()
    return frame.height


READERS: dict[str, Callable[[Path, str], int]] = {
    "stedi-etl": ours,
    "polars bytes": polars_bytes,
    "polars paths": polars_paths,
    "duckdb": duck,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("landing", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = sum(p.stat().st_size for d in DATASETS for p in files_of(args.landing, d))
    print(f"{size / 1e6:.0f} MB of NDJSON in {sum(len(files_of(args.landing, d)) for d in DATASETS)} files")
    print("| reader | wall s | CPU s | MB/s (wall) | rows |")
    print("|---|---:|---:|---:|---:|")
    for name, reader in READERS.items():
        walls, cpus, rows = [], [], 0
        for _ in range(args.runs):
            wall, cpu = time.perf_counter(), time.process_time()
            rows = sum(reader(args.landing, d) for d in DATASETS)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        wall_s, cpu_s = statistics.median(walls), statistics.median(cpus)
        print(f"| {name} | {wall_s:.2f} | {cpu_s:.2f} | {size / 1e6 / wall_s:.0f} | {rows:,} |")


if __name__ == "__main__":
    main()
