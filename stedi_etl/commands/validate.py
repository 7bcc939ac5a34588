"""`stedi-etl validate`: landing data, a whole lake, or files against one contract, checked as a run would."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from stedi_etl.checks.rules import (
    SAMPLES,
    CheckFailure,
    ValidationReport,
    ValidationResult,
    check_frame,
    conform,
    sample_text,
)
from stedi_etl.lake.storage import open_store

if TYPE_CHECKING:
    from stedi_etl.contracts import Contract


def validate_landing(uri: str, *, endpoint_url: str | None = None) -> ValidationResult:
    """Read every landing dataset under ``uri`` as a run would; report contract failures and rejects."""
    from stedi_etl.contracts import datasets as dataset_names
    from stedi_etl.landing.read import landing_dir, read_landing, require_landing

    store = open_store(uri, endpoint_url=endpoint_url)
    unread: dict[str, dict[str, str]] = {}
    listings = require_landing(store, dataset_names(), unread)
    reports = []
    quarantined = {}
    skipped = {}
    for dataset in dataset_names():
        read = read_landing(store, dataset, listings[dataset], unread=unread[dataset])
        reports.append(replace(read.report, source=store.url(landing_dir(store, dataset))))
        quarantined[dataset] = read.quarantined_by_reason()
        if read.skipped:
            skipped[dataset] = read.skipped
    return ValidationResult(tuple(reports), quarantined, skipped)


def validate_lake(uri: str, *, endpoint_url: str | None = None, as_of: str | None = None) -> ValidationResult:
    """Check the current version of every published table of the lake, SQL rules across tables included."""
    from stedi_etl.contracts import table_contract
    from stedi_etl.errors import UsageError
    from stedi_etl.lake.tables import Lake

    lake = Lake.of(uri, endpoint_url, as_of=as_of)
    pointers = lake.tables()
    if not pointers:
        raise UsageError(f"no published tables in {uri}")
    frames = {name: lake.read(name, pointers[name]) for name in pointers}  # one snapshot
    reports = []
    for name, frame in frames.items():
        contract = table_contract(name)
        source = f"{lake.store.url(lake.table_dir(name))} (version {pointers[name].version})"
        reports.append(check_frame(frame, contract, table=name, related=frames, source=source))
    return ValidationResult(tuple(reports))


def validate_paths(
    contract_name: str, paths: tuple[str, ...], *, endpoint_url: str | None = None
) -> ValidationResult:
    """Check Parquet or JSON files (or folders of them) against one contract; names match case-blind."""
    from stedi_etl.contracts import load_contract

    contract = load_contract(contract_name)
    return ValidationResult(tuple(_validate_path(contract, p, endpoint_url) for p in paths))


def _validate_path(contract: Contract, uri: str, endpoint_url: str | None) -> ValidationReport:
    import io

    import polars as pl

    from stedi_etl.lake.tables import data_files
    from stedi_etl.landing.read import parse_file

    store = open_store(uri, endpoint_url=endpoint_url)
    files = data_files(store)
    frames = []
    rejected = []
    partitions = contract.partition_columns
    for path, data in store.read_many(files).items():
        if data[:4] == b"PAR1":
            # A partitioned table's file holds no partition column: its value is in the folder's name.
            frame = pl.read_parquet(io.BytesIO(data))
            values = {
                column: value
                for part in path.split("/")[:-1]
                for column, _, value in [part.partition("=")]
                if column in partitions and column not in frame.columns
            }
            schema = contract.polars_schema()
            frame = frame.with_columns(
                pl.lit(value).cast(schema[name], strict=False).alias(name) for name, value in values.items()
            )
            frames.append(conform(frame, contract))
        else:
            parsed = parse_file(data, store.url(path), contract)
            frames.append(parsed.frame)
            rejected.extend(parsed.rejected)
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    if not set(partitions) <= set(frame.columns):  # files read without their folders
        contract = contract.of_files()
    report = check_frame(frame, contract, source=uri)
    if not rejected:
        return report
    unreadable = []
    for reason in dict.fromkeys(r.reason for r in rejected):
        of_reason = [r for r in rejected if r.reason == reason]
        samples = tuple(sample_text(f"line {r.line}: {r.detail}") for r in of_reason[:SAMPLES])
        unreadable.append(
            CheckFailure(
                report.table, reason, "error", len(of_reason), _READ_FAILURES[reason], samples=samples
            )
        )
    return ValidationReport(
        report.table, report.contract, report.rows, (*unreadable, *report.errors), report.warnings, uri
    )


_READ_FAILURES = {
    "invalid_json": "records that are not valid JSON",
    "not_an_object": "records that are not JSON objects",
    "missing_required": "records without a value for a required column",
    "bad_value": "records holding a value that cannot be read as the contract's type",
    "check_failed": "records failing a row check",
}
