"""What a run returns and records in its manifest: per landing dataset, per table, and the run as a whole."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from stedi_etl import __version__
from stedi_etl.checks.rules import CheckFailure
from stedi_etl.model.steps import RunOptions


@dataclass(frozen=True)
class LandingSummary:
    dataset: str
    files: int
    bytes: int
    rows: int | None  # None where the dataset was not read: nothing that needs it had to be rebuilt
    quarantined: int | None
    quarantined_by_reason: dict[str, int]
    read_paths: dict[str, int]
    seconds: float
    errors: tuple[CheckFailure, ...] = ()
    warnings: tuple[CheckFailure, ...] = ()
    files_parsed: int = 0  # read and parsed by this run
    files_reused: int = 0  # taken from the parses of earlier runs (the parse cache)
    # Records read by the tolerant splitter; a "mixed" file had only the parts around its bad lines read so.
    records_read_tolerantly: int = 0
    # Each file under the dataset's folder that was not read -> why (hidden, a link not followed, a pipe).
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def read(self) -> bool:
        return self.rows is not None


Status = Literal["published", "up_to_date", "failed", "skipped"]


@dataclass(frozen=True)
class TableResult:
    table: str
    zone: str
    status: Status
    rows: int | None
    seconds: float
    location: str
    reason: str | None = None
    errors: tuple[CheckFailure, ...] = ()
    warnings: tuple[CheckFailure, ...] = ()
    version: int | None = None  # the Delta version readers get after this run
    files: tuple[str, ...] = ()
    contract_sha256: str = ""
    fingerprint: str = ""  # of what the table is built from: contract, code, options and inputs
    content_sha256: str = ""
    inputs: tuple[dict[str, Any], ...] = ()  # each landing file (path, size, stamp) or input table version
    # A table built by day of its reading time: the days this run built, and those it kept as they were.
    days_built: int | None = None
    days_kept: int | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("published", "up_to_date")


RunStatus = Literal["running", "publishing", "succeeded", "failed", "interrupted"]
MANIFEST_FORMAT = "stedi-etl/run/1"


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
    quarantines: tuple[TableResult, ...] = ()
    status: RunStatus = "succeeded"
    started_at: str = ""
    ended_at: str | None = None
    full_refresh: bool = False
    error: str | None = None
    took_over_from: str | None = None  # the run whose lock this run found abandoned
    landing_source: str = "given"  # given (--landing), recorded (the lake's own) or sample (a new lake)
    landing_changed_from: str | None = None  # the landing the lake was built from, where this is another
    budget: dict[str, Any] = field(default_factory=dict)  # the memory limit and the work sizes it gave
    # Where the tasks ran (this process, or a Dask cluster and the workers that ran some) and each task.
    executor: dict[str, Any] = field(default_factory=dict)
    tasks: tuple[dict[str, Any], ...] = ()
    stedi_etl_version: str = __version__
    format: str = MANIFEST_FORMAT

    @property
    def ok(self) -> bool:
        return self.status == "succeeded" and self.every_table_ok

    @property
    def every_table_ok(self) -> bool:
        """Every landing dataset passed its contract and every table is published or up to date."""
        return all(t.ok for t in self.tables + self.quarantines) and all(s.ok for s in self.landing_results)

    @property
    def failed(self) -> tuple[TableResult, ...]:
        return tuple(t for t in self.tables if not t.ok)

    @property
    def published(self) -> tuple[TableResult, ...]:
        return tuple(t for t in self.tables + self.quarantines if t.status == "published")

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["ok"] = self.ok
        return result
