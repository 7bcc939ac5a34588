"""The DAG as one declarative list of steps, and the runner that builds, checks and publishes it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from stedi_etl import transforms
from stedi_etl.contracts import load_contract
from stedi_etl.errors import UsageError
from stedi_etl.lake import Lake, Staged, elapsed, new_run_id, quarantine_table
from stedi_etl.landing import DATASETS, read_landing, require_landing
from stedi_etl.storage import Store
from stedi_etl.transforms import MlJoin
from stedi_etl.validation import CheckFailure, check_frame

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class Step:
    """Build ``table`` by calling ``transform`` on ``inputs`` (plus the named run options as keywords)."""

    table: str
    inputs: tuple[str, ...]
    transform: Callable[..., pl.LazyFrame]
    options: tuple[str, ...] = ()


# The whole DAG. Inputs named <dataset>_landing are read from the landing zone.
STEPS: tuple[Step, ...] = (
    Step("customer_trusted", ("customer_landing",), transforms.customer_trusted),
    Step(
        "accelerometer_trusted",
        ("accelerometer_landing", "customer_trusted"),
        transforms.accelerometer_trusted,
        ("consent_cutoff",),
    ),
    Step("customer_curated", ("customer_trusted", "accelerometer_trusted"), transforms.customer_curated),
    Step(
        "step_trainer_trusted", ("step_trainer_landing", "customer_curated"), transforms.step_trainer_trusted
    ),
    Step(
        "machine_learning_curated",
        ("step_trainer_trusted", "customer_curated", "accelerometer_trusted"),
        transforms.machine_learning_curated,
        ("ml_join",),
    ),
)

LANDING_INPUTS = {f"{dataset}_landing": dataset for dataset in DATASETS}
ML_JOINS: tuple[MlJoin, ...] = ("same-customer", "timestamp")


@dataclass(frozen=True)
class RunOptions:
    ml_join: MlJoin = "same-customer"
    consent_cutoff: bool = False

    def waived(self, table: str) -> frozenset[str]:
        """Contract rules this run's options knowingly break; they are still checked, as warnings."""
        if table == "machine_learning_curated" and self.ml_join == "timestamp":
            # The rubric's join pairs readings of any customer and keeps every pair, so rows are not
            # same-customer and repeat where two customers' readings look alike once emails are dropped.
            return frozenset({"distinct_rows", "same_customer_pairs"})
        return frozenset()


def plan(tables: Iterable[str] | None = None) -> tuple[Step, ...]:
    """The steps that build ``tables`` and everything they need, in DAG order (all steps for None)."""
    if tables is None:
        return STEPS
    by_table = {step.table: step for step in STEPS}
    wanted: set[str] = set()
    pending = list(tables)
    while pending:
        table = pending.pop()
        if table in wanted or table in LANDING_INPUTS:
            continue
        if table not in by_table:
            raise UsageError(f"unknown table {table!r}; tables: {', '.join(by_table)}")
        wanted.add(table)
        pending.extend(by_table[table].inputs)
    return tuple(step for step in STEPS if step.table in wanted)


@dataclass(frozen=True)
class LandingSummary:
    dataset: str
    files: int
    bytes: int
    rows: int
    quarantined: int
    quarantined_by_reason: dict[str, int]
    read_paths: dict[str, int]
    seconds: float
    errors: tuple[CheckFailure, ...] = ()
    warnings: tuple[CheckFailure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class TableResult:
    table: str
    zone: str
    status: Literal["published", "failed", "skipped"]
    rows: int | None
    seconds: float
    location: str
    reason: str | None = None
    errors: tuple[CheckFailure, ...] = ()
    warnings: tuple[CheckFailure, ...] = ()


@dataclass(frozen=True)
class RunResult:
    run_id: str
    landing: str
    lake: str
    options: RunOptions
    landing_results: tuple[LandingSummary, ...]
    tables: tuple[TableResult, ...]
    seconds: float
    manifest: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(t.status == "published" for t in self.tables) and all(s.ok for s in self.landing_results)

    @property
    def failed(self) -> tuple[TableResult, ...]:
        return tuple(t for t in self.tables if t.status != "published")

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["ok"] = self.ok
        return result


def run(
    landing: str,
    lake: str,
    *,
    tables: Iterable[str] | None = None,
    options: RunOptions | None = None,
    endpoint_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Read the landing zone, build and check every planned table, then publish what passed.

    A table that fails its contract is not published and the tables that need it are not built; the
    independent ones still are. Nothing is written until every table is built and checked, and pointers
    move only after every new version is written, so a run that dies midway leaves every table at its
    previous version.
    """
    options = options or RunOptions()
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    steps = plan(tables)
    datasets = [
        LANDING_INPUTS[i] for i in dict.fromkeys(i for s in steps for i in s.inputs) if i in LANDING_INPUTS
    ]
    landing_store = Store(landing, endpoint_url=endpoint_url)
    listings = require_landing(landing_store, datasets)
    the_lake = Lake(Store(lake, endpoint_url=endpoint_url))
    run_id = new_run_id()
    run_info = {"run_id": run_id, "landing": landing, "options": asdict(options)}
    say(f"run {run_id}: {landing} -> {lake}")

    frames: dict[str, pl.DataFrame] = {}
    staged: list[Staged] = []
    landing_results = []
    for dataset in datasets:
        read = read_landing(landing_store, dataset, listings[dataset])
        quarantine = check_frame(
            read.quarantine, load_contract("quarantine"), table=quarantine_table(dataset)
        )
        if quarantine.ok:
            staged.append(the_lake.stage(quarantine_table(dataset), read.quarantine, run_id, run_info))
        # Records that can't be accounted for in a published quarantine must not feed the lake either.
        report = replace(read.report, errors=read.report.errors + quarantine.errors)
        if report.ok:
            frames[f"{dataset}_landing"] = read.frame
        landing_results.append(
            LandingSummary(
                dataset,
                files=len(read.files),
                bytes=read.bytes,
                rows=read.rows,
                quarantined=read.quarantined,
                quarantined_by_reason=read.quarantined_by_reason(),
                read_paths=dict(Counter(f.path for f in read.files)),
                seconds=round(read.seconds, 4),
                errors=report.errors,
                warnings=report.warnings,
            )
        )
        say(
            f"landing {dataset}: {read.rows} rows from {len(read.files)} files, "
            f"{read.quarantined} quarantined ({read.seconds:.2f}s)"
        )

    results: list[TableResult] = []
    for step in steps:
        step_started = time.perf_counter()
        contract = load_contract(step.table)
        location = the_lake.store.url(the_lake.table_dir(step.table))
        missing = [i for i in step.inputs if i not in frames]
        if missing:
            reason = f"not built: needs {', '.join(missing)}, which failed or was not built"
            results.append(TableResult(step.table, contract.zone, "skipped", None, 0.0, location, reason))
            say(f"{step.table}: skipped ({reason})")
            continue
        keywords = {name: getattr(options, name) for name in step.options}
        frame = step.transform(*(frames[i].lazy() for i in step.inputs), **keywords).collect()
        report = check_frame(
            frame, contract, related={i: frames[i] for i in step.inputs}, waive=options.waived(step.table)
        )
        outcome = TableResult(
            step.table,
            contract.zone,
            "published" if report.ok else "failed",
            rows=frame.height,
            seconds=elapsed(step_started),
            location=location,
            reason=None if report.ok else "; ".join(f.line() for f in report.errors),
            errors=report.errors,
            warnings=report.warnings,
        )
        results.append(outcome)
        if not report.ok:
            say(f"{step.table}: FAILED its contract: {outcome.reason}")
            continue
        staged.append(the_lake.stage(step.table, frame, run_id, run_info))
        frames[step.table] = frame
        say(f"{step.table}: {frame.height} rows ({outcome.seconds:.2f}s)")

    publish_started = time.perf_counter()
    the_lake.publish(staged)
    say(f"published {len(staged)} versions ({elapsed(publish_started):.2f}s)")
    result = RunResult(
        run_id,
        landing,
        lake,
        options,
        tuple(landing_results),
        tuple(results),
        elapsed(started),
        timings={"publish": elapsed(publish_started)},
    )
    manifest = the_lake.write_manifest(run_id, result.to_dict())
    return replace(result, manifest=manifest)
