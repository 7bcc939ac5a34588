"""The stedi-etl job as DuckDB SQL: the yardstick the benchmark holds `stedi-etl run-all` against.

    python benchmarks/duckdb_job.py --landing LANDING --out OUT [--threads N]

Reads the same landing NDJSON (columns and types from the landing contracts, the names as spelled there) and
writes the five tables of stedi_etl/transforms.py with its default options, as OUT/<table>.parquet (zstd):
distinct rows, sorted by every column; consent means shareWithResearchAsOfDate is not null; accelerometer
readings of consenting customers; consenting customers with readings; Step Trainer readings of their
devices; each of those beside the same customer's readings at the same instant (serialNumber -> email ->
user). No contract checks and no quarantine: it is what a user would write in DuckDB by hand.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DUCK_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE"}
# The five tables of stedi_etl.run.runner.STEPS, named here rather than imported: importing the pipeline
# loads Polars, which would be timed as part of DuckDB's process.
TABLES = (
    "customer_trusted",
    "accelerometer_trusted",
    "customer_curated",
    "step_trainer_trusted",
    "machine_learning_curated",
)

TRANSFORMS = """
CREATE TEMP TABLE customer_trusted AS
  SELECT DISTINCT * FROM customer_landing WHERE shareWithResearchAsOfDate IS NOT NULL;
CREATE TEMP TABLE accelerometer_trusted AS
  SELECT DISTINCT a.* FROM accelerometer_landing a SEMI JOIN customer_trusted c ON a."user" = c.email;
CREATE TEMP TABLE customer_curated AS
  SELECT DISTINCT c.* FROM customer_trusted c SEMI JOIN accelerometer_trusted a ON a."user" = c.email;
CREATE TEMP TABLE step_trainer_trusted AS
  SELECT DISTINCT s.* FROM step_trainer_landing s
  SEMI JOIN customer_curated c ON s.serialNumber = c.serialNumber;
CREATE TEMP TABLE machine_learning_curated AS
  SELECT DISTINCT s.sensorReadingTime, s.serialNumber, s.distanceFromObject, a.x, a.y, a.z
  FROM step_trainer_trusted s
  JOIN (SELECT DISTINCT serialNumber, email FROM customer_curated) o ON s.serialNumber = o.serialNumber
  JOIN accelerometer_trusted a ON a."user" = o.email AND a."timestamp" = s.sensorReadingTime;
"""


def landing_views(landing: Path) -> str:
    """One view per landing dataset, typed by its contract (house rule: never restate columns)."""
    from stedi_etl.contracts import load_contract

    views = []
    for dataset in ("customer", "accelerometer", "step_trainer"):
        contract = load_contract(f"{dataset}_landing")
        columns = ", ".join(f"'{c.name}': '{DUCK_TYPES[c.logical_type]}'" for c in contract.columns)
        pattern = landing / dataset / "landing" / "**" / "*.json"
        views.append(
            f"CREATE VIEW {dataset}_landing AS SELECT * FROM read_json('{pattern}', "
            f"columns={{{columns}}}, format='newline_delimited');"
        )
    return "\n".join(views)


def run(landing: Path, out: Path, threads: int | None = None) -> dict[str, int]:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect()
    if threads:
        connection.execute(f"SET threads = {threads}")
    connection.execute(landing_views(landing))
    connection.execute(TRANSFORMS)
    counts = {}
    for table in TABLES:
        connection.execute(
            f"COPY (SELECT * FROM {table} ORDER BY ALL) TO '{out / table}.parquet' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        counts[table] = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    counts = run(args.landing, args.out, args.threads)
    if not args.quiet:
        print(f"{time.perf_counter() - started:.2f}s", counts)


if __name__ == "__main__":
    main()
