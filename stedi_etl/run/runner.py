"""The DAG as one declarative list of steps, and the runner that builds, checks and publishes it."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stedi_etl import __version__
from stedi_etl.checks.rules import (
    CheckFailure,
    RelationTally,
    ValidationReport,
    check_frame,
    check_relations,
    check_rows,
    failure_cases,
    merged_report,
)
from stedi_etl.contracts import Contract, landing_table, landing_tables, load_contract, quarantine_table
from stedi_etl.errors import StediError, UsageError
from stedi_etl.lake.delta import DEFAULT_RETENTION_HOURS
from stedi_etl.lake.lock import LakeLock, acquire
from stedi_etl.lake.storage import FileInfo, Store, is_hidden, open_store
from stedi_etl.lake.tables import (
    Lake,
    LandingChoice,
    Pointer,
    Staged,
    choose_landing,
    day_label,
    elapsed,
    new_run_id,
)
from stedi_etl.landing.cache import ParseCache
from stedi_etl.landing.read import LandingRead, landing_dir, not_read, read_landing, require_landing
from stedi_etl.model.days import digests
from stedi_etl.model.steps import ML_JOINS, STEPS, RunOptions, Step
from stedi_etl.run.executors import IN_PROCESS, Done, Executor, open_executor
from stedi_etl.run.partitions import (
    Budget,
    DayShared,
    DayTask,
    DayTaskResult,
    added_rows,
    budget,
    day_digests,
    input_days,
    run_day_task,
    tasks,
)
from stedi_etl.run.progress import NO_METER, Meter
from stedi_etl.run.results import MANIFEST_FORMAT, LandingSummary, RunResult, RunStatus, TableResult
from stedi_etl.wording import plural

__all__ = [
    "ML_JOINS",
    "STEPS",
    "RunOptions",
    "RunResult",
    "RunStatus",
    "Step",
    "TableResult",
    "plan",
    "run",
]

if TYPE_CHECKING:
    import polars as pl


LANDING_INPUTS = landing_tables()  # an input named so is read from the landing zone
BUILDING = "building tables"  # the progress task of a run's steps and quarantines


def plan(tables: Iterable[str] | None = None) -> tuple[Step, ...]:
    """The steps that build ``tables`` and everything they need, in DAG order (all steps for None)."""
    if tables is None:
        return STEPS
    by_table = {step.table: step for step in STEPS}
    tables = list(tables)
    if not tables:
        raise UsageError(f"name at least one table to build; tables: {', '.join(by_table)}")
    if all(table in LANDING_INPUTS for table in tables):
        raise UsageError(
            f"{', '.join(tables)}: landing tables are read, not built; check landing data with "
            "`stedi-etl validate --landing URI`, or name a lake table to build"
        )
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


def run(
    landing: str | None,
    lake: str,
    *,
    tables: Iterable[str] | None = None,
    options: RunOptions | None = None,
    endpoint_url: str | None = None,
    progress: Callable[[str], None] | None = None,
    full_refresh: bool = False,
    wait: float = 0.0,
    meter: Meter = NO_METER,
    retention_hours: float = DEFAULT_RETENTION_HOURS,
    memory_limit: int | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> RunResult:
    """Read the landing zone, build and check every planned table that is out of date, then publish.

    A table is up to date, and neither read nor rebuilt, when its contract, stedi-etl's code, the run
    options it depends on and its inputs (each landing file's size and stamp, each input table's content)
    are those its current version was built from; ``full_refresh`` rebuilds everything. A table that fails
    its contract is not published and the tables that need it are not built; the independent ones still
    are. Nothing is written until every table is built and checked, and pointers move only after every new
    version is written, so a run that dies midway leaves every table at its previous version. One run at a
    time holds the lake's lock; another fails at once naming it, or waits up to ``wait`` seconds.

    ``landing`` None reads the landing the lake records it was built from (the bundled sample for a new
    lake); another landing than the recorded one is allowed, and the result says it changed. ``progress``
    is told each step in words; ``meter`` counts the bytes read and the tables built (a progress display).
    Files a table no longer needs are vacuumed once older than ``retention_hours``: earlier versions stay
    readable that long. ``memory_limit`` (bytes; default: run/partitions.py ``budget``) sizes the batches
    of landing files parsed and the tasks of days built at once. The tasks (parsing batches of landing
    files, building tasks of days) run in this process, or on the Dask cluster whose scheduler is at
    ``scheduler``, or on ``workers`` local Dask worker processes started for the run (run/executors.py);
    the checks and commits are this process's either way.
    """
    options = options or RunOptions()
    say = progress or (lambda _message: None)
    steps = plan(tables)
    datasets = [
        LANDING_INPUTS[i] for i in dict.fromkeys(i for s in steps for i in s.inputs) if i in LANDING_INPUTS
    ]
    the_lake = Lake.of(lake, endpoint_url)
    the_lake.require_folder()
    choice = choose_landing(the_lake, landing)
    landing_store = open_store(choice.uri, endpoint_url=endpoint_url)
    skipped: dict[str, dict[str, str]] = {}
    listings = require_landing(landing_store, datasets, skipped)
    executor = open_executor(scheduler, workers)
    try:
        # The run's id is taken as it gets the lock: ids sort by time, and a run that waited for another
        # must not be named before it.
        lock = acquire(the_lake.store, the_lake.meta_path("lock"), new_run_id, wait=wait, lake=the_lake.uri)
        run_id = lock.holder.run_id
        try:
            return _Run(
                run_id, landing_store, listings, the_lake, steps, options, full_refresh, say, lock, choice,
                meter, budget(memory_limit), executor, skipped,
            ).go(retention_hours)  # fmt: skip
        finally:
            lock.release()
    finally:
        executor.close()


def landing_inputs(store: Store, dataset: str, listed: dict[str, FileInfo]) -> tuple[dict[str, Any], ...]:
    """The landing files a dataset is read from, as a run manifest records them (hidden files are skipped)."""
    directory = landing_dir(store, dataset)
    return tuple(
        {"path": store.url(path), "size": info.size, "stamp": info.stamp}
        for path, info in listed.items()
        if not is_hidden(path[len(directory) :])
    )


# The modules whose code decides a table's content besides contracts and options: reading and meaning.
CODE_MODULES = (
    "stedi_etl.landing.read",
    "stedi_etl.model.transforms",
    "stedi_etl.model.sorting",
    "stedi_etl.run.partitions",
    "stedi_etl.model.days",
)


@functools.cache
def code_fingerprint() -> str:
    """What, besides contracts and options, decides a table's content: the source of CODE_MODULES and
    the Polars release. A change to any of them rebuilds every table."""
    import importlib

    import polars as pl

    digest = hashlib.sha256(f"{__version__} polars {pl.__version__}".encode())
    for name in CODE_MODULES:
        module = importlib.import_module(name)
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Run:
    """One run's state: what was read, built and staged so far, and its manifest as it goes."""

    def __init__(
        self,
        run_id: str,
        landing_store: Store,
        listings: dict[str, dict[str, FileInfo]],
        lake: Lake,
        steps: tuple[Step, ...],
        options: RunOptions,
        full_refresh: bool,
        say: Callable[[str], None],
        lock: LakeLock,
        landing_choice: LandingChoice,
        meter: Meter,
        the_budget: Budget,
        executor: Executor,
        unread: dict[str, dict[str, str]],
    ) -> None:
        self.started = time.perf_counter()
        self.landing_store = landing_store
        self.listings = listings
        self.lake = lake
        self.steps = steps
        self.options = options
        self.full_refresh = full_refresh
        self.say = say
        self.lock = lock
        self.meter = meter
        self.datasets = list(listings)
        self.landing_files = {d: landing_inputs(landing_store, d, listings[d]) for d in self.datasets}
        self.unread = unread  # dataset -> what its listing found and does not read -> why
        self.result = RunResult(
            run_id,
            landing_store.uri,
            lake.uri,
            options,
            (),
            (),
            0.0,
            status="running",
            started_at=_now(),
            full_refresh=full_refresh,
            took_over_from=lock.took_over.run_id if lock.took_over else None,
            landing_source=landing_choice.source,
            landing_changed_from=landing_choice.changed_from,
            budget=the_budget.to_dict(),
            executor=executor.describe(),
        )
        self.budget = the_budget
        self.executor = executor
        self.task_records: list[dict[str, Any]] = []  # each task run: what, and on which worker
        self.run_info = {"run_id": run_id, "landing": landing_store.uri, "options": asdict(options)}
        self.reads: dict[str, LandingRead] = {}
        # Landing frames that passed, tables built or read back (one built by day: a lazy scan of its days).
        self.frames: dict[str, pl.DataFrame | pl.LazyFrame] = {}
        self.content: dict[str, str] = {}  # table -> content_sha256 of the version downstream tables get
        self.day_content: dict[str, dict[int, str]] = {}  # table built by day -> each day's content
        self.day_rows: dict[str, dict[int, int]] = {}  # the same tables (and landing inputs): rows per day
        # Landing dataset -> the column whose day a table built by day partitions its rows on.
        self.day_columns = {
            LANDING_INPUTS[name]: column
            for step in steps
            for name, column in step.partition_by.items()
            if name in LANDING_INPUTS
        }
        self.staged: list[Staged] = []
        self.last_use: dict[str, int] = {}  # input -> the index of the last step that reads it
        self.current: dict[str, Pointer] = {}  # the tables' pointers as the run found them
        self.landing_results: dict[str, LandingSummary] = {}
        self.input_rows: dict[str, int] = {}  # the step at hand's inputs, for an empty table's warning
        self.caches: dict[str, ParseCache] = {}  # dataset -> the parses of its files
        # Landing datasets and tables built by day -> each day's Parquet files holding their rows (a day
        # task's description of where its readings are; an absent or empty table has none).
        self.day_sources: dict[str, dict[int, tuple[str, ...]]] = {}
        self.landing_ids: dict[str, str] = {}  # dataset -> its identity, as listed, then as read

    @property
    def run_id(self) -> str:
        return self.result.run_id

    def gather(self) -> None:
        """Bring what the run has read and how long it has taken into its result."""
        landing = tuple(self.landing_results[d] for d in self.datasets if d in self.landing_results)
        self.result = replace(
            self.result,
            landing_results=landing,
            seconds=elapsed(self.started),
            executor=self.executor.describe(),
            tasks=tuple(self.task_records),
        )

    def record(self, **changes: Any) -> None:
        """Rewrite the run's manifest with what is known now (each write replaces it whole)."""
        self.gather()
        self.result = replace(self.result, **changes)
        manifest = self.lake.write_manifest(self.run_id, self.result.to_dict())
        self.result = replace(self.result, manifest=manifest)

    def go(self, retention_hours: float) -> RunResult:
        self.retention_hours = retention_hours
        self.say(f"run {self.run_id}: {self.landing_store.uri} -> {self.lake.uri}")
        if self.result.landing_changed_from:
            self.say(f"landing changed: the lake was built from {self.result.landing_changed_from}")
        self.record()
        if self.lock.took_over:
            self.say(
                f"took over the lock of run {self.lock.took_over.run_id}, which ended without releasing it"
            )
        took_over = self.lock.took_over.run_id if self.lock.took_over else None
        for settled in _settle_unfinished(self.lake, self.run_id, took_over):
            self.say(f"run {settled} had ended without finishing: recorded as interrupted")
        try:
            self.build()
            planned = self.lake.next_versions([s.pointer.table for s in self.staged])
            if self.result.published:
                # The manifest names each table's coming version before any commit, so a run killed while
                # committing is recorded with the versions it made.
                self.result = replace(
                    self.result,
                    tables=_versioned(self.result.tables, planned),
                    quarantines=_versioned(self.result.quarantines, planned),
                )
                self.record(status="publishing")
                self.lock.confirm()
            publish_started = time.perf_counter()
            unchanged = [
                pointer
                for t in self.result.tables + self.result.quarantines
                if t.status == "up_to_date" and (pointer := self.current.get(t.table)) is not None
            ]
            committed = self.lake.publish(
                self.staged, self.retention_hours, planned, unchanged=unchanged, run_id=self.run_id
            )
            made = {table: pointer.version for table, pointer in committed.items()}
            if self.staged:  # the lake's tables now come (at least in part) from this landing
                self.lake.record_landing(self.landing_store.location, self.run_id)
            for cache in self.caches.values():  # after publishing: a killed run leaves no parse behind
                cache.save()
            self.result = replace(
                self.result,
                timings={"publish": elapsed(publish_started)},
                tables=_versioned(self.result.tables, made),
                quarantines=_versioned(self.result.quarantines, made),
            )
            if self.staged:
                self.say(f"committed {plural(len(committed), 'table')} ({elapsed(publish_started):.2f}s)")
            else:
                self.say("nothing to publish: every table is up to date or failed")
        except StediError as err:
            status: RunStatus = "failed"
            if self.result.status == "publishing":
                # Failed while committing: the tables it had planned count as published only where their
                # log holds this run's commit. Where the log cannot be read either, the run stays
                # "publishing" and the next run settles it.
                try:
                    self.result = self.committed_only(self.result)
                except StediError:
                    status = "publishing"
            try:
                self.record(status=status, error=str(err), ended_at=_now())
            except StediError as unrecorded:  # the first error stays the one reported
                err.also = (*err.also, f"the failed run could not be recorded: {unrecorded}")
            raise
        except BaseException as err:  # KeyboardInterrupt, or a bug: the manifest says the run did not finish
            with contextlib.suppress(Exception):
                self.record(status="interrupted", error=f"{type(err).__name__}: {err}", ended_at=_now())
            raise
        self.gather()
        self.record(status="succeeded" if self.result.every_table_ok else "failed", ended_at=_now())
        return self.result

    # --- deciding and building --------------------------------------------------------------------------

    def build(self) -> None:
        names = [quarantine_table(d) for d in self.datasets] + [s.table for s in self.steps]
        current = self.current = {k: v for k, v in self.lake.pointers(names).items() if v is not None}
        landing_ids = self.landing_ids = {d: self.landing_id(d) for d in self.datasets}
        # A frame is dropped once the last step that needs it is built, so a run holds the inputs of the
        # step at hand, not every table of the lake: landing datasets are read when first needed.
        self.last_use = {name: index for index, step in enumerate(self.steps) for name in step.inputs}
        self.meter.start(BUILDING, len(self.steps) + len(self.datasets), "table")
        try:
            for index, step in enumerate(self.steps):
                self.step(index, current.get(step.table), landing_ids)
                for name in [n for n, last in self.last_use.items() if last == index]:
                    self.frames.pop(name, None)
                self.meter.advance(BUILDING)
            for dataset in self.datasets:
                self.quarantine(dataset, current.get(quarantine_table(dataset)), landing_ids[dataset])
                self.meter.advance(BUILDING)
        finally:
            self.meter.finish(BUILDING)
        for dataset in self.datasets:  # datasets nothing needed to read
            if dataset not in self.landing_results:
                listed = self.landing_files[dataset]
                self.landing_results[dataset] = LandingSummary(
                    dataset,
                    len(listed),
                    sum(f["size"] for f in listed),
                    None,
                    None,
                    {},
                    {},
                    0.0,
                    skipped=not_read(
                        self.landing_store, dataset, self.listings[dataset], self.unread.get(dataset)
                    ),
                )

    def landing_id(self, dataset: str) -> str:
        """What a dataset's landing data is: its contract and each file's path, size and stamp. Paths are
        relative to the dataset's folder: the same files under another landing URI are the same input (a
        copy has other modification times, though, and is read again)."""
        folder = self.landing_store.url(landing_dir(self.landing_store, dataset))
        files = [(f["path"][len(folder) :], f["size"], f["stamp"]) for f in self.landing_files[dataset]]
        return fingerprint(load_contract(landing_table(dataset)).sha256, files)

    def up_to_date(self, table: str, pointer: Pointer | None, built_from: str) -> TableResult | None:
        if self.full_refresh or pointer is None or pointer.fingerprint != built_from:
            return None
        contract = load_contract(pointer.contract)
        self.content[table] = pointer.content_sha256
        if pointer.partitions:
            self.day_content[table] = {int(d): r["content"] for d, r in pointer.partitions.items()}
            self.day_rows[table] = {int(d): r["rows"] for d, r in pointer.partitions.items()}
        return TableResult(
            table,
            contract.zone,
            "up_to_date",
            rows=pointer.rows,
            seconds=0.0,
            location=self.lake.store.url(self.lake.table_dir(table)),
            version=pointer.version,
            files=pointer.files,
            contract_sha256=pointer.contract_sha256,
            fingerprint=pointer.fingerprint,
            content_sha256=pointer.content_sha256,
        )

    def quarantine(self, dataset: str, pointer: Pointer | None, landing_id: str) -> None:
        table = quarantine_table(dataset)
        contract = load_contract("quarantine")
        built_from = fingerprint(table, contract.sha256, code_fingerprint(), landing_id)
        inputs = self.landing_files[dataset]
        unchanged = self.up_to_date(table, pointer, built_from)
        if unchanged is not None:
            self.result = replace(
                self.result, quarantines=(*self.result.quarantines, replace(unchanged, inputs=inputs))
            )
            return
        started = time.perf_counter()
        read = self.read(dataset)
        # As read: a file that changed while it was read is recorded with the size and stamp it was read at.
        built_from = fingerprint(table, contract.sha256, code_fingerprint(), self.landing_ids[dataset])
        inputs = self.landing_files[dataset]
        report = check_frame(read.quarantine, contract, table=table)
        staged = self.stage(table, read.quarantine, built_from) if report.ok else None
        outcome = self.staged_result(
            table, "quarantine", read.quarantine.height, report, staged, built_from, inputs, started
        )
        self.result = replace(self.result, quarantines=(*self.result.quarantines, outcome))

    def step(self, index: int, pointer: Pointer | None, landing_ids: dict[str, str]) -> None:
        """Build, check and stage the step's table, unless it is up to date or an input is missing."""
        step = self.steps[index]
        started = time.perf_counter()
        self.input_rows = {}
        contract = load_contract(step.table)
        inputs, input_ids = self.step_inputs(step, landing_ids)
        keywords = {name: getattr(self.options, name) for name in step.options}
        built_from = fingerprint(step.table, contract.sha256, code_fingerprint(), keywords, input_ids)
        missing = [name for name, known in input_ids.items() if known is None]
        if not missing:
            unchanged = self.up_to_date(step.table, pointer, built_from)
            if unchanged is not None:
                self.add(replace(unchanged, inputs=inputs))
                self.say(f"{step.table}: up to date ({unchanged.rows} rows, version {unchanged.version})")
                return
            missing = [name for name in step.inputs if self.frame(name) is None]
            # What the step is built from, as its landing inputs were read (a file that changed while it
            # was read is recorded with the size and stamp it was read at, not those first listed).
            inputs, input_ids = self.step_inputs(step, landing_ids)
            built_from = fingerprint(step.table, contract.sha256, code_fingerprint(), keywords, input_ids)
        if missing:
            reason = f"not built: needs {', '.join(missing)}, which failed or was not built"
            location = self.lake.store.url(self.lake.table_dir(step.table))
            self.add(TableResult(step.table, contract.zone, "skipped", None, 0.0, location, reason))
            self.say(f"{step.table}: skipped ({reason})")
            return
        if step.partition_by:
            wholes = {name: input_ids[name] for name in step.inputs if name not in step.partition_by}
            self.build_and_check_by_day(
                index, contract, keywords, built_from, inputs, started, pointer, wholes
            )
        else:
            self.build_and_check(index, contract, keywords, built_from, inputs, started)

    def step_inputs(
        self, step: Step, landing_ids: dict[str, str]
    ) -> tuple[tuple[dict[str, Any], ...], dict[str, str | None]]:
        """What the step reads, as its manifest records it (each landing file, each input table's content),
        and each input's identity for the fingerprint (None: an input that failed or was not built)."""
        inputs: list[dict[str, Any]] = []
        input_ids: dict[str, str | None] = {}
        for name in step.inputs:
            if name in LANDING_INPUTS:
                dataset = LANDING_INPUTS[name]
                input_ids[name] = landing_ids[dataset]
                inputs.extend(self.landing_files[dataset])
            else:
                input_ids[name] = self.content.get(name)
                inputs.append({"table": name, "content_sha256": self.content.get(name)})
        return tuple(inputs), input_ids

    def build_and_check(
        self,
        index: int,
        contract: Contract,
        keywords: dict[str, Any],
        built_from: str,
        inputs: tuple[dict[str, Any], ...],
        started: float,
    ) -> None:
        """Build the step's table, check its rows, stage it if they pass, then check the rules relating it
        to its inputs, holding no frame a later step does not need."""
        step = self.steps[index]
        frames = {name: self.frame(name) for name in step.inputs}
        # The steps built whole are the customer tables: small outputs, but customer_curated reads the users
        # of every reading; Polars' streaming engine semi-joins a scan without holding its column (at scale
        # 1000, 39.6M users: 1.8 GiB in memory).
        frame = step.transform(*(frames[i].lazy() for i in step.inputs), **keywords).collect(  # type: ignore[union-attr]
            engine="streaming"
        )
        waive = self.options.waived(step.table)
        rows = check_rows(frame, contract, failure_cases(frame, contract, "error", waive), waive=waive)
        if step.notice is not None:
            noticed = step.notice(*(frames[i].lazy() for i in step.inputs), options=keywords)  # type: ignore[union-attr]
            rows = replace(rows, warnings=rows.warnings + _notices(step.table, noticed))
        staged = self.stage(step.table, frame, built_from) if rows.ok else None
        tables, finished = self.relation_inputs(index, frames, frame, staged)  # type: ignore[arg-type]
        height = frame.height
        self.input_rows = {
            name: self.rows_of(name, part) for name, part in frames.items() if part is not None
        }
        kept = None if step.table in finished else frame
        del frames, frame  # the relation rules below may need the memory they hold
        report = check_relations(rows, contract, tables, waive)
        del tables
        outcome = self.staged_result(
            step.table, contract.zone, height, report, staged, built_from, inputs, started
        )
        self.add(outcome)
        if outcome.status == "published":
            if kept is not None:
                self.frames[step.table] = kept
            self.say(f"{step.table}: {height} rows ({outcome.seconds:.2f}s)")
        else:
            self.say(f"{step.table}: FAILED its contract: {outcome.reason}")

    def build_and_check_by_day(
        self,
        index: int,
        contract: Contract,
        keywords: dict[str, Any],
        built_from: str,
        inputs: tuple[dict[str, Any], ...],
        started: float,
        pointer: Pointer | None,
        wholes: dict[str, str | None],
    ) -> None:
        """Build, check and stage a table by day of its reading time: only the days whose rows in the
        partitioned inputs changed (or whose other inputs, contract, code or options did) are built and
        checked; the others keep their files. Every rule of these tables relates rows of one day, so a kept
        day passed them when it was built, against the same contract and the same other inputs."""

        step = self.steps[index]
        frames: dict[str, pl.DataFrame | pl.LazyFrame] = {
            name: self.frame(name)  # type: ignore[misc]  # present: the step was not skipped
            for name in step.inputs
        }
        digests = {
            name: self.day_content[name] if name in self.day_content else day_digests(frames[name], column)
            for name, column in step.partition_by.items()
        }
        # Rows per day, as the inputs' build records or parses have them (counted here only without).
        known = [rows for name in step.partition_by if (rows := self.day_rows.get(name)) is not None]
        days = added_rows(known) if len(known) == len(step.partition_by) else input_days(step, frames)
        base = (step.table, contract.sha256, code_fingerprint(), keywords, wholes)
        fingerprints = {
            day: fingerprint(*base, day, {name: digests[name].get(day) for name in step.partition_by})
            for day in days
        }
        previous = {} if self.full_refresh or pointer is None else pointer.partitions
        # A day is kept where its record matches, and lies in the partition folder the contract now asks for.
        laid_out = set(contract.partition_columns)
        kept = {
            day: previous[str(day)]
            for day in days
            if previous.get(str(day), {}).get("fingerprint") == fingerprints[day]
            and (
                previous[str(day)]["file"] is None or set(previous[str(day)].get("partition", {})) == laid_out
            )
        }
        to_build = {day: rows for day, rows in days.items() if day not in kept}
        # Each task of days is built, checked and written before the next is read, so a run holds one
        # task's inputs and output (about the budget's task rows), not the table. Every rule of these
        # tables relates rows of one day: row rules, uniqueness and the rules between tables hold for the
        # table when they hold for each task (their failures are summed over the tasks).
        waive = self.options.waived(step.table)
        checked: list[ValidationReport] = []
        tally = RelationTally(contract, waive)
        written: dict[int, dict[str, Any]] = {}
        schema = None
        broadcast = {name: frames[name] for name in step.inputs if name not in step.partition_by}
        if self.executor.kind != IN_PROCESS:  # sent to the workers: read here once, not scanned there
            broadcast = {name: frame.lazy().collect() for name, frame in broadcast.items()}
        day_tasks = [
            DayTask(
                step,
                tuple(group),
                {name: self.task_sources(name, group) for name in step.partition_by},
                keywords,
                waive,
                self.run_id,
            )
            for group in tasks(to_build, self.budget.task_rows)
        ]
        finished: dict[int, DayTaskResult] = {}
        noticed: list[tuple[str, int, str]] = []
        for done in self.executor.map(run_day_task, day_tasks, DayShared(self.lake, broadcast)):
            finished[done.index] = done.result
            group = day_tasks[done.index].days
            self.task_done(
                "days",
                step.table,
                done,
                days=len(group),
                first=day_label(group[0]),
                last=day_label(group[-1]),
            )
        for position in range(len(day_tasks)):  # merged in the tasks' order, wherever each ran
            result = finished[position]
            schema = schema or result.schema
            checked.append(result.checks)
            tally.merge(result.counts)
            written |= result.days
            noticed.extend(result.notices)
        report = tally.into(merged_report(checked, contract))
        report = replace(report, warnings=report.warnings + _notices(step.table, noticed))
        empty = {"file": None, "rows": 0, "size": 0, "stats": "", "content": "empty"}
        kept |= {day: dict(empty) for day in to_build if day not in written}
        total = sum(record["rows"] for record in (*kept.values(), *written.values()))
        self.input_rows = {name: self.rows_of(name, frame) for name, frame in frames.items()}
        del frames
        staged = None
        if report.ok:
            schema = schema or contract.empty_frame().to_arrow().schema
            staged = self.lake.stage_days(
                step.table, written, kept, fingerprints, schema, self.run_info, built_from
            )
        else:
            self.lake.discard(step.table, written.values())
        outcome = self.staged_result(
            step.table, contract.zone, total, report, staged, built_from, inputs, started
        )
        outcome = replace(outcome, days_built=len(written), days_kept=len(days) - len(to_build))
        self.add(outcome)
        if outcome.status != "published" or staged is None:
            self.say(f"{step.table}: FAILED its contract: {outcome.reason}")
            return
        self.day_content[step.table] = {int(d): r["content"] for d, r in staged.pointer.partitions.items()}
        self.day_rows[step.table] = {int(d): r["rows"] for d, r in staged.pointer.partitions.items()}
        self.set_sources(step.table, staged.pointer)
        if step.table in self.last_use:
            # Later steps read the table's days, new and kept, from its files as they need them: the
            # machine-learning step only the days it builds, customer_curated only the users.
            self.frames[step.table] = self.lake.scan_files(step.table, staged.pointer.files)
        kept_days = len(days) - len(to_build)
        self.say(
            f"{step.table}: {total} rows; {plural(len(to_build), 'day')} built, {kept_days} kept "
            f"({outcome.seconds:.2f}s)"
        )

    def committed_only(self, result: RunResult) -> RunResult:
        """``result`` with each table it lists as published that its log holds no commit of this run for
        recorded as failed (the run failed while publishing)."""
        claimed = [t.table for t in result.tables + result.quarantines if t.status == "published"]
        made = _committed_by(self.lake, self.run_id, claimed)

        def settle(entries: tuple[TableResult, ...]) -> tuple[TableResult, ...]:
            return tuple(
                replace(t, status="failed", version=None, reason=NOT_COMMITTED)
                if t.status == "published" and t.table not in made
                else t
                for t in entries
            )

        return replace(result, tables=settle(result.tables), quarantines=settle(result.quarantines))

    def task_done(self, kind: str, name: str, done: Done, **what: Any) -> None:
        """Record a finished task: what it did and the worker that ran it."""
        self.task_records.append(
            {"kind": kind, "name": name, **what, "worker": done.worker, "seconds": round(done.seconds, 4)}
        )

    def set_sources(self, table: str, pointer: Pointer) -> None:
        """Where a table built by day keeps each day's rows."""
        self.day_sources[table] = {
            int(day): self.lake.file_paths(table, [record["file"]])
            for day, record in pointer.partitions.items()
            if record["file"] is not None
        }

    def task_sources(self, name: str, days: list[int]) -> tuple[str, ...]:
        """The files holding an input's rows on ``days`` (each once): a task reads only those, not every
        file's footer to prune by statistics."""
        by_day = self.day_sources.get(name, {})
        return tuple(dict.fromkeys(path for day in days for path in by_day.get(day, ())))

    def relation_inputs(
        self, index: int, frames: dict[str, pl.DataFrame], frame: pl.DataFrame, staged: Staged | None
    ) -> tuple[dict[str, pl.DataFrame | pl.LazyFrame], set[str]]:
        """The tables the step's SQL rules read, and which of them no later step needs.

        Those are read back from the Parquet staged for them and their frames are freed first: at scale
        100 the machine-learning table and the trusted readings are 0.45 GB, which the consent check's
        anti-join would otherwise be added to.
        """
        step = self.steps[index]
        finished = {name for name in step.inputs if self.last_use[name] == index}
        if step.table not in self.last_use:
            finished.add(step.table)
        versions = {s.pointer.table: s for s in self.staged} | ({step.table: staged} if staged else {})
        tables: dict[str, pl.DataFrame | pl.LazyFrame] = {**frames, step.table: frame}
        for name in finished & versions.keys():
            if versions[name].scannable:
                tables[name] = versions[name].scan()
                self.frames.pop(name, None)
        return tables, finished

    def stage(self, table: str, frame: pl.DataFrame, built_from: str) -> Staged:
        """The table's next version, in memory: published only if the table passes its whole contract."""
        return self.lake.stage(table, frame, self.run_id, self.run_info, built_from)

    def staged_result(
        self,
        table: str,
        zone: str,
        rows: int,
        report: Any,
        staged: Staged | None,
        built_from: str,
        inputs: tuple[dict[str, Any], ...],
        started: float,
    ) -> TableResult:
        """The table's result; ``staged`` joins the versions to publish if the table passed its contract."""
        location = self.lake.store.url(self.lake.table_dir(table))
        common = {
            "errors": report.errors,
            "warnings": report.warnings,
            "fingerprint": built_from,
            "inputs": inputs,
        }
        if not report.ok or staged is None:
            reason = "; ".join(f.line() for f in report.errors)
            return TableResult(table, zone, "failed", rows, elapsed(started), location, reason, **common)
        self.staged.append(staged)
        self.content[table] = staged.pointer.content_sha256
        return TableResult(
            table,
            zone,
            "published",
            rows,
            elapsed(started),
            location,
            version=None,  # the table's commit gives it
            files=staged.pointer.files,
            contract_sha256=staged.pointer.contract_sha256,
            content_sha256=staged.pointer.content_sha256,
            **common,
        )

    def add(self, outcome: TableResult) -> None:
        if outcome.ok and outcome.rows == 0:
            outcome = replace(outcome, warnings=(*outcome.warnings, self.empty_warning(outcome.table)))
        self.result = replace(self.result, tables=(*self.result.tables, outcome))

    def empty_warning(self, table: str) -> CheckFailure:
        """An empty table is a legal result, but never a silent one: why it is empty, in words, and how
        many rows its inputs had where this run read them."""
        contract = load_contract(table)
        reason = contract.when_empty or "its inputs give no rows"
        inputs = ", ".join(f"{name} {plural(rows, 'row')}" for name, rows in self.input_rows.items())
        return CheckFailure(
            table,
            "empty",
            "warning",
            None,
            reason + (f" (inputs: {inputs})" if inputs else ""),
        )

    def frame(self, name: str) -> pl.DataFrame | pl.LazyFrame | None:
        """An input: a landing dataset that passed its contract, or a table built this run or up to date."""
        if name in LANDING_INPUTS:
            self.read(LANDING_INPUTS[name])
        elif name not in self.frames and name in self.content:
            pointer = self.current.get(name)
            if pointer is not None and pointer.files and pointer.partitions:  # built by day: scanned
                self.frames[name] = self.lake.scan_files(name, pointer.files)
                self.set_sources(name, pointer)
            else:
                self.frames[name] = self.lake.read(name)  # up to date: its current version, read back
        return self.frames.get(name)

    def rows_of(self, name: str, frame: pl.DataFrame | pl.LazyFrame) -> int:
        """An input's rows, without reading a lazily scanned table for them (its build record has them)."""
        import polars as pl

        if name in LANDING_INPUTS:
            return self.reads[LANDING_INPUTS[name]].rows
        if isinstance(frame, pl.LazyFrame):
            return sum(self.day_rows.get(name, {}).values())
        return frame.height

    def read(self, dataset: str) -> LandingRead:
        """Read a landing dataset once; its frame feeds the lake only if it and its quarantine pass."""
        if dataset in self.reads:
            return self.reads[dataset]
        task = f"reading {dataset}"
        self.meter.start(task, sum(info.size for info in self.listings[dataset].values()), "B")
        try:
            cache = self.caches[dataset] = ParseCache(
                self.lake.store,
                self.lake.meta_path("parsed", dataset),
                load_contract(landing_table(dataset)).sha256,
                code_fingerprint(),
            )
            read = read_landing(
                self.landing_store,
                dataset,
                self.listings[dataset],
                on_read=lambda amount: self.meter.advance(task, amount),
                cache=cache,
                day_column=self.day_columns.get(dataset),
                batch_bytes=self.budget.landing_batch_bytes,
                rows_at_once=self.budget.task_rows,
                executor=self.executor,
                on_task=lambda done: self.task_done("parse", dataset, done, files=len(done.result)),
                unread=self.unread.get(dataset),
            )
        finally:
            self.meter.finish(task)
        # A file read again because it changed as it was read is in the listing with what it was read at.
        self.landing_files[dataset] = landing_inputs(self.landing_store, dataset, self.listings[dataset])
        self.landing_ids[dataset] = self.landing_id(dataset)
        quarantine = check_frame(
            read.quarantine, load_contract("quarantine"), table=quarantine_table(dataset)
        )
        # Records that can't be accounted for in a valid quarantine must not feed the lake either.
        report = replace(read.report, errors=read.report.errors + quarantine.errors)
        if report.ok:
            self.frames[landing_table(dataset)] = read.lazy()
            self.day_sources[landing_table(dataset)] = read.parts_by_day
            if read.days is not None:
                self.day_content[landing_table(dataset)] = digests(read.days)
                self.day_rows[landing_table(dataset)] = {day: rows for day, (rows, _, _) in read.days.items()}
        self.reads[dataset] = replace(read, frame=read.frame.clear(), on_store=None)  # see self.frames
        self.landing_results[dataset] = LandingSummary(
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
            files_parsed=sum(not f.reused for f in read.files),
            files_reused=sum(f.reused for f in read.files),
            records_read_tolerantly=sum(f.tolerant_records for f in read.files),
            skipped=read.skipped,
        )
        self.say(
            f"landing {dataset}: {plural(read.rows, 'row')} from {plural(len(read.files), 'file')}, "
            f"{read.quarantined} quarantined ({read.seconds:.2f}s)"
        )
        return read


def _versioned(results: tuple[TableResult, ...], versions: dict[str, int]) -> tuple[TableResult, ...]:
    """The results of the published tables with the Delta version each has (or is about to get)."""
    return tuple(
        replace(r, version=versions[r.table]) if r.table in versions and r.status == "published" else r
        for r in results
    )


SETTLE_LOOK_BACK = 20  # the newest manifests a run looks through for runs that never finished


def _settle_unfinished(lake: Lake, run_id: str, took_over: str | None = None) -> list[str]:
    """Earlier runs whose manifests still say running or publishing, now recorded as interrupted (and
    ``took_over``, the run whose lock this one took over, even if it died before writing a manifest).

    This run holds the lake's lock, so none of them is still going: each was killed, crashed, or could not
    record its end (a full disk, a store that stopped answering). A run killed while publishing has its
    tables recorded as what was committed: a table its manifest planned but whose log holds no commit of
    the run is recorded as failed, so `runs` counts only what it published.
    """
    settled = []
    found = lake.manifests(last=SETTLE_LOOK_BACK)
    if took_over and took_over not in found:
        data = lake.store.read_if_exists(lake.run_path(took_over))
        found[took_over] = data or json.dumps({"run_id": took_over, "format": MANIFEST_FORMAT}).encode()
    for earlier, data in found.items():
        if earlier == run_id:
            continue
        try:
            manifest = json.loads(data)
        except ValueError:
            continue
        if isinstance(manifest, dict) and manifest.get("status", "running") in ("running", "publishing"):
            _mark_interrupted(lake, earlier, run_id, manifest)
            settled.append(earlier)
    return settled


def _notices(table: str, noticed: list[tuple[str, int, str]]) -> tuple[CheckFailure, ...]:
    """A step's notices (model/explain.py) as warnings of its table, each check's counts summed over the
    tasks that found some."""
    counts: dict[str, int] = {}
    texts: dict[str, str] = {}
    for check, count, text in noticed:
        counts[check] = counts.get(check, 0) + count
        texts[check] = text
    return tuple(
        CheckFailure(table, check, "warning", count, texts[check]) for check, count in counts.items()
    )


NOT_COMMITTED = "not committed: the run ended while publishing"


def _committed_by(lake: Lake, run_id: str, tables: list[str]) -> set[str]:
    """Which of ``tables`` have a commit of ``run_id`` in their log."""
    from stedi_etl.lake import delta

    return {
        table
        for table in tables
        if any(
            (c.record.get("run") or {}).get("run_id") == run_id
            for c in delta.history(lake.store, lake.table_dir(table))
        )
    }


def _mark_interrupted(lake: Lake, run_id: str, found_by: str, manifest: dict[str, Any]) -> None:
    """Record that ``run_id`` ended without finishing, with its tables as they were committed."""
    entries = [e for kind in ("tables", "quarantines") for e in manifest.get(kind) or []]
    claimed = [e["table"] for e in entries if e.get("status") == "published"]
    made = _committed_by(lake, run_id, claimed)
    for entry in entries:
        if entry.get("status") == "published" and entry["table"] not in made:
            entry.update(status="failed", version=None, reason=NOT_COMMITTED)
    manifest.update(
        status="interrupted",
        ok=False,
        ended_at=manifest.get("ended_at") or None,
        error=manifest.get("error")
        or f"ended without finishing (killed, crashed, or unable to record its end); found by run {found_by}",
    )
    lake.write_manifest(run_id, manifest)
