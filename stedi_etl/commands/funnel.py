"""The zone funnel: how many rows each table kept of the table it is refined from, and why the others left.

Each dataset is a chain, landing -> trusted -> curated, read off the DAG: a step's first input is the table
whose rows it refines (customer_trusted filters customer_landing; machine_learning_curated pairs
step_trainer_trusted's readings), its other inputs decide which rows stay. The chains therefore come from
``pipeline.STEPS``; the reasons come from one function per table below, which restate the transform's
semantics as counts (Polars over the landing frames and the lake's current versions, the very inputs each
step was built from). Every stage must add up exactly: rows of the source = rows kept + every loss.
When they do not (the landing data changed after the lake was built, say), ``adds_up`` says so instead of
the report quietly showing numbers that disagree.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

# Why rows left, in the words the report shows (a stable id -> a label).
REASONS = {
    "quarantined": "quarantined (could not be read)",
    "no_consent": "no research consent",
    "not_consenting_customer": "not a consenting customer's reading",
    "before_consent": "taken before the customer consented",
    "no_readings": "no accelerometer readings",
    "no_curated_serial": "serial number of no curated customer",
    "no_match": "no matching accelerometer reading",
    "duplicates": "duplicates",
    "other": "other (not explained by the report)",
}


@dataclass(frozen=True)
class Loss:
    reason: str  # a key of REASONS
    rows: int

    @property
    def label(self) -> str:
        return REASONS.get(self.reason, self.reason)


@dataclass(frozen=True)
class Stage:
    """One table of a chain and what it kept of the stage before it (``source``).

    A filter keeps rows: source rows = rows + losses. A join (machine_learning_curated) pairs rows: source
    rows = matched + losses, and the matched rows become ``pairs`` rows, less ``pair_losses``.
    """

    table: str
    zone: str
    rows: int | None  # None: the table has no published version
    source: str | None = None
    source_rows: int | None = None
    losses: tuple[Loss, ...] = ()
    pairs: int | None = None
    pair_losses: tuple[Loss, ...] = ()
    quarantined: int = 0  # landing stages: records that could not be read (counted in ``rows``)

    @property
    def is_join(self) -> bool:
        return self.pairs is not None

    @property
    def matched(self) -> int | None:
        """Source rows that went on (all of them kept, for a filter; paired, for a join)."""
        if self.source_rows is None:
            return None
        return self.source_rows - sum(loss.rows for loss in self.losses)

    @property
    def kept_share(self) -> float | None:
        """Rows of this stage per row of its source (above 1 for a join that pairs rows)."""
        if self.rows is None or not self.source_rows:
            return None
        return self.rows / self.source_rows

    @property
    def adds_up(self) -> bool:
        if self.source is None:
            return True
        if self.rows is None or self.source_rows is None:
            return False
        if self.pairs is None:
            return self.matched == self.rows
        return self.pairs - sum(loss.rows for loss in self.pair_losses) == self.rows


@dataclass(frozen=True)
class Chain:
    dataset: str
    stages: tuple[Stage, ...]

    @property
    def adds_up(self) -> bool:
        return all(stage.adds_up for stage in self.stages)


@dataclass(frozen=True)
class Funnel:
    chains: tuple[Chain, ...]

    @property
    def adds_up(self) -> bool:
        return all(chain.adds_up for chain in self.chains)

    def stage(self, table: str) -> Stage:
        for chain in self.chains:
            for stage in chain.stages:
                if stage.table == table:
                    return stage
        raise KeyError(table)


def chains() -> dict[str, tuple[str, ...]]:
    """Each dataset's tables in the order they refine one another, read off ``pipeline.STEPS``."""
    from stedi_etl.contracts import datasets as dataset_names
    from stedi_etl.run.runner import STEPS

    found = {}
    for dataset in dataset_names():
        tables = [f"{dataset}_landing"]
        while True:
            following = [s.table for s in STEPS if s.inputs[0] == tables[-1]]
            if not following:
                break
            tables.append(following[0])
        found[dataset] = tuple(tables)
    return found


Frames = Mapping[str, "pl.DataFrame"]
Explained = tuple[tuple[Loss, ...], int | None, tuple[Loss, ...]]  # losses, pairs (joins), pair losses


def build_funnel(
    landing: Frames,
    quarantined: Mapping[str, int],
    tables: Frames,
    rows: Mapping[str, int | None],
    options: Mapping[str, Mapping[str, Any]],
) -> Funnel:
    """The funnel from each dataset's landing frame (``landing[dataset]``) and quarantined record count,
    and the lake's current versions (``tables``; ``rows`` from their pointers, None where unpublished).

    ``options[table]`` are the run options the table's current version was built with.
    """
    from stedi_etl.contracts import load_contract
    from stedi_etl.run.runner import STEPS

    inputs_of = {step.table: step.inputs for step in STEPS}
    frames: dict[str, pl.DataFrame] = {f"{d}_landing": frame for d, frame in landing.items()}
    frames.update(tables)
    result = []
    for dataset, names in chains().items():
        first = Stage(
            names[0],
            "landing",
            landing[dataset].height + quarantined.get(dataset, 0),
            quarantined=quarantined.get(dataset, 0),
        )
        stages = [first]
        for previous, table in itertools.pairwise(names):
            source_rows = stages[-1].rows
            stage = Stage(table, load_contract(table).zone, rows.get(table), previous, source_rows)
            if stage.rows is not None and all(i in frames for i in inputs_of[table]):
                losses, pairs, pair_losses = explain(table, frames, options.get(table, {}))
                if previous == names[0] and first.quarantined:
                    losses = (Loss("quarantined", first.quarantined), *losses)
                stage = Stage(
                    table, stage.zone, stage.rows, previous, source_rows, losses, pairs, pair_losses
                )
            stages.append(stage)
        result.append(Chain(dataset, tuple(stages)))
    return Funnel(tuple(result))


def explain(table: str, frames: Frames, options: Mapping[str, Any]) -> Explained:
    """Why rows of ``table``'s source did not make it into ``table``."""
    explainer = EXPLAINERS.get(table)
    if explainer is None:  # a step added to the DAG without an explanation yet: say so, do not guess
        return (), None, ()
    return explainer(frames, options)


def _duplicates(frame: pl.DataFrame) -> int:
    return frame.height - frame.n_unique()


def _customer_trusted(frames: Frames, _options: Mapping[str, Any]) -> Explained:
    """transforms.customer_trusted: consenting records, distinct."""
    import polars as pl

    customers = frames["customer_landing"]
    consenting = customers.filter(pl.col("shareWithResearchAsOfDate").is_not_null())
    return (
        (
            Loss("no_consent", customers.height - consenting.height),
            Loss("duplicates", _duplicates(consenting)),
        ),
        None,
        (),
    )


def _accelerometer_trusted(frames: Frames, options: Mapping[str, Any]) -> Explained:
    """transforms.accelerometer_trusted: readings of a consenting customer (at or after consent, with the
    consent cutoff), distinct."""
    import polars as pl

    readings, customers = frames["accelerometer_landing"], frames["customer_trusted"]
    ours = readings.join(customers.select("email").unique(), left_on="user", right_on="email", how="semi")
    losses = [Loss("not_consenting_customer", readings.height - ours.height)]
    if options.get("consent_cutoff"):
        consented_at = customers.group_by("email").agg(pl.col("shareWithResearchAsOfDate").max().alias("_at"))
        after = ours.join(consented_at, left_on="user", right_on="email").filter(
            pl.col("timestamp") >= pl.col("_at")
        )
        losses.append(Loss("before_consent", ours.height - after.height))
        ours = after.select(readings.columns)
    losses.append(Loss("duplicates", _duplicates(ours)))
    return tuple(losses), None, ()


def _customer_curated(frames: Frames, _options: Mapping[str, Any]) -> Explained:
    """transforms.customer_curated: trusted customers with trusted readings, distinct."""
    customers, readings = frames["customer_trusted"], frames["accelerometer_trusted"]
    with_readings = customers.join(
        readings.select("user").unique(), left_on="email", right_on="user", how="semi"
    )
    return (
        (
            Loss("no_readings", customers.height - with_readings.height),
            Loss("duplicates", _duplicates(with_readings)),
        ),
        None,
        (),
    )


def _step_trainer_trusted(frames: Frames, _options: Mapping[str, Any]) -> Explained:
    """transforms.step_trainer_trusted: readings of a curated customer's device, distinct."""
    readings, customers = frames["step_trainer_landing"], frames["customer_curated"]
    owned = readings.join(customers.select("serialNumber").unique(), on="serialNumber", how="semi")
    return (
        (
            Loss("no_curated_serial", readings.height - owned.height),
            Loss("duplicates", _duplicates(owned)),
        ),
        None,
        (),
    )


def _machine_learning_curated(frames: Frames, options: Mapping[str, Any]) -> Explained:
    """transforms.machine_learning_curated: each step trainer reading paired with the accelerometer
    readings at that instant (of the device's owners, by default); pairs distinct in that mode only."""
    step, customers, readings = (
        frames["step_trainer_trusted"],
        frames["customer_curated"],
        frames["accelerometer_trusted"],
    )
    key = step.columns
    output = [*key, "x", "y", "z"]
    if options.get("ml_join") == "timestamp":
        pairs = step.join(readings, left_on="sensorReadingTime", right_on="timestamp")
        duplicate_pairs = 0  # the rubric's join keeps every pair
    else:
        owners = customers.select("serialNumber", "email").unique()
        pairs = step.join(owners, on="serialNumber").join(
            readings, left_on=["email", "sensorReadingTime"], right_on=["user", "timestamp"]
        )
        duplicate_pairs = _duplicates(pairs.select(output))
    matched = pairs.select(key).n_unique()
    return (
        (Loss("no_match", step.n_unique() - matched), Loss("duplicates", _duplicates(step))),
        pairs.height,
        (Loss("duplicates", duplicate_pairs),),
    )


EXPLAINERS: dict[str, Callable[[Frames, Mapping[str, Any]], Explained]] = {
    "customer_trusted": _customer_trusted,
    "accelerometer_trusted": _accelerometer_trusted,
    "customer_curated": _customer_curated,
    "step_trainer_trusted": _step_trainer_trusted,
    "machine_learning_curated": _machine_learning_curated,
}
