"""The zone funnel: how many rows each table kept of the table it is refined from, and why the others left.

Each dataset is a chain, landing -> trusted -> curated, read off the DAG: a step's first input is the table
whose rows it refines (customer_trusted filters customer_landing; machine_learning_curated pairs
step_trainer_trusted's readings), its other inputs decide which rows stay. The chains therefore come from
``STEPS``; the reasons come from one function per table below, which restate the transform's
semantics as counts (Polars over the landing frames and the lake's current versions, the very inputs each
step was built from). Every stage must add up exactly: rows of the source = rows kept + every loss.
When they do not (the landing data changed after the lake was built, say), ``adds_up`` says so instead of
the report quietly showing numbers that disagree.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stedi_etl.model.explain import REASONS, Explained, Loss

if TYPE_CHECKING:
    import polars as pl

    from stedi_etl.model.steps import Step

__all__ = ["REASONS", "Chain", "Funnel", "Loss", "Stage", "build_funnel", "chains", "explain"]


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
    """Each dataset's tables in the order they refine one another, read off ``STEPS``."""
    from stedi_etl.contracts import datasets as dataset_names
    from stedi_etl.contracts import landing_table
    from stedi_etl.model.steps import STEPS

    found = {}
    for dataset in dataset_names():
        tables = [landing_table(dataset)]
        while True:
            following = [s.table for s in STEPS if s.inputs[0] == tables[-1]]
            if not following:
                break
            tables.append(following[0])
        found[dataset] = tuple(tables)
    return found


Frames = Mapping[str, "pl.DataFrame"]


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
    from stedi_etl.contracts import landing_table, load_contract
    from stedi_etl.model.steps import STEPS

    step_of = {step.table: step for step in STEPS}
    frames: dict[str, pl.DataFrame] = {landing_table(d): frame for d, frame in landing.items()}
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
            step = step_of[table]
            if stage.rows is not None and all(i in frames for i in step.inputs):
                losses, pairs, pair_losses = explain(step, frames, options.get(table, {}))
                if previous == names[0] and first.quarantined:
                    losses = (Loss("quarantined", first.quarantined), *losses)
                stage = Stage(
                    table, stage.zone, stage.rows, previous, source_rows, losses, pairs, pair_losses
                )
            stages.append(stage)
        result.append(Chain(dataset, tuple(stages)))
    return Funnel(tuple(result))


def explain(step: Step, frames: Frames, options: Mapping[str, Any]) -> Explained:
    """Why rows of ``step``'s source did not make it into its table."""
    if step.explain is None:  # a step added to the DAG without an explanation yet: say so, do not guess
        return (), None, ()
    return step.explain(*(frames[name] for name in step.inputs), options=options)
