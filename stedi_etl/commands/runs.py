"""The run history of a lake, from the manifests every run writes under ``<lake>/_stedi/runs/``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from stedi_etl.errors import UsageError
from stedi_etl.lake.tables import Lake
from stedi_etl.wording import table_counts


@dataclass(frozen=True)
class RunSummary:
    """One run as its manifest records it."""

    run_id: str
    status: str
    started_at: str | None
    ended_at: str | None
    seconds: float | None
    options: dict[str, Any]
    full_refresh: bool
    published: tuple[str, ...]
    up_to_date: tuple[str, ...]
    failed: tuple[str, ...]
    error: str | None
    manifest: str

    @property
    def counts(self) -> str:
        """What the run did to its tables, counted as run-all's summary, `catalog` and the report count."""
        return table_counts(
            [(t, "published") for t in self.published]
            + [(t, "up_to_date") for t in self.up_to_date]
            + [(t, "failed") for t in self.failed]
        )

    @classmethod
    def from_manifest(cls, run_id: str, manifest: dict[str, Any], where: str) -> RunSummary:
        tables = list(manifest.get("quarantines") or []) + list(manifest.get("tables") or [])

        def named(*statuses: str) -> tuple[str, ...]:
            return tuple(t.get("table", "?") for t in tables if t.get("status") in statuses)

        return cls(
            run_id=run_id,
            status=str(manifest.get("status") or "unknown"),
            started_at=manifest.get("started_at"),
            ended_at=manifest.get("ended_at"),
            seconds=manifest.get("seconds"),
            options=dict(manifest.get("options") or {}),
            full_refresh=bool(manifest.get("full_refresh")),
            published=named("published"),
            up_to_date=named("up_to_date"),
            failed=named("failed", "skipped"),
            error=manifest.get("error"),
            manifest=where,
        )


@dataclass(frozen=True)
class RunsResult:
    lake: str
    runs: tuple[RunSummary, ...]  # oldest first

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        for summary, row in zip(self.runs, result["runs"], strict=True):
            row["counts"] = summary.counts
        return result


def list_runs(lake: Lake | str, *, endpoint_url: str | None = None, last: int | None = None) -> RunsResult:
    """Every run recorded in ``lake`` (a root URI or a Lake; all runs or the ``last`` ones), oldest first."""
    the_lake = Lake.of(lake, endpoint_url)
    if not the_lake.store.exists(the_lake.store.path()):
        raise UsageError(f"no lake at {the_lake.uri}")
    summaries = []
    for run_id, data in the_lake.manifests(last).items():
        where = the_lake.store.url(the_lake.run_path(run_id))
        try:
            manifest = json.loads(data)
        except ValueError:
            manifest = {"status": "unreadable", "error": f"{where} is not JSON"}
        summaries.append(RunSummary.from_manifest(run_id, manifest, where))
    return RunsResult(the_lake.uri, tuple(summaries))
