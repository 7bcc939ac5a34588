"""The only place that knows where things live, and the one publish protocol for disk and S3.

Layout under a landing root: ``<root>/<dataset>/landing/**``.
Layout under a lake root (the public starter's):
    <lake>/customer/trusted, <lake>/customer/curated, <lake>/accelerometer/trusted,
    <lake>/step_trainer/trusted, <lake>/step_trainer/curated (machine_learning_curated),
    <lake>/_quarantine/<dataset>, and <lake>/_runs/<run-id>.json (one manifest per run).

Publishing a table (the same steps on a local disk and on S3):
1. write the new version's Parquet files into a fresh folder ``<table>/v-<run-id>/``;
2. replace the one small pointer object ``<table>/_current.json``, which names the version, its files,
   row count and contract hash (a rename on disk, a single object write on S3: readers see the old
   pointer or the new one);
3. after every table of the run is published, delete versions older than the current one.
Readers resolve the pointer first and read only the files it names, so they never see a mix or a
half-written file. A run that dies before step 2 leaves the previous version current; its half-written
folder is newer than the current version and is left for the next successful run to remove, so a
concurrent writer's folder is never deleted under it.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stedi_etl.contracts import Contract, load_contract
from stedi_etl.errors import LakeError, StorageError
from stedi_etl.storage import Store

if TYPE_CHECKING:
    import polars as pl

POINTER = "_current.json"
POINTER_FORMAT = "stedi-etl/table-pointer/1"
VERSION_PREFIX = "v-"
QUARANTINE_SUFFIX = "_quarantine"
RUNS = "_runs"


def new_run_id() -> str:
    """Sortable by time, unique across machines: 20261128T105800123Z-1a2b3c."""
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


def landing_dir(store: Store, dataset: str) -> str:
    return store.path(dataset, "landing")


def quarantine_table(dataset: str) -> str:
    """The lake table name of a dataset's quarantine, e.g. customer_quarantine."""
    return f"{dataset}{QUARANTINE_SUFFIX}"


def table_contract(table: str) -> Contract:
    return load_contract("quarantine" if table.endswith(QUARANTINE_SUFFIX) else table)


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


class Lake:
    """A lake root: where each table lives, how a version is published, and how a reader finds it."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def uri(self) -> str:
        return self.store.uri

    def table_dir(self, table: str) -> str:
        if table.endswith(QUARANTINE_SUFFIX):
            return self.store.path("_quarantine", table[: -len(QUARANTINE_SUFFIX)])
        contract = load_contract(table)
        return self.store.path(contract.dataset, contract.zone)

    def pointer(self, table: str) -> Pointer | None:
        path = f"{self.table_dir(table)}/{POINTER}"
        data = self.store.read_if_exists(path)  # one request on S3, where exists() then a read took two
        if data is None:
            return None
        return Pointer.from_json(data, self.store.url(path))

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

    def write_version(self, table: str, frame: pl.DataFrame, run_id: str, run: dict[str, Any]) -> Pointer:
        """Step 1: write ``frame`` as a new, not yet visible version of ``table``."""
        contract = table_contract(table)
        version = f"{VERSION_PREFIX}{run_id}"
        name = f"{version}/part-00000.parquet"
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd", statistics=True)
        self.store.write_bytes(f"{self.table_dir(table)}/{name}", buffer.getvalue())
        return Pointer(
            table=table,
            version=version,
            files=(name,),
            rows=frame.height,
            contract=contract.name,
            contract_sha256=contract.sha256,
            written_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            run=run,
        )

    def publish(self, pointer: Pointer) -> None:
        """Step 2: make a written version the one readers get."""
        self.store.replace(f"{self.table_dir(pointer.table)}/{POINTER}", pointer.to_json())

    def prune(self, table: str) -> list[str]:
        """Step 3: delete versions (and stray pointer temporaries) older than the current version."""
        directory = self.table_dir(table)
        names = self.store.listdir(directory)
        if sum(n.startswith(VERSION_PREFIX) for n in names) <= 1 and not any(
            n.startswith(f"{POINTER}.tmp-") for n in names
        ):
            return []  # one version, the current one: nothing to delete, so no pointer to read (on S3, a GET)
        pointer = self.pointer(table)
        if pointer is None:
            return []
        current_run = pointer.version[len(VERSION_PREFIX) :]
        removed = []
        for name in names:
            if name.startswith(VERSION_PREFIX):
                older = name[len(VERSION_PREFIX) :] < current_run
            elif name.startswith(f"{POINTER}.tmp-"):
                older = True
            else:
                continue
            if older:
                self.store.remove(f"{directory}/{name}")
                removed.append(name)
        return removed

    def tables(self) -> dict[str, Pointer]:
        """Every table of the lake that has a published version."""
        from stedi_etl.landing import DATASETS
        from stedi_etl.pipeline import STEPS

        names = [step.table for step in STEPS] + [quarantine_table(d) for d in DATASETS]
        found = {}
        for name in names:
            pointer = self.pointer(name)
            if pointer is not None:
                found[name] = pointer
        return found

    def write_manifest(self, run_id: str, manifest: dict[str, Any]) -> str:
        path = self.store.path(RUNS, f"{run_id}.json")
        self.store.write_bytes(path, json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())
        return self.store.url(path)


def read_table(lake: str, table: str, *, endpoint_url: str | None = None) -> pl.DataFrame:
    """The current version of a lake table, e.g. ``read_table("s3://b/lake", "machine_learning_curated")``."""
    return Lake(Store(lake, endpoint_url=endpoint_url)).read(table)


def elapsed(started: float) -> float:
    return round(time.perf_counter() - started, 4)
