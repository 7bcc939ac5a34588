"""The only place that knows where things live, and the one publish protocol for disk and S3.

Layout under a landing root: ``<root>/<dataset>/landing/**``.
Layout under a lake root (the public starter's):
    <lake>/customer/trusted, <lake>/customer/curated, <lake>/accelerometer/trusted,
    <lake>/step_trainer/trusted, <lake>/step_trainer/curated (machine_learning_curated),
    <lake>/_quarantine/<dataset>; and stedi-etl's own records: <lake>/_stedi/runs/<run-id>.json (one
    manifest per run), <lake>/_stedi/lock (the one-writer lock, see lock.py) and <lake>/_stedi/landing.json
    (the landing the lake's tables were last built from, which commands use when --landing is not given).

Every table is a Delta Lake table at that fixed location (lake/delta.py): any Delta reader (Polars, pandas
through deltalake, DuckDB over Arrow, Spark, Athena) reads it there, whole, at its latest commit.

Publishing a run's tables (the same steps on a local disk and on S3):
1. once every table of the run is built and checked, write each table's new Parquet file into its folder,
   named by the run (concurrently on S3, through the one storage layer);
2. commit each table: one Delta commit that makes the new file the table's whole content and carries the
   build record (run, contract hash, fingerprint, rows, content hash) in its metadata;
3. vacuum each committed table: files no version younger than the retention needs are deleted (a killed
   run's unreferenced files too), so earlier versions stay readable for that long.
A run that dies before a table's commit leaves that table at its previous version. Only the holder of the
lake's lock (lock.py) commits. A lake of the release before Delta tables (version folders and
``_current.json`` pointers) is converted by the next run, which rebuilds and commits every table and then
removes the old folders; readers refuse it until then, with one line saying so.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from stedi_etl import sample_landing
from stedi_etl.contracts import (
    QUARANTINE_SUFFIX,
    lake_tables,
    quarantine_tables,
    table_contract,
)
from stedi_etl.errors import LakeError, StorageError, UsageError
from stedi_etl.lake import delta
from stedi_etl.lake.storage import Store, is_hidden, normal_uri, open_store

if TYPE_CHECKING:
    import polars as pl

LANDING_RECORD = "landing.json"
LANDING_RECORD_FORMAT = "stedi-etl/landing/1"
RECORD_FORMAT = "stedi-etl/build-record/1"
SNAPSHOT = "snapshot.json"
SNAPSHOT_FORMAT = "stedi-etl/lake-snapshot/1"
META = "_stedi"
# What the release before Delta tables wrote: a pointer per table and one folder per version.
LEGACY_POINTER = "_current.json"
LEGACY_VERSION_PREFIX = "v-"


HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # the folder of a null partition value, as Hive and Spark name it


def day_label(day: int) -> str:
    """A UTC day number as a file name shows it: 2022-06-18."""
    try:
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)).strftime("%Y-%m-%d")
    except OverflowError:  # no reading time (or none a calendar holds)
        return f"day{day}"


def new_run_id() -> str:
    """Sortable by time, unique across machines: 20261128T105800123Z-1a2b3c."""
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Pointer:
    """A table's version and the build record its Delta commit carries: what readers of it get."""

    table: str
    version: int  # the table's Delta version (-1 while staged: the commit gives it)
    files: tuple[str, ...]  # the version's data files, relative to the table folder
    rows: int
    contract: str
    contract_sha256: str
    written_at: str
    run: dict[str, Any] = field(default_factory=dict)
    format: str = RECORD_FORMAT
    # What the version was built from (contract, code, options, inputs) and what it holds: a later run with
    # the same fingerprint would build the same table, and downstream tables key on the content.
    fingerprint: str = ""
    content_sha256: str = ""
    # For a table built day by day of its reading time: each day's file, rows, Delta statistics, size, what
    # it was built from and what it holds (keyed by the UTC day number, as text): a later run keeps a day
    # whose fingerprint is unchanged.
    partitions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The build record as a commit's metadata holds it (the version is the commit's own)."""
        fields = {**asdict(self), "files": list(self.files)}
        del fields["version"]
        return fields

    @classmethod
    def from_record(cls, table: str, version: int, record: dict[str, Any], where: str) -> Pointer:
        try:
            if record.get("format") != RECORD_FORMAT:
                raise ValueError(f"unknown build record format {record.get('format')!r}")
            return cls(**{**record, "table": table, "version": version, "files": tuple(record["files"])})
        except (ValueError, TypeError, KeyError) as err:
            raise LakeError(f"{where} is not a commit of stedi-etl: {err}") from None


@dataclass(frozen=True)
class Snapshot:
    """The lake as one run left it: the Delta version of every table, read together."""

    run_id: str
    written_at: str
    versions: dict[str, int]
    format: str = SNAPSHOT_FORMAT

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Snapshot:
        try:
            fields = json.loads(data)
            if fields.get("format") != SNAPSHOT_FORMAT:
                raise ValueError(f"unknown snapshot format {fields.get('format')!r}")
            return cls(**{**fields, "versions": {t: int(v) for t, v in fields["versions"].items()}})
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise LakeError(f"{where} is not a stedi-etl lake snapshot: {err}") from None


@dataclass(frozen=True)
class Staged:
    """A table version ready to publish: its record (version still to come), file bytes, schema, stats."""

    pointer: Pointer
    files: dict[str, bytes]  # path -> bytes: the new Parquet files in the table's folder
    schema: Any  # the table's Arrow schema, for its Delta commit
    stats: str  # Delta statistics of the file (of a table in one file; a table built by day: its record's)

    @property
    def scannable(self) -> bool:
        """Whether every row of the version is in this run's bytes (no day kept from an earlier version)."""
        return bool(self.files) and len(self.files) == len(self.pointer.files)

    def scan(self) -> pl.LazyFrame:
        """The version's rows, read from its Parquet bytes as a query needs them (when ``scannable``)."""
        import polars as pl

        return pl.concat([pl.scan_parquet(io.BytesIO(data)) for data in self.files.values()])


class Lake:
    """A lake root: where each table lives, how a version is published, and how a reader finds it."""

    def __init__(self, store: Store, as_of: str | None = None) -> None:
        self.store = store
        self.as_of = as_of  # a run id or an ISO time: every read sees the snapshot then current
        self._held: Snapshot | None = None  # see held()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Lake, (self.store, self.as_of))  # what another process needs: where, and as of when

    @classmethod
    def of(cls, lake: Lake | str, endpoint_url: str | None = None, *, as_of: str | None = None) -> Lake:
        """``lake`` itself, or the lake at a root URI (as it was ``as_of`` a run or a time): a command opens
        its lake once and passes it on."""
        if isinstance(lake, Lake):
            return lake
        return cls(open_store(lake, endpoint_url=endpoint_url), as_of)

    @property
    def uri(self) -> str:
        return self.store.uri

    def table_dir(self, table: str) -> str:
        contract = table_contract(table)
        if table.endswith(QUARANTINE_SUFFIX):  # one table per dataset, in the quarantine's own folder
            return self.store.path(contract.dataset, table.removesuffix(QUARANTINE_SUFFIX))
        return self.store.path(contract.dataset, contract.zone)

    def meta_path(self, *parts: str) -> str:
        """Where stedi-etl keeps its own records in the lake (run manifests, the lock)."""
        return self.store.path(META, *parts)

    def run_path(self, run_id: str) -> str:
        return self.meta_path("runs", f"{run_id}.json")

    def require_folder(self) -> None:
        """Refuse a lake root that is a file before anything is written under it."""
        if self.store.is_file(self.store.path()):
            raise UsageError(f"lake {self.uri} is a file, not a folder")

    def snapshot(self) -> Snapshot | None:
        """The lake's current snapshot: the versions its latest complete run left; None before the first.
        A lake opened ``as_of`` a run or a time gives the snapshot current then."""
        if self._held is not None:
            return self._held
        if self.as_of is not None:
            return self.snapshot_as_of(self.as_of)
        path = self.meta_path(SNAPSHOT)
        found = self.store.read_if_exists(path)
        return None if found is None else Snapshot.from_json(found, self.store.url(path))

    def held(self) -> Lake:
        """This lake held at the snapshot it has now: a command that reads it several times (the report's
        catalog, then its tables) sees one run's lake however many runs finish meanwhile, and resolves the
        snapshot once. A lake without a snapshot comes back as it is."""
        snapshot = self.snapshot()
        if snapshot is None:
            return self
        held = Lake(self.store, self.as_of)
        held._held = snapshot
        return held

    def snapshot_as_of(self, as_of: str) -> Snapshot:
        """The snapshot of run ``as_of``, or the latest one written at or before the time ``as_of``."""
        listed = sorted(p for p in self.store.files(self.meta_path("snapshots")) if p.endswith(".json"))
        by_run = {p.rsplit("/", 1)[-1][: -len(".json")]: p for p in listed}
        if as_of in by_run:
            return Snapshot.from_json(self.store.read_bytes(by_run[as_of]), self.store.url(by_run[as_of]))
        try:
            moment = datetime.fromisoformat(as_of)
        except ValueError:
            raise UsageError(
                f"--as-of {as_of}: neither a run with a snapshot in {self.uri} nor an ISO time "
                "(stedi-etl runs lists the runs)"
            ) from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        found = [s for s in (Snapshot.from_json(d, p) for p, d in self.store.read_many(listed).items())]
        earlier = [s for s in found if datetime.fromisoformat(s.written_at) <= moment]
        if not earlier:
            raise UsageError(f"--as-of {as_of}: {self.uri} has no snapshot that early")
        return max(earlier, key=lambda s: s.written_at)

    def write_snapshot(self, run_id: str, versions: dict[str, int]) -> Snapshot:
        """Record, as one object, the version of every table a run left: kept under its run id, then made
        current (a rename on disk, one PUT on S3), so readers switch from one run's lake to the next whole."""
        snapshot = Snapshot(run_id, datetime.now(UTC).isoformat(timespec="milliseconds"), dict(versions))
        self.store.write_bytes(self.meta_path("snapshots", f"{run_id}.json"), snapshot.to_json())
        self.store.replace(self.meta_path(SNAPSHOT), snapshot.to_json())
        return snapshot

    def pointers(self, tables: Sequence[str], snapshot: Snapshot | None = None) -> dict[str, Pointer | None]:
        """Each of ``tables`` at the version the lake's snapshot names (``snapshot``, or the current one):
        one run's tables, never a mix. A table the snapshot does not name, or a lake without a snapshot
        (written before snapshots), is read at its latest version stedi-etl committed."""
        snapshot = snapshot if snapshot is not None else self.snapshot()
        named = {
            t: (self.table_dir(t), snapshot.versions[t])
            for t in tables
            if snapshot and t in snapshot.versions
        }
        records = delta.records_at(self.store, named)
        found: dict[str, Pointer | None] = {
            table: None
            if records[table] is None
            else Pointer.from_record(table, named[table][1], records[table], self.store.url(named[table][0]))  # type: ignore[arg-type]
            for table in named
        }
        rest = [t for t in tables if t not in named]
        if rest:
            found |= self.latest_pointers(rest)
        return {table: found[table] for table in tables}

    def latest_pointers(self, tables: Sequence[str]) -> dict[str, Pointer | None]:
        """Each of ``tables`` at its latest version stedi-etl committed, whatever the snapshot says."""
        latest = delta.latest_records(self.store, {table: self.table_dir(table) for table in tables})
        return {
            table: None
            if hit is None
            else Pointer.from_record(table, hit[0], hit[1], self.store.url(self.table_dir(table)))
            for table, hit in latest.items()
        }

    def pointer(self, table: str) -> Pointer | None:
        return self.pointers([table])[table]

    def read(self, table: str, pointer: Pointer | None = None) -> pl.DataFrame:
        """``table`` at ``pointer``'s version, or at the snapshot's; a version vacuumed while being read is
        re-resolved once (not for a lake opened ``as_of``: that snapshot is no longer kept)."""
        for attempt in (1, 2):
            current = pointer or self.pointer(table)
            if current is None:
                self.refuse_legacy()
                raise LakeError(f"{table} has no published version in {self.uri}")
            try:
                return delta.read(self.store, self.table_dir(table), current.version)
            except StorageError:
                if self.as_of is not None:
                    raise UsageError(
                        f"--as-of {self.as_of}: {table} version {current.version} is no longer kept (its "
                        "files were vacuumed after the retention)"
                    ) from None
                if attempt == 2 or pointer is not None:
                    raise
        raise AssertionError("unreachable")

    def stage(
        self, table: str, frame: pl.DataFrame, run_id: str, run: dict[str, Any], fingerprint: str = ""
    ) -> Staged:
        """A new version of ``table``, serialised in memory; nothing is written until ``publish``."""
        contract = table_contract(table)
        name = f"part-00000-{run_id}.parquet"
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd", statistics=True)
        pointer = Pointer(
            fingerprint=fingerprint,
            content_sha256=hashlib.sha256(buffer.getbuffer()).hexdigest(),
            table=table,
            version=-1,
            files=(name,),
            rows=frame.height,
            contract=contract.name,
            contract_sha256=contract.sha256,
            written_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            run=run,
        )
        schema = frame.head(0).to_arrow().schema
        files = {f"{self.table_dir(table)}/{name}": buffer.getvalue()}
        return Staged(pointer, files, schema, delta.statistics(frame))

    def write_days(self, table: str, days: dict[int, pl.DataFrame], run_id: str) -> dict[int, dict[str, Any]]:
        """Write a file for each of ``days`` of a table built by day into its folder now, and give each
        day's record. No commit names them yet: readers do not see them, a failed table's are removed
        (``discard``), and a killed run's are vacuumed once older than the retention."""
        files: dict[str, bytes] = {}
        records: dict[int, dict[str, Any]] = {}
        partitions = table_contract(table).partition_columns  # the day, as a date: a folder per value
        for day, whole in days.items():
            values = {
                column: None if (value := whole.get_column(column)[0]) is None else value.isoformat()
                for column in partitions
            }
            folder = "".join(f"{column}={value or HIVE_NULL}/" for column, value in values.items())
            name = f"{folder}part-{day_label(day)}-{run_id}.parquet"
            frame = whole.drop(partitions)
            buffer = io.BytesIO()
            frame.write_parquet(buffer, compression="zstd", statistics=True)
            data = buffer.getvalue()
            files[f"{self.table_dir(table)}/{name}"] = data
            records[day] = {
                "file": name,
                "rows": frame.height,
                "size": len(data),
                "stats": delta.statistics(frame),
                "content": hashlib.sha256(data).hexdigest()[:32],
                "partition": values,
            }
        self.store.write_many(files)
        return records

    def discard(self, table: str, records: Iterable[dict[str, Any]]) -> None:
        """Remove the files ``write_days`` wrote for a table that will not be committed."""
        paths = [f"{self.table_dir(table)}/{record['file']}" for record in records if record["file"]]
        if paths:
            self.store.remove_many(paths)

    def file_paths(self, table: str, files: Sequence[str]) -> tuple[str, ...]:
        """A table's files (as its record names them, relative to its folder) as paths of the store."""
        return tuple(f"{self.table_dir(table)}/{name}" for name in files)

    def scan_files(self, table: str, files: Sequence[str]) -> pl.LazyFrame:
        """Files of a table's folder (a version about to be committed) as one lazy scan."""
        return self.store.scan_parquet(self.file_paths(table, files), table_contract(table).file_schema())

    def stage_days(
        self,
        table: str,
        written: dict[int, dict[str, Any]],
        kept: dict[int, dict[str, Any]],
        fingerprints: dict[int, str],
        schema: Any,
        run: dict[str, Any],
        fingerprint: str,
    ) -> Staged:
        """A new version of a table built by day: the files ``written`` this run (``write_days``) and
        those of the ``kept`` days (their records from the last version) as they are."""
        contract = table_contract(table)
        days = {**kept, **written}
        for day, fingerprint_of_day in fingerprints.items():
            if day in days:
                days[day] = {**days[day], "fingerprint": fingerprint_of_day}
        ordered = sorted(days)
        content = "\n".join(f"{day} {days[day]['content']}" for day in ordered)
        with_files = [day for day in ordered if days[day]["file"] is not None]  # a day may have no rows out
        pointer = Pointer(
            fingerprint=fingerprint,
            content_sha256=hashlib.sha256(content.encode()).hexdigest(),
            table=table,
            version=-1,
            files=tuple(days[day]["file"] for day in with_files),
            rows=sum(days[day]["rows"] for day in ordered),
            contract=contract.name,
            contract_sha256=contract.sha256,
            written_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            run=run,
            partitions={str(day): days[day] for day in ordered},
        )
        return Staged(pointer, {}, schema, "")

    def next_versions(self, tables: Sequence[str]) -> dict[str, int]:
        """The version each table's next commit will get (0 for a new table)."""
        found = {table: delta.version(self.store, self.table_dir(table)) for table in tables}
        return {table: 0 if number is None else number + 1 for table, number in found.items()}

    def publish(
        self,
        staged: Sequence[Staged],
        retention_hours: float = delta.DEFAULT_RETENTION_HOURS,
        expected: dict[str, int] | None = None,
        unchanged: Sequence[Pointer] = (),
        run_id: str = "",
    ) -> dict[str, Pointer]:
        """Steps 1-3 for a run's new versions; each table's pointer at the version its commit made.

        Every file is written (concurrently on S3) before the first commit, so a run that dies while
        writing leaves every table at its previous version. ``expected`` are the versions the run recorded
        in its manifest before publishing; a commit that got another (a writer outside the lock) stops the
        run. ``unchanged`` are the run's up-to-date tables at the versions the snapshot names; one that a
        dead run committed to since gets its version's files back in a new commit. Last, the run's snapshot
        names every table's version (written only when a version changed, or the lake has none yet).
        """
        previous = self.snapshot()
        committed = self._commit_staged(staged, expected) if staged else {}
        restored = self._restore_drifted(unchanged)
        for table in [*committed, *restored]:
            delta.vacuum(self.store, self.table_dir(table), retention_hours)
        if committed:
            self.remove_legacy(list(committed))
        if committed or restored or (previous is None and unchanged):
            versions = dict(previous.versions) if previous else {}
            versions |= {p.table: p.version for p in unchanged}
            versions |= {t: p.version for t, p in {**restored, **committed}.items()}
            self.write_snapshot(run_id or new_run_id(), versions)
        return committed

    def _restore_drifted(self, unchanged: Sequence[Pointer]) -> dict[str, Pointer]:
        """Commit again, as a new version, the snapshot's version of each up-to-date table that took a
        commit after it (from a run that died before its snapshot), so plain Delta readers see it too."""
        later = []
        for pointer in unchanged:
            newest_version = delta.version(self.store, self.table_dir(pointer.table))
            if newest_version is not None and newest_version > pointer.version:
                later.append(pointer)
        latest = self.latest_pointers([p.table for p in later]) if later else {}
        restored: dict[str, Pointer] = {}
        for pointer in later:
            newest = latest[pointer.table]
            if newest is None or newest.version <= pointer.version:
                continue  # only commits without data (a vacuum's) came after it
            directory = self.table_dir(pointer.table)
            sizes = self.store.files(directory)
            by_file = {
                day["file"]: (day["rows"], day["stats"], day.get("partition", {}))
                for day in pointer.partitions.values()
            }
            whole = (pointer.rows, json.dumps({"numRecords": pointer.rows}), {})  # a table in one file
            files = [
                delta.DataFile(name, sizes[f"{directory}/{name}"], *by_file.get(name, whole))
                for name in pointer.files
            ]
            schema = delta.read(self.store, directory, pointer.version).head(0).to_arrow().schema
            partition_by = delta.partition_columns(self.store, directory, pointer.version)
            number = delta.commit(
                self.store, directory, files, schema, pointer.record(), partition_by=partition_by
            )
            restored[pointer.table] = replace(pointer, version=number)
        return restored

    def _commit_staged(self, staged: Sequence[Staged], expected: dict[str, int] | None) -> dict[str, Pointer]:
        self.store.write_many({path: data for s in staged for path, data in s.files.items()})
        committed: dict[str, Pointer] = {}
        for s in staged:
            table, directory = s.pointer.table, self.table_dir(s.pointer.table)
            if s.pointer.partitions:  # built by day: each day's file as its record has it, new or kept
                files = [
                    delta.DataFile(
                        day["file"], day["size"], day["rows"], day["stats"], day.get("partition", {})
                    )
                    for day in s.pointer.partitions.values()
                    if day["file"] is not None
                ]
            else:
                files = [
                    delta.DataFile(path[len(directory) + 1 :], len(data), s.pointer.rows, s.stats)
                    for path, data in s.files.items()
                ]
            partition_by = table_contract(table).partition_columns
            number = delta.commit(
                self.store, directory, files, s.schema, s.pointer.record(), partition_by=partition_by
            )
            if expected is not None and expected.get(table, number) != number:
                raise LakeError(
                    f"{self.store.url(directory)} got version {number}, not {expected[table]}: another "
                    "writer committed to it outside the lake's lock"
                )
            committed[table] = replace(s.pointer, version=number)
        return committed

    def legacy_tables(self) -> list[str]:
        """The tables that still have a pointer of the release before Delta tables."""
        paths = {t: f"{self.table_dir(t)}/{LEGACY_POINTER}" for t in (*lake_tables(), *quarantine_tables())}
        found = self.store.read_many_if_exists(paths.values())
        return [table for table, path in paths.items() if found[path] is not None]

    def refuse_legacy(self) -> None:
        """Stop with one line on a lake of version folders and pointers (the release before Delta tables)."""
        if self.legacy_tables():
            raise LakeError(
                f"{self.uri} was written by an earlier stedi-etl (version folders and {LEGACY_POINTER} "
                f"pointers): run `stedi-etl run-all --lake {self.uri}` once to convert it to Delta tables"
            )

    def remove_legacy(self, tables: Sequence[str]) -> list[str]:
        """Delete the earlier release's pointer and version folders of tables now committed as Delta."""
        doomed_files, doomed_folders = [], []
        for table in tables:
            directory = self.table_dir(table)
            for path, is_folder in self.store.tree(directory).items():
                name = path[len(directory) + 1 :].split("/", 1)[0]
                # Pointers, their temporaries and version folders, with what they hold.
                if name.startswith((LEGACY_POINTER, LEGACY_VERSION_PREFIX)):
                    (doomed_folders if is_folder else doomed_files).append(path)
        if doomed_files or doomed_folders:
            self.store.remove_many(doomed_files, doomed_folders)
        return sorted(doomed_files + doomed_folders)

    def tables(self) -> dict[str, Pointer]:
        """Every table of the lake that has a published version; a lake of the earlier release is refused."""
        names = [*lake_tables(), *quarantine_tables()]
        found = {name: pointer for name, pointer in self.pointers(names).items() if pointer is not None}
        if not found:
            self.refuse_legacy()
        return found

    def write_manifest(self, run_id: str, manifest: dict[str, Any]) -> str:
        """Write (or rewrite, as the run goes on) a run's manifest; each write replaces it whole."""
        path = self.run_path(run_id)
        self.store.replace(path, json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())
        return self.store.url(path)

    def manifests(self, last: int | None = None) -> dict[str, bytes]:
        """The run manifests of the lake by run id, oldest first: all, or the ``last`` ones."""
        listed = self.manifest_paths()[-last:] if last else self.manifest_paths()
        found = self.store.read_many(listed)
        return {p.rsplit("/", 1)[-1][: -len(".json")]: found[p] for p in listed}

    def manifest_paths(self) -> list[str]:
        """Every run manifest's path, oldest first (run ids sort by time)."""
        listed = [p for p in self.store.files(self.meta_path("runs")) if p.endswith(".json")]
        return sorted(listed, key=lambda path: path.rsplit("/", 1)[-1])

    def latest_manifest(self) -> dict[str, Any] | None:
        """The manifest of the newest run, or None before the first run."""
        listed = self.manifest_paths()
        if not listed:
            return None
        try:
            return dict(json.loads(self.store.read_bytes(listed[-1])))
        except ValueError as err:
            raise LakeError(f"{self.store.url(listed[-1])} is not a run manifest: {err}") from None

    def record_landing(self, landing: str, run_id: str) -> None:
        """Remember that the lake's tables were (last) built from ``landing``; the bundled sample is recorded
        as such, so another install of stedi-etl finds its own copy."""
        record = {
            "format": LANDING_RECORD_FORMAT,
            "landing": normal_uri(landing),
            "bundled_sample": normal_uri(landing) == normal_uri(sample_landing()),
            "run_id": run_id,
            "recorded_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        self.store.replace(self.meta_path(LANDING_RECORD), json.dumps(record, indent=2).encode())

    def recorded_landing(self) -> str | None:
        """The landing the lake was built from: its record, or for a lake of an earlier release the newest
        succeeded run's; None for a new lake."""
        where = self.meta_path(LANDING_RECORD)
        found = self.store.read_if_exists(where)
        if found is not None:
            try:
                record = json.loads(found)
                return sample_landing() if record.get("bundled_sample") else str(record["landing"])
            except (ValueError, KeyError, TypeError) as err:
                raise LakeError(f"{self.store.url(where)} is not a landing record: {err}") from None
        if not self.store.exists(self.meta_path("runs")):
            return None
        for path in reversed(self.manifest_paths()):
            try:
                manifest = json.loads(self.store.read_bytes(path))
            except ValueError:
                continue
            if manifest.get("status") == "succeeded" and manifest.get("landing"):
                return str(manifest["landing"])
        return None


LandingSource = Literal["given", "recorded", "sample"]


@dataclass(frozen=True)
class LandingChoice:
    """Which landing a command reads, and why: given with --landing, recorded by the lake, or the sample."""

    uri: str
    source: LandingSource
    recorded: str | None = None  # what the lake recorded, where it has a record

    @property
    def changed_from(self) -> str | None:
        """The landing the lake was built from, where this one is another."""
        if self.recorded is None or normal_uri(self.recorded) == normal_uri(self.uri):
            return None
        return self.recorded


def choose_landing(lake: Lake | None, given: str | None) -> LandingChoice:
    """``given``, else the landing ``lake`` records, else the bundled sample (a new lake, or none).

    A forgotten --landing must never rebuild or read a real lake from the sample, so the sample is only the
    default where the lake has no record of another landing.
    """
    recorded = lake.recorded_landing() if lake is not None else None
    if given:
        return LandingChoice(given, "given", recorded)
    if recorded is not None:
        return LandingChoice(recorded, "recorded", recorded)
    return LandingChoice(sample_landing(), "sample")


def data_files(store: Store) -> list[str]:
    """The data files at a store's root: the file itself, the files of a Delta table's current version
    (of stedi-etl's latest commit), or every file of a folder that is not hidden."""
    root = store.path()
    if not store.exists(root):
        raise UsageError(f"no such file or folder: {store.uri}")
    if not store.isdir(root):
        return [root]
    latest = delta.latest_records(store, {"table": root})["table"]
    if latest is not None:
        pointer = Pointer.from_record("table", latest[0], latest[1], store.uri)
        files = [store.path(name) for name in pointer.files]
    else:
        files = [p for p in store.files(root) if not is_hidden(store.relative(p))]
    if not files:
        raise UsageError(f"no data files in {store.uri}")
    return files


def read_table(
    lake: str, table: str, *, endpoint_url: str | None = None, as_of: str | None = None
) -> pl.DataFrame:
    """A lake table at the lake's current snapshot (or ``as_of`` a run or time), e.g.
    ``read_table("s3://b/lake", "machine_learning_curated")``."""
    return Lake.of(lake, endpoint_url, as_of=as_of).read(table)


def elapsed(started: float) -> float:
    return round(time.perf_counter() - started, 4)
