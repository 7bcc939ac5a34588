"""The only place that knows where things live, and the one publish protocol for disk and S3.

Layout under a landing root: ``<root>/<dataset>/landing/**``.
Layout under a lake root (the public starter's):
    <lake>/customer/trusted, <lake>/customer/curated, <lake>/accelerometer/trusted,
    <lake>/step_trainer/trusted, <lake>/step_trainer/curated (machine_learning_curated),
    <lake>/_quarantine/<dataset>; and stedi-etl's own records: <lake>/_stedi/runs/<run-id>.json (one
    manifest per run), <lake>/_stedi/lock (the one-writer lock, see lock.py) and <lake>/_stedi/landing.json
    (the landing the lake's tables were last built from, which commands use when --landing is not given).

Publishing a table (the same steps on a local disk and on S3):
1. once every table of the run is built and checked, write each new version's Parquet files into a fresh
   folder ``<table>/v-<run-id>/`` (concurrently on S3);
2. then replace each table's small pointer object ``<table>/_current.json``, which names the version, its
   files, row count and contract hash (a rename on disk, a single object write on S3: readers see the old
   pointer or the new one);
3. then delete every other version, found with one listing per dataset folder.
Readers resolve the pointer first and read only the files it names, so they never see a mix or a
half-written file. A run that dies before step 2 leaves the previous version current; its half-written
folder is removed by the next run. Only the holder of the lake's lock (lock.py) publishes, so no other
writer's folder can be in flight.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from stedi_etl import sample_landing
from stedi_etl.contracts import (
    QUARANTINE_SUFFIX,
    lake_tables,
    quarantine_tables,
    table_contract,
)
from stedi_etl.errors import LakeError, StorageError, UsageError
from stedi_etl.lake.storage import Store, is_hidden, normal_uri, open_store

if TYPE_CHECKING:
    import polars as pl

POINTER = "_current.json"
LANDING_RECORD = "landing.json"
LANDING_RECORD_FORMAT = "stedi-etl/landing/1"
POINTER_FORMAT = "stedi-etl/table-pointer/1"
VERSION_PREFIX = "v-"
META = "_stedi"


def new_run_id() -> str:
    """Sortable by time, unique across machines: 20261128T105800123Z-1a2b3c."""
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Pointer:
    """The content of a table's _current.json: which version readers get."""

    table: str
    version: str
    files: tuple[str, ...]  # relative to the table folder
    rows: int
    contract: str
    contract_sha256: str
    written_at: str
    run: dict[str, Any] = field(default_factory=dict)
    format: str = POINTER_FORMAT
    # What the version was built from (contract, code, options, inputs) and what it holds: a later run with
    # the same fingerprint would build the same table, and downstream tables key on the content.
    fingerprint: str = ""
    content_sha256: str = ""

    def to_json(self) -> bytes:
        return json.dumps({**asdict(self), "files": list(self.files)}, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Pointer:
        try:
            fields = json.loads(data)
            if fields.get("format") != POINTER_FORMAT:
                raise ValueError(f"unknown pointer format {fields.get('format')!r}")
            fields["files"] = tuple(fields["files"])
            return cls(**fields)
        except (ValueError, TypeError, KeyError) as err:
            raise LakeError(f"{where} is not a stedi-etl table pointer: {err}") from None


@dataclass(frozen=True)
class Staged:
    """A table version ready to publish: its pointer and its files' bytes by path."""

    pointer: Pointer
    files: dict[str, bytes]

    def scan(self) -> pl.LazyFrame:
        """The version's rows, read from its Parquet bytes as a query needs them."""
        import polars as pl

        return pl.concat([pl.scan_parquet(io.BytesIO(data)) for data in self.files.values()])


class Lake:
    """A lake root: where each table lives, how a version is published, and how a reader finds it."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def of(cls, lake: Lake | str, endpoint_url: str | None = None) -> Lake:
        """``lake`` itself, or the lake at a root URI: a command opens its lake once and passes it on."""
        return lake if isinstance(lake, Lake) else cls(open_store(lake, endpoint_url=endpoint_url))

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

    def pointers(self, tables: Sequence[str]) -> dict[str, Pointer | None]:
        """The current pointer of each of ``tables`` (fetched together: concurrent requests on S3)."""
        paths = {table: f"{self.table_dir(table)}/{POINTER}" for table in tables}
        # One request each on S3, where exists() then a read took two.
        found = self.store.read_many_if_exists(paths.values())
        return {
            table: None if found[path] is None else Pointer.from_json(found[path], self.store.url(path))  # type: ignore[arg-type]
            for table, path in paths.items()
        }

    def pointer(self, table: str) -> Pointer | None:
        return self.pointers([table])[table]

    def read(self, table: str) -> pl.DataFrame:
        """The current version of ``table``; a version pruned while being read is re-resolved once."""
        for attempt in (1, 2):
            pointer = self.pointer(table)
            if pointer is None:
                raise LakeError(f"{table} has no published version in {self.uri}")
            try:
                return self._read_version(table, pointer)
            except StorageError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _read_version(self, table: str, pointer: Pointer) -> pl.DataFrame:
        import polars as pl

        directory = self.table_dir(table)
        paths = [f"{directory}/{name}" for name in pointer.files]
        blobs = self.store.read_many(paths)
        contract = table_contract(table)
        frames = [pl.read_parquet(io.BytesIO(blobs[p])) for p in paths]
        if not frames:
            return contract.empty_frame()
        return pl.concat(frames, how="vertical")

    def stage(
        self, table: str, frame: pl.DataFrame, run_id: str, run: dict[str, Any], fingerprint: str = ""
    ) -> Staged:
        """A new version of ``table``, serialised in memory; nothing is written until ``publish``."""
        contract = table_contract(table)
        version = f"{VERSION_PREFIX}{run_id}"
        name = f"{version}/part-00000.parquet"
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd", statistics=True)
        pointer = Pointer(
            fingerprint=fingerprint,
            content_sha256=hashlib.sha256(buffer.getbuffer()).hexdigest(),
            table=table,
            version=version,
            files=(name,),
            rows=frame.height,
            contract=contract.name,
            contract_sha256=contract.sha256,
            written_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            run=run,
        )
        return Staged(pointer, {f"{self.table_dir(table)}/{name}": buffer.getvalue()})

    def publish(self, staged: Sequence[Staged], unchanged: Sequence[Pointer] = ()) -> list[str]:
        """Steps 1-3 for a run's new versions; returns the folders it removed.

        Every version's files are written (concurrently on S3) before any pointer moves, so a run that dies
        while writing leaves every table at its previous version. ``unchanged`` are the current pointers
        of the run's up-to-date tables, whose leftovers are cleared too.
        """
        if staged:
            self.store.write_many({path: data for s in staged for path, data in s.files.items()})
            self.store.replace_many(
                {f"{self.table_dir(s.pointer.table)}/{POINTER}": s.pointer.to_json() for s in staged}
            )
        return self.prune([s.pointer for s in staged] + list(unchanged))

    def prune(self, current: Sequence[Pointer]) -> list[str]:
        """Step 3: delete every version of each table but ``current`` one, and stray pointer temporaries.

        Only the lock holder publishes, so no other writer can have a version in flight: a folder newer than
        the current version is a dead run's leftover. One listing per dataset folder finds them all (one
        request each on S3 for under 1000 files), without listing the run manifests.
        """
        if not current:
            return []
        listed: dict[str, bool] = {}  # path -> is a folder (empty folders too: a killed run leaves them)
        for parent in sorted({self.table_dir(p.table).rsplit("/", 1)[0] for p in current}):
            listed.update(self.store.tree(parent))
        doomed: dict[str, bool] = {}
        removed: set[str] = set()  # the superseded versions and temporaries, as named in the table folder
        for pointer in current:
            directory = self.table_dir(pointer.table) + "/"
            for path, is_folder in listed.items():
                if not path.startswith(directory):
                    continue
                name = path[len(directory) :].split("/", 1)[0]
                stale = name.startswith(VERSION_PREFIX) and name != pointer.version
                if stale or name.startswith(f"{POINTER}.tmp-"):
                    doomed[path] = is_folder
                    removed.add(directory + name)
        self.store.remove_many([p for p, d in doomed.items() if not d], [p for p, d in doomed.items() if d])
        return sorted(removed)

    def tables(self) -> dict[str, Pointer]:
        """Every table of the lake that has a published version."""
        names = [*lake_tables(), *quarantine_tables()]
        return {name: pointer for name, pointer in self.pointers(names).items() if pointer is not None}

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

    def version_dir(self, table: str, pointer: Pointer) -> str:
        """The folder holding the files of the version ``pointer`` names."""
        return f"{self.table_dir(table)}/{pointer.version}"


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
    """The data files at a store's root: the file itself, a table version's files as its pointer names
    them, or every file of a folder that is not hidden."""
    root = store.path()
    if not store.exists(root):
        raise UsageError(f"no such file or folder: {store.uri}")
    if not store.isdir(root):
        return [root]
    pointer_path = store.path(POINTER)
    pointer_json = store.read_if_exists(pointer_path)
    if pointer_json is not None:
        files = [store.path(name) for name in Pointer.from_json(pointer_json, store.url(pointer_path)).files]
    else:
        files = [p for p in store.files(root) if not is_hidden(store.relative(p))]
    if not files:
        raise UsageError(f"no data files in {store.uri}")
    return files


def read_table(lake: str, table: str, *, endpoint_url: str | None = None) -> pl.DataFrame:
    """The current version of a lake table, e.g. ``read_table("s3://b/lake", "machine_learning_curated")``."""
    return Lake.of(lake, endpoint_url).read(table)


def elapsed(started: float) -> float:
    return round(time.perf_counter() - started, 4)
