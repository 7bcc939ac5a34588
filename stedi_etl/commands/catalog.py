"""The lake's catalog: every table's current Delta version and the build record its commit carries, with the
columns and types of its contract and what the latest run did to it.

A published version always passed its contract (the pipeline never publishes a table that fails), so a
table's contract status is "passed" when it has a current version; the latest run's manifest tells
whether a newer build failed since.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from stedi_etl.contracts import QUARANTINE_SUFFIX, lake_tables, quarantine_tables, table_contract
from stedi_etl.errors import UsageError
from stedi_etl.lake.tables import Lake, Pointer
from stedi_etl.wording import table_counts


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    type: str  # the contract's logical type
    classification: str


@dataclass(frozen=True)
class LatestRun:
    """What the newest run of the lake did to one table."""

    run_id: str
    status: str  # published, failed or skipped
    reason: str | None = None


@dataclass(frozen=True)
class CatalogEntry:
    table: str
    zone: str
    dataset: str
    columns: tuple[CatalogColumn, ...]
    location: str | None  # the Delta table's fixed folder; None when never published
    version: int | None = None  # the Delta version stedi-etl last committed
    files: tuple[str, ...] = ()
    rows: int | None = None
    written_at: str | None = None
    built_by_run: str | None = None
    contract: str = "not published"  # "passed": a published version always passed its contract
    contract_changed: bool = False  # the contract file changed after this version was checked
    latest_run: LatestRun | None = None

    @property
    def outcome(self) -> str:
        """One line: the current version's run and, where it differs, what the latest run did."""
        latest = self.latest_run
        current = f"current version from run {self.built_by_run}" if self.built_by_run else "no version"
        if latest is None or latest.run_id == self.built_by_run:
            return current
        return f"{latest.status} in run {latest.run_id}; {current}"


@dataclass(frozen=True)
class Catalog:
    lake: str
    latest_run: str | None
    latest_run_ok: bool | None
    tables: tuple[CatalogEntry, ...]
    latest_run_counts: str | None = None  # what the latest run did, counted as run-all and `runs` count

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        for entry, row in zip(self.tables, result["tables"], strict=True):
            row["outcome"] = entry.outcome
        return result

    def summary(self) -> str:
        verdict = {True: "ok", False: "FAILED", None: "no manifest"}[self.latest_run_ok]
        counts = f": {self.latest_run_counts}" if self.latest_run_counts else ""
        lines = [f"lake {self.lake}; latest run {self.latest_run or '-'} ({verdict}{counts})", ""]
        lines.append(f"{'table':<27}{'zone':<11}{'rows':>7}  {'built (UTC)':<21}{'contract':<15}location")
        for t in self.tables:
            rows = "-" if t.rows is None else str(t.rows)
            built = t.written_at[:19].replace("T", " ") if t.written_at else "-"
            contract = "passed*" if t.contract_changed else t.contract
            lines.append(f"{t.table:<27}{t.zone:<11}{rows:>7}  {built:<21}{contract:<15}{t.location or '-'}")
            lines.append(f"  columns: {', '.join(f'{c.name} {c.type}' for c in t.columns)}")
            latest = t.latest_run
            if latest is not None and latest.run_id != t.built_by_run:
                reason = f": {latest.reason}" if latest.reason else ""
                lines.append(f"  {t.outcome}{reason}")
        if any(t.contract_changed for t in self.tables):
            lines += ["", "* checked against an earlier version of its contract; the next run rechecks it"]
        return "\n".join(lines)


def catalog_tables() -> tuple[str, ...]:
    """The lake's tables in build order, then the quarantines (the registry's flow order)."""
    return (*lake_tables(), *quarantine_tables())


def build_catalog(
    lake_uri: Lake | str,
    *,
    endpoint_url: str | None = None,
    require_tables: bool = True,
    as_of: str | None = None,
) -> Catalog:
    """The catalog of the lake at ``lake_uri`` (or of that Lake); a location without any published table
    is a usage error, unless ``require_tables`` is False and a run's manifest is there (a first run that
    failed)."""
    lake = Lake.of(lake_uri, endpoint_url, as_of=as_of)
    shown = lake_uri if isinstance(lake_uri, str) else lake.uri
    pointers = lake.tables()
    manifest = lake.latest_manifest() if pointers or not require_tables else None
    if not pointers and (require_tables or manifest is None):
        raise UsageError(f"no published tables in {shown} (is the lake URI right?)")
    latest = _latest_outcomes(manifest)
    entries = []
    for table in catalog_tables():
        contract = table_contract(table)
        pointer = pointers.get(table)
        columns = tuple(CatalogColumn(c.name, c.logical_type, c.classification) for c in contract.columns)
        entry = CatalogEntry(
            table=table,
            zone=contract.zone,
            dataset=contract.dataset if table == contract.name else table.removesuffix(QUARANTINE_SUFFIX),
            columns=columns,
            location=None,
            latest_run=latest.get(table),
        )
        if pointer is not None:
            entry = _published(entry, lake, pointer, contract.sha256)
        entries.append(entry)
    return Catalog(
        lake=shown,
        latest_run=manifest.get("run_id") if manifest else None,
        latest_run_ok=manifest.get("ok") if manifest else None,
        tables=tuple(entries),
        latest_run_counts=table_counts((t, o.status) for t, o in latest.items()) if latest else None,
    )


def _published(entry: CatalogEntry, lake: Lake, pointer: Pointer, contract_sha256: str) -> CatalogEntry:
    return replace(
        entry,
        location=lake.store.url(lake.table_dir(entry.table)) + "/",
        version=pointer.version,
        files=pointer.files,
        rows=pointer.rows,
        written_at=pointer.written_at,
        built_by_run=pointer.run.get("run_id"),
        contract="passed",
        contract_changed=pointer.contract_sha256 != contract_sha256,
    )


def _latest_outcomes(manifest: dict[str, Any] | None) -> dict[str, LatestRun]:
    """Each table's status (quarantines too) in the latest run's manifest (RunResult.to_dict())."""
    if not manifest:
        return {}
    run_id = str(manifest.get("run_id"))
    return {
        t["table"]: LatestRun(run_id, str(t.get("status")), t.get("reason"))
        for t in [*(manifest.get("tables") or []), *(manifest.get("quarantines") or [])]
        if isinstance(t, dict) and "table" in t
    }
