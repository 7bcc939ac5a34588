"""Delta Lake tables at fixed locations: the open format every reader of the lake understands.

A table is its folder: ``<table>/_delta_log/`` holds the commits and the Parquet files sit beside it. Data
files are written through the project's one storage layer (``Store``: fsspec, s3fs on S3), so a file may
come from any process or machine; one commit (deltalake's transaction API, add actions carrying
``numRecords`` and column statistics) then makes them the table's content. Nothing is validated at commit
(../shared/FACTS.md), so ``commit`` checks that every file it names is there with the size it records.

Each commit carries stedi-etl's build record (run id, contract hash, fingerprint, rows) in its metadata,
under ``stedi-etl``; ``history`` reads it back. deltalake talks to S3 through its own client, configured
from the same AWS chain and endpoint as s3fs (``Store.table_options``).

Reads go through Polars (``pl.read_delta``): reading through pyarrow's datasets aborts the interpreter at
exit in a share of runs (FACTS.md), Polars' reader does not.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from stedi_etl.errors import LakeError, StorageError
from stedi_etl.lake.storage import S3_PROTOCOLS, TIMEOUT_ENV, Store, redact

if TYPE_CHECKING:
    import polars as pl

RECORD_KEY = "stedi-etl"  # the commit metadata field that holds stedi-etl's build record
DELTA_LOG = "_delta_log"
# Superseded files are kept this long after the commit that removed them, so a reader that resolved an
# earlier version a moment ago still finds its files (and `history` can read back that far).
DEFAULT_RETENTION_HOURS = 168  # Delta's own default: one week
# Delta readers compare strings in statistics by their bytes; longer values are left without min/max
# rather than truncated (a truncated max would have to be rounded up to stay an upper bound).
_STRING_STATS_LIMIT = 32


@dataclass(frozen=True)
class DataFile:
    """A Parquet file written into a table's folder, ready to be committed."""

    path: str  # relative to the table's folder, as the commit names it
    size: int
    rows: int
    stats: str  # Delta's statistics JSON: numRecords, minValues, maxValues, nullCount
    partition: Mapping[str, str | None] = field(default_factory=dict)  # partition column -> its value


@dataclass(frozen=True)
class Commit:
    """One version of a table, as its log records it."""

    version: int
    timestamp: str  # ISO 8601, UTC
    operation: str
    record: Mapping[str, Any]  # stedi-etl's build record; empty for commits stedi-etl did not make


def write_file(store: Store, table_dir: str, frame: pl.DataFrame, name: str) -> DataFile:
    """Write ``frame`` as one zstd Parquet file ``<table_dir>/<name>`` through the store."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    data = buffer.getvalue()
    store.write_bytes(f"{table_dir}/{name}", data)
    return DataFile(name, len(data), frame.height, statistics(frame))


def statistics(frame: pl.DataFrame) -> str:
    """Delta's per-file statistics of ``frame``: what lets readers skip files and count rows unread."""
    import polars as pl

    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for column in frame.columns:
        values = frame.get_column(column)
        nulls[column] = values.null_count()
        dtype = values.dtype
        if not (dtype.is_integer() or dtype.is_float() or dtype == pl.String):
            continue
        present = values.drop_nulls()
        if dtype.is_float():
            present = present.filter(present.is_finite())
        if present.is_empty():
            continue
        low, high = present.min(), present.max()
        if dtype == pl.String and max(len(str(low)), len(str(high))) > _STRING_STATS_LIMIT:
            continue
        if isinstance(low, float) and not (math.isfinite(low) and math.isfinite(high)):  # type: ignore[arg-type]
            continue
        minimum[column], maximum[column] = low, high
    return json.dumps(
        {"numRecords": frame.height, "minValues": minimum, "maxValues": maximum, "nullCount": nulls}
    )


def commit(
    store: Store,
    table_dir: str,
    files: Sequence[DataFile],
    schema: Any,
    record: Mapping[str, Any],
    *,
    mode: Literal["overwrite", "append"] = "overwrite",
    partition_by: Sequence[str] = (),
) -> int:
    """One Delta commit making ``files`` the table's content (``overwrite``) or adding them (``append``),
    with ``record`` in the commit's metadata; the table is created by its first commit. Returns the
    table's new version.

    ``schema`` is the table's Arrow schema (``frame.head(0).to_arrow().schema``), partition columns
    included; ``partition_by`` names those, whose values each file carries (``DataFile.partition``) rather
    than holds. Every file must already be in the table's folder with the size given: a commit naming a
    missing file would succeed and break every later read. An overwrite that changes the table's partition
    columns writes the table's metadata anew (a plain overwrite would keep the old ones and read the new
    column as null).
    """
    from deltalake import DeltaTable, Schema
    from deltalake.exceptions import TableNotFoundError
    from deltalake.transaction import AddAction, CommitProperties, create_table_with_add_actions

    present = store.files(table_dir)
    for data_file in files:
        found = present.get(f"{table_dir}/{data_file.path}")
        if found != data_file.size:
            state = "missing" if found is None else f"{found} bytes, not {data_file.size}"
            raise LakeError(f"cannot commit {store.url(table_dir)}: {data_file.path} is {state}")
    now = int(time.time() * 1000)
    adds = [AddAction(f.path, f.size, dict(f.partition), now, True, f.stats) for f in files]
    properties = CommitProperties(custom_metadata={RECORD_KEY: json.dumps(dict(record), sort_keys=True)})
    uri, options = store.table_uri(table_dir), store.table_options()
    partitions = list(partition_by)
    try:
        try:
            table = DeltaTable(uri, storage_options=options)
        except TableNotFoundError:
            create_table_with_add_actions(
                uri, Schema.from_arrow(schema), adds, mode="error", partition_by=partitions or None,
                storage_options=options, commit_properties=properties,
            )  # fmt: skip
            return 0
        if mode == "overwrite" and list(table.metadata().partition_columns) != partitions:
            create_table_with_add_actions(
                uri, Schema.from_arrow(schema), adds, mode="overwrite", partition_by=partitions or None,
                storage_options=options, commit_properties=properties,
            )  # fmt: skip
            table.update_incremental()
            return int(table.version())
        table.create_write_transaction(
            adds, mode, schema, partition_by=partitions or None, commit_properties=properties
        )
        table.update_incremental()  # the handle stays at the version it was loaded at
        return int(table.version())
    except LakeError:
        raise
    except Exception as err:
        raise StorageError(f"cannot commit {redact(uri)}: {_first_line(err, store)}") from None


def partition_columns(store: Store, table_dir: str, at_version: int) -> list[str]:
    """The table's partition columns at a version."""
    from deltalake import DeltaTable

    uri = store.table_uri(table_dir)
    try:
        table = DeltaTable(uri, version=at_version, storage_options=store.table_options())
        return list(table.metadata().partition_columns)
    except Exception as err:
        raise StorageError(f"cannot read {redact(uri)}: {_first_line(err, store)}") from None


def version(store: Store, table_dir: str) -> int | None:
    """The table's latest version (its newest commit file); None where no table is."""
    versions = _log_versions(store, table_dir)
    return max(versions) if versions else None


def read(store: Store, table_dir: str, at_version: int | None = None) -> pl.DataFrame:
    """The table's rows at its latest version, or at ``at_version``."""
    import polars as pl

    uri = store.table_uri(table_dir)
    try:
        return pl.read_delta(uri, version=at_version, storage_options=store.polars_options() or None)
    except Exception as err:
        raise StorageError(
            f"cannot read {redact(uri)} at version {at_version}: {_first_line(err, store)}"
        ) from None


def history(store: Store, table_dir: str) -> list[Commit]:
    """Every commit of the table still in its log, newest first; empty where no table is.

    Read from the commit files through the storage layer (one listing, the files fetched together):
    deltalake's own history listed S3 with ``start-after``, which moto's server left unanswered until the
    request's deadline.
    """
    versions = _log_versions(store, table_dir)
    paths = {v: _commit_path(table_dir, v) for v in versions}
    found = store.read_many(paths.values())
    commits = []
    for number, path in paths.items():
        info = _commit_info(found[path], store.url(path))
        moment = datetime.fromtimestamp(int(info.get("timestamp", 0)) / 1000, UTC)
        commits.append(
            Commit(
                number,
                moment.isoformat(timespec="milliseconds"),
                str(info.get("operation", "")),
                _record(info) or {},
            )
        )
    return sorted(commits, key=lambda c: c.version, reverse=True)


def latest_records(
    store: Store, table_dirs: Mapping[str, str], look_back: int = 3
) -> dict[str, tuple[int, dict[str, Any]] | None]:
    """For each table (name -> folder), the newest version whose commit carries stedi-etl's build record,
    with that record; None where no commit does (no table, or one stedi-etl never committed to).

    A vacuum adds two commits without a record after the one it cleans up after, so the newest
    ``look_back`` commits of every table are fetched together and older ones only where needed.
    """
    versions = {name: _log_versions(store, folder) for name, folder in table_dirs.items()}
    found: dict[str, tuple[int, dict[str, Any]] | None] = {}
    window = look_back
    pending = {name for name, numbers in versions.items() if numbers}
    for name in set(versions) - pending:
        found[name] = None
    while pending:
        paths = {
            (name, number): _commit_path(table_dirs[name], number)
            for name in pending
            for number in versions[name][-window:][::-1]
        }
        blobs = store.read_many(paths.values())
        for name in list(pending):
            for number in versions[name][-window:][::-1]:
                path = paths[(name, number)]
                record = _record(_commit_info(blobs[path], store.url(path)))
                if record is not None:
                    found[name] = (number, record)
                    pending.discard(name)
                    break
            else:
                if window >= len(versions[name]):
                    found[name] = None
                    pending.discard(name)
        window *= 4
    return found


def records_at(store: Store, versions: Mapping[str, tuple[str, int]]) -> dict[str, dict[str, Any] | None]:
    """For each table (name -> (folder, version)), the build record that version's commit carries; None
    where the commit has none or is gone. The commit files are fetched together."""
    paths = {name: _commit_path(folder, number) for name, (folder, number) in versions.items()}
    found = store.read_many_if_exists(paths.values())
    records: dict[str, dict[str, Any] | None] = {}
    for name, path in paths.items():
        data = found[path]
        records[name] = None if data is None else _record(_commit_info(data, store.url(path)))
    return records


def _commit_path(table_dir: str, number: int) -> str:
    return f"{table_dir}/{DELTA_LOG}/{number:020d}.json"


def _log_versions(store: Store, table_dir: str) -> list[int]:
    names = (p.rsplit("/", 1)[-1] for p in store.files(f"{table_dir}/{DELTA_LOG}"))
    return sorted(int(n[: -len(".json")]) for n in names if n.endswith(".json") and n[:-5].isdigit())


def _record(info: Mapping[str, Any]) -> dict[str, Any] | None:
    """stedi-etl's build record in a commit's info; None for a commit stedi-etl did not make."""
    raw = info.get(RECORD_KEY)
    return json.loads(raw) if isinstance(raw, str) else None


def _commit_info(data: bytes, where: str) -> dict[str, Any]:
    """The commitInfo action of a commit file (newline-delimited JSON actions)."""
    try:
        for line in data.splitlines():
            action = json.loads(line) if line.strip() else {}
            if "commitInfo" in action:
                return dict(action["commitInfo"])
    except ValueError as err:
        raise LakeError(f"{where} is not a Delta commit: {err}") from None
    return {}


def vacuum(store: Store, table_dir: str, retention_hours: float = DEFAULT_RETENTION_HOURS) -> list[str]:
    """Delete the files no version younger than ``retention_hours`` needs, and files no commit names
    (a killed run's) once that old; the paths removed.

    Versions whose files are gone can no longer be read (their commits stay in the log).
    """
    table = _open(store, table_dir)
    if table is None:
        return []
    try:
        return list(
            table.vacuum(
                retention_hours=int(retention_hours),
                dry_run=False,
                enforce_retention_duration=retention_hours >= DEFAULT_RETENTION_HOURS,
                full=True,  # files no commit ever named too: what a killed run left
            )
        )
    except Exception as err:
        raise StorageError(
            f"cannot vacuum {redact(store.table_uri(table_dir))}: {_first_line(err, store)}"
        ) from None


def _open(store: Store, table_dir: str) -> Any:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = store.table_uri(table_dir)
    try:
        return DeltaTable(uri, storage_options=store.table_options())
    except TableNotFoundError:
        return None
    except Exception as err:
        raise StorageError(f"cannot open {redact(uri)}: {_first_line(err, store)}") from None


def _first_line(err: BaseException, store: Store | None = None) -> str:
    """deltalake's error as one line: the S3 error code and message where its cause chain has them (as
    s3fs's errors say them), the endpoint that did not answer (object_store's own deadline), else its
    first line."""
    text = redact(str(err)).strip()
    if store is not None and store.protocol in S3_PROTOCOLS:
        if "connection refused" in text.lower():
            return f"cannot connect to {store.endpoint}"
        if any(sign in text for sign in ("timed out", "error sending request", "operation timed out")):
            return f"no answer from {store.endpoint} within {store.fs.deadline():g} s ({TIMEOUT_ENV})"
    code = re.search(r"<Code>(\w+)</Code>", text)
    if code:
        message = re.search(r"<Message>([^<]*)</Message>", text)
        return code.group(1) + (f": {message.group(1)}" if message else "")
    return text.splitlines()[0] if text else type(err).__name__
