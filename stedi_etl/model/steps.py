"""The whole DAG as one declarative list: each table, the tables it is built from, the function that builds
it, and the run options it depends on. The meaning is in transforms.py; how a step is run is in run/."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stedi_etl.model import explain, transforms
from stedi_etl.model.explain import Explained
from stedi_etl.model.transforms import Consent, MlJoin

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class Step:
    """Build ``table`` by calling ``transform`` on ``inputs`` (plus the named run options as keywords)."""

    table: str
    inputs: tuple[str, ...]
    transform: Callable[..., pl.LazyFrame]
    options: tuple[str, ...] = ()
    # Why rows of the first input did not make it (model/explain.py), for the report's funnel.
    explain: Callable[..., Explained] | None = None
    # Input -> the column holding its reading time, for a table built day by day of its reading time
    # (run/partitions.py); the other inputs go whole to every day. ``partition_column`` is the output's.
    partition_by: Mapping[str, str] = field(default_factory=dict)
    partition_column: str = ""
    # What in the step's inputs a reader should know under the run's options, though no rule is broken
    # (model/explain.py): (check, rows or customers, description) each, reported as the table's warnings.
    notice: Callable[..., list[tuple[str, int, str]]] | None = None


# The whole DAG. Inputs named <dataset>_landing are read from the landing zone.
STEPS: tuple[Step, ...] = (
    Step(
        "customer_trusted",
        ("customer_landing",),
        transforms.customer_trusted,
        ("consent",),
        explain=explain.customer_trusted,
        notice=explain.consent_withdrawn,
    ),
    Step(
        "accelerometer_trusted",
        ("accelerometer_landing", "customer_trusted"),
        transforms.accelerometer_trusted,
        ("consent_cutoff",),
        explain=explain.accelerometer_trusted,
        notice=explain.near_miss_users,
        partition_by={"accelerometer_landing": "timestamp"},
        partition_column="timestamp",
    ),
    Step(
        "customer_curated",
        ("customer_trusted", "accelerometer_trusted"),
        transforms.customer_curated,
        explain=explain.customer_curated,
    ),
    Step(
        "step_trainer_trusted",
        ("step_trainer_landing", "customer_curated"),
        transforms.step_trainer_trusted,
        explain=explain.step_trainer_trusted,
        partition_by={"step_trainer_landing": "sensorReadingTime"},
        partition_column="sensorReadingTime",
    ),
    Step(
        "machine_learning_curated",
        ("step_trainer_trusted", "customer_curated", "accelerometer_trusted"),
        transforms.machine_learning_curated,
        ("ml_join",),
        explain=explain.machine_learning_curated,
        partition_by={"step_trainer_trusted": "sensorReadingTime", "accelerometer_trusted": "timestamp"},
        partition_column="sensorReadingTime",
    ),
)

ML_JOINS: tuple[MlJoin, ...] = ("same-customer", "timestamp")
CONSENTS: tuple[Consent, ...] = ("per-record", "latest-record")


@dataclass(frozen=True)
class RunOptions:
    ml_join: MlJoin = "same-customer"
    consent_cutoff: bool = False
    # per-record: every consenting record counts; latest-record: a customer's latest record decides.
    consent: Consent = "per-record"

    def waived(self, table: str) -> frozenset[str]:
        """Contract rules this run's options knowingly break; they are still checked, as warnings."""
        if table == "machine_learning_curated" and self.ml_join == "timestamp":
            # The rubric's join pairs readings of any customer and keeps every pair, so rows are not
            # same-customer and repeat where two customers' readings look alike once emails are dropped.
            return frozenset({"distinct_rows", "same_customer_pairs"})
        return frozenset()
