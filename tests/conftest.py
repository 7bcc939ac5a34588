"""Shared test fixtures: where the real STEDI data sets are, and small helpers every test file uses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The real landing data lives beside the repository (../shared/data); CI has it in the same place.
# STEDI_DATA overrides the location. A missing data set fails the tests that need it: it is never skipped.
DATA = Path(os.environ.get("STEDI_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
REPO = Path(__file__).resolve().parents[1]

# The zone pipeline issue's published counts: the lake tables built from each real data set, and the
# records each landing dataset holds. Every test that checks them reads them from here.
STARTER_COUNTS = {
    "customer_trusted": 482,
    "accelerometer_trusted": 40981,
    "customer_curated": 482,
    "step_trainer_trusted": 14460,
    "machine_learning_curated": 40981,
}
STEDI_2022_COUNTS = {
    "customer_trusted": 497,
    "accelerometer_trusted": 10316,
    "customer_curated": 137,
    "step_trainer_trusted": 29970,
    "machine_learning_curated": 0,
}
STARTER_LANDING = {"customer": 956, "accelerometer": 81273, "step_trainer": 28680}
STEDI_2022_LANDING = {"customer": 999, "accelerometer": 25126, "step_trainer": 239760}


def data_set(name: str) -> Path:
    path = DATA / name
    if not (path / "customer" / "landing").is_dir():
        pytest.fail(f"the {name} data set is missing at {path} (set STEDI_DATA to its parent folder)")
    return path


@pytest.fixture(scope="session")
def starter() -> Path:
    """The current public STEDI starter data (clean NDJSON)."""
    return data_set("stedi-starter")


@pytest.fixture(scope="session")
def stedi_2022() -> Path:
    """The older, messier STEDI release (trailing commas, timeStamp, duplicate customers)."""
    return data_set("stedi-2022")


def write_landing(root: Path, dataset: str, name: str, content: str | bytes) -> Path:
    """Write one landing file under root/<dataset>/landing/."""
    path = root / dataset / "landing" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# The smallest contract the loader accepts: one table "t" with one integer column "a".
MINIMAL_CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
name: t
customProperties: [{property: dataset, value: d}, {property: zone, value: z}]
schema:
  - name: t
    dataGranularityDescription: One row per thing.
    properties:
      - {name: a, logicalType: integer, classification: internal}
"""


@pytest.fixture(scope="session")
def starter_lake(starter: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake built once per session from stedi-starter; tests that change a lake copy it first."""
    from stedi_etl.run.runner import run

    lake = tmp_path_factory.mktemp("starter-lake")
    result = run(str(starter), str(lake))
    assert result.ok, [t.reason for t in result.failed]
    return lake


def break_step_trainer_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make step_trainer_trusted append its first row again, as Glue's re-runs did: it fails its contract."""
    from dataclasses import replace

    import polars as pl

    from stedi_etl.model import transforms
    from stedi_etl.run import runner as pipeline

    def duplicating(step_readings: pl.LazyFrame, customers: pl.LazyFrame) -> pl.LazyFrame:
        built = transforms.step_trainer_trusted(step_readings, customers)
        return pl.concat([built, built.head(1)])

    broken = tuple(
        replace(step, transform=duplicating) if step.table == "step_trainer_trusted" else step
        for step in pipeline.STEPS
    )
    monkeypatch.setattr(pipeline, "STEPS", broken)
