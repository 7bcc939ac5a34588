"""`stedi-etl history`: every Delta version of the lake's tables, with the run that made it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from stedi_etl.commands.catalog import catalog_tables
from stedi_etl.errors import UsageError
from stedi_etl.lake import delta
from stedi_etl.lake.tables import Lake


@dataclass(frozen=True)
class TableVersion:
    table: str
    version: int
    timestamp: str
    operation: str
    run_id: str | None  # None for a commit stedi-etl did not make (a vacuum's)
    rows: int | None
    current: bool  # the version stedi-etl reads now


@dataclass(frozen=True)
class HistoryResult:
    lake: str
    versions: tuple[TableVersion, ...]  # by table, newest first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"{'table':<26}{'version':>8}  {'time (UTC)':<25}{'operation':<14}{'rows':>8}  run"]
        for v in self.versions:
            rows = "-" if v.rows is None else str(v.rows)
            mark = "  (current)" if v.current else ""
            lines.append(
                f"{v.table:<26}{v.version:>8}  {v.timestamp[:23]:<25}{v.operation:<14}{rows:>8}  "
                f"{v.run_id or '-'}{mark}"
            )
        return "\n".join(lines)


def table_history(
    lake: Lake | str, tables: tuple[str, ...] = (), *, endpoint_url: str | None = None
) -> HistoryResult:
    """Every version of ``tables`` (default: every lake table and quarantine) still in their logs."""
    the_lake = Lake.of(lake, endpoint_url)
    known = catalog_tables()
    unknown = [t for t in tables if t not in known]
    if unknown:
        raise UsageError(f"unknown table {unknown[0]!r}; tables: {', '.join(known)}")
    wanted = tables or known
    current = the_lake.pointers(wanted)
    if not any(current.values()):
        the_lake.refuse_legacy()
        raise UsageError(f"no published tables in {the_lake.uri} (is the lake URI right?)")
    versions = []
    for table in wanted:
        pointer = current[table]
        for commit in delta.history(the_lake.store, the_lake.table_dir(table)):
            record = commit.record
            versions.append(
                TableVersion(
                    table,
                    commit.version,
                    commit.timestamp,
                    commit.operation,
                    (record.get("run") or {}).get("run_id"),
                    record.get("rows"),
                    pointer is not None and commit.version == pointer.version,
                )
            )
    return HistoryResult(the_lake.uri, tuple(versions))
