"""pytest-benchmark timings of the landing reader and of each transform, on the public starter data.

Benchmarking is off by default (``--benchmark-disable`` in pyproject's addopts): in CI each case runs once as
an ordinary test and fails on a wrong result. Measure with
``python -m pytest tests/test_benchmarks.py --benchmark-enable``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from stedi_etl.lake.storage import Store
from stedi_etl.landing.read import read_landing
from stedi_etl.model import transforms
from tests.conftest import STARTER_COUNTS, STARTER_LANDING

# Published sizes of the starter set and of the tables built from it.
LANDING_ROWS = STARTER_LANDING
STARTER_TABLES = STARTER_COUNTS


@pytest.fixture(scope="module")
def frames(starter: Path) -> dict[str, pl.DataFrame]:
    """The starter's landing frames and every table built from them, to feed each transform alone."""
    store = Store(str(starter))
    built = {d: read_landing(store, d).frame for d in LANDING_ROWS}
    built["customer_trusted"] = transforms.customer_trusted(built["customer"].lazy()).collect()
    built["accelerometer_trusted"] = transforms.accelerometer_trusted(
        built["accelerometer"].lazy(), built["customer_trusted"].lazy()
    ).collect()
    built["customer_curated"] = transforms.customer_curated(
        built["customer_trusted"].lazy(), built["accelerometer_trusted"].lazy()
    ).collect()
    built["step_trainer_trusted"] = transforms.step_trainer_trusted(
        built["step_trainer"].lazy(), built["customer_curated"].lazy()
    ).collect()
    return built


@pytest.mark.parametrize("dataset", list(LANDING_ROWS))
def test_landing_reader_on_the_starter_set(benchmark: Any, starter: Path, dataset: str) -> None:
    store = Store(str(starter))
    read = benchmark(read_landing, store, dataset)
    assert (read.rows, read.quarantined) == (LANDING_ROWS[dataset], 0)
    assert read.report.ok


def test_landing_reader_on_trailing_commas(benchmark: Any, stedi_2022: Path) -> None:
    read = benchmark(read_landing, Store(str(stedi_2022)), "step_trainer")
    assert (read.rows, read.quarantined) == (239_760, 0)
    assert {f.path for f in read.files} == {"native"}


TRANSFORM_CASES = {
    "customer_trusted": (transforms.customer_trusted, ("customer",), {}),
    "accelerometer_trusted": (transforms.accelerometer_trusted, ("accelerometer", "customer_trusted"), {}),
    "customer_curated": (transforms.customer_curated, ("customer_trusted", "accelerometer_trusted"), {}),
    "step_trainer_trusted": (transforms.step_trainer_trusted, ("step_trainer", "customer_curated"), {}),
    "machine_learning_curated": (
        transforms.machine_learning_curated,
        ("step_trainer_trusted", "customer_curated", "accelerometer_trusted"),
        {},
    ),
}


@pytest.mark.parametrize("table", list(TRANSFORM_CASES))
def test_transform_on_the_starter_set(benchmark: Any, frames: dict[str, pl.DataFrame], table: str) -> None:
    transform, inputs, options = TRANSFORM_CASES[table]

    def build() -> pl.DataFrame:
        return transform(*(frames[i].lazy() for i in inputs), **options).collect()

    built = benchmark(build)
    assert built.height == STARTER_TABLES[table]
    assert built.height == built.unique().height


def test_timestamp_ml_join_on_the_starter_set(benchmark: Any, frames: dict[str, pl.DataFrame]) -> None:
    def build() -> pl.DataFrame:
        return transforms.machine_learning_curated(
            frames["step_trainer_trusted"].lazy(),
            frames["customer_curated"].lazy(),
            frames["accelerometer_trusted"].lazy(),
            ml_join="timestamp",
        ).collect()

    assert benchmark(build).height == 43_681


def test_the_duckdb_job_names_the_pipelines_tables() -> None:
    """benchmarks/duckdb_job.py lists the tables itself (importing the pipeline would time Polars' import
    as DuckDB's); it must list the same ones."""
    import importlib.util

    from stedi_etl.run.runner import STEPS
    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("duckdb_job", REPO / "benchmarks" / "duckdb_job.py")
    job = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(job)  # type: ignore[union-attr]
    assert tuple(step.table for step in STEPS) == job.TABLES
