"""The landing reader: every JSON file of a dataset becomes one typed frame, and every record that cannot is
quarantined with its file, line, text and reason. Nothing is dropped silently; nothing crashes the run.

Each file first tries the native path: Polars' NDJSON reader with the schema taken from the contract (no
inference, no per-record Python). The native path only accepts a file when it can prove it read every record
exactly as the tolerant path would; otherwise the file goes to the tolerant path, which splits the text into
records itself and types each one. Both share one set of typing rules:

- keys match contract columns case-insensitively; a record holding a column's key more than once (`email`
  twice, or `email` and `Email`) is quarantined as duplicate_key: which value counts would otherwise be an
  accident of the reader (Polars keeps the first, Python's json and browsers the last);
- text columns take JSON strings, and JSON integers as their digits;
- integer columns take integers, integral numbers and numeric strings within Int64;
- number columns take numbers and numeric strings;
- null and an absent key are the same; anything else is a bad value.

Rows that type correctly then meet the contract's row checks (required columns, ranges, finiteness); a row
that fails one is quarantined too, so the landing frame always satisfies its contract's row rules.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import math
import os
import re
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from stedi_etl.checks.rules import (
    CheckFailure,
    ValidationReport,
    check_frame,
    failure_cases,
    merged_report,
    report_from,
)
from stedi_etl.contracts import INT64_MAX, INT64_MIN, MASK, Column, Contract, landing_table, load_contract
from stedi_etl.errors import LandingError, UsageError
from stedi_etl.lake.storage import FileInfo, Store, is_hidden
from stedi_etl.landing.memory import buffers_reused
from stedi_etl.model.days import DaySums, added, day_sums, on_days, tasks

if TYPE_CHECKING:
    import polars as pl

    from stedi_etl.landing.cache import Entry, ParseCache

BOM = b"\xef\xbb\xbf"

# A batch's parse is what a run holds at its landing peak, so batches are small: at scale 100, 64 MB batches
# of files on disk peaked at 322 MiB and parsed the accelerometer files in 2.70 s, 512 MB batches at 1,118 MiB
# and 3.89 s (their rows written to the parse cache batch by batch either way).
BATCH_BYTES = 64 * 2**20  # the default; a run's memory limit may lower it
READS = 3  # reads of a file that keeps changing as it is read, before its dataset fails
CHECK_ROWS = 2_000_000  # rows checked at once for a rule relating rows of one day (a run passes its budget's)

Reason = Literal[
    "invalid_json", "not_an_object", "duplicate_key", "missing_required", "bad_value", "check_failed"
]
# native: Polars' reader took every record; tolerant: the Python splitter did; mixed: Polars took the file's
# parts around a few bad lines and only the parts holding those went through the splitter.
ReadPath = Literal["native", "tolerant", "mixed"]


def landing_dir(store: Store, dataset: str) -> str:
    """Where a dataset's landing files are: ``<landing root>/<dataset>/landing``."""
    return store.path(dataset, "landing")


def landing_contract(dataset: str) -> Contract:
    return load_contract(landing_table(dataset))


@dataclass(frozen=True)
class Rejected:
    """One landing record that did not become a row."""

    source: str
    line: int
    record: int
    reason: Reason
    detail: str
    raw: str


@dataclass(frozen=True)
class FileRead:
    source: str
    size: int
    rows: int
    quarantined: int
    path: ReadPath
    reused: bool = False  # taken from the parse cache: not read or parsed this time
    tolerant_records: int = 0  # records that went through the tolerant splitter


@dataclass
class ParsedFile:
    """One file's rows (in record order) and rejects; ``lines``/``raws`` are kept by the tolerant path."""

    frame: pl.DataFrame
    rejected: list[Rejected]
    path: ReadPath
    records: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    tolerant_records: int = 0  # records the tolerant splitter read (rows and rejects)
    broken_at: list[int] = field(default_factory=list)  # where each record that did not parse starts (chars)


@dataclass(frozen=True)
class LandingRead:
    """A dataset's landing data: the typed rows, the quarantine, and what each file gave.

    Read without a parse cache, ``frame`` holds the rows. Read with one, the rows stay in the cache's
    entries and ``frame`` is empty: ``lazy()`` scans them, a run reading only what each step needs.
    """

    dataset: str
    frame: pl.DataFrame
    quarantine: pl.DataFrame
    files: tuple[FileRead, ...]
    skipped: dict[str, str]  # each file under the folder not read -> why (hidden, a link not followed, ...)
    report: ValidationReport  # the landing contract's checks on the rows
    seconds: float
    days: DaySums | None = None  # the rows summed by day of ``day_column``, where it was given
    on_store: pl.LazyFrame | None = None  # the rows, where they were left in the parse cache
    # Day -> the parse-cache entries holding its rows (Parquet, paths of the lake's store), where cached.
    parts_by_day: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def quarantined(self) -> int:
        return self.quarantine.height

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def lazy(self) -> pl.LazyFrame:
        """The rows, wherever they are."""
        return self.on_store if self.on_store is not None else self.frame.lazy()

    def quarantined_by_reason(self) -> dict[str, int]:
        if self.quarantine.is_empty():
            return {}
        counts = self.quarantine.get_column("reason").value_counts()
        return dict(sorted(counts.iter_rows(), key=lambda reason_count: (-reason_count[1], reason_count[0])))


HIDDEN = "hidden: names starting with '.' or '_' are skipped, as Spark and Athena skip them"
DOT_PARTS = "a name with a '.' or '..' part, which does not name one file unambiguously"


def why_not_read(relative: str) -> str | None:
    """Why a listed file is not read, by its path within its dataset's folder; None: it is read."""
    if not is_hidden(relative):
        return None
    return DOT_PARTS if {".", ".."} & set(relative.strip("/").split("/")) else HIDDEN


def not_read(
    store: Store, dataset: str, listed: Mapping[str, FileInfo], unread: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each file under a dataset's folder a run does not read (its URL -> why): ``unread``, what its
    listing found and did not follow (``Store.listing``), then the listed files it skips by name."""
    directory = landing_dir(store, dataset)
    hidden = {
        store.url(path): why for path in listed if (why := why_not_read(path[len(directory) :])) is not None
    }
    return dict(sorted({**(unread or {}), **hidden}.items()))


def require_landing(
    store: Store, datasets: Iterable[str], skipped: dict[str, dict[str, str]] | None = None
) -> dict[str, dict[str, FileInfo]]:
    """Each dataset's landing files with their sizes and stamps; refuses a dataset without any (a mistyped
    landing URI must not publish empty tables). What is under a dataset's folder but is not read (a link
    that is not followed, a pipe) goes to ``skipped[dataset]`` (its URL -> why), with the hidden files."""
    listings = {}
    for dataset in datasets:
        unread: dict[str, str] = {}
        listings[dataset] = store.listing(landing_dir(store, dataset), unread)
        if skipped is not None:
            skipped[dataset] = {store.url(path): why for path, why in unread.items()}
        if not listings[dataset]:
            where = store.url(landing_dir(store, dataset))
            raise UsageError(f"no landing files for {dataset} under {where}/ (is the landing URI right?)")
    return listings


def read_landing(
    store: Store,
    dataset: str,
    listed: dict[str, FileInfo] | None = None,
    on_read: Callable[[int], None] | None = None,
    cache: ParseCache | None = None,
    day_column: str | None = None,
    batch_bytes: int = BATCH_BYTES,
    rows_at_once: int = CHECK_ROWS,
    executor: Any = None,
    on_task: Callable[[Any], None] | None = None,
    unread: Mapping[str, str] | None = None,
) -> LandingRead:
    """Read every file under ``<root>/<dataset>/landing/`` (recursively) of ``store``.

    ``listed`` is the folder's listing where the caller has it already (``require_landing``); ``on_read``
    is told the bytes of each batch of files once they are read and parsed (for a progress display).
    Each file's rows meet the contract's row rules as it is parsed (they are rules of one row each), so a
    file's parse is final. With ``cache``, a file parsed by an earlier run (same path, size, stamp,
    contract and reader) is taken from it instead of being read, this run's parses are written to it batch
    by batch, and the rows are left there (``LandingRead.lazy``). With ``day_column``, each file's rows
    are also summed by day of that column (``LandingRead.days``), the sums kept with its parse. Files are
    parsed in batches of about ``batch_bytes`` (a larger file alone); rules relating rows to each other are
    checked a day at a time where they can be, on about ``rows_at_once`` rows at once. ``executor``
    (run/executors.py; None: this process) runs the batches' parses, each ``Done`` told to ``on_task``;
    off this process they need ``cache``, where their rows go. ``unread`` is what the caller's listing
    found and did not read (``require_landing``); with the hidden files, each is in ``LandingRead.skipped``
    with its reason. A file is read when it is a regular file, or a link to one inside the landing root
    (``Store.listing``), and no part of its path within the dataset's folder starts with "." or "_".
    """
    import polars as pl

    started = time.perf_counter()
    contract = landing_contract(dataset)
    directory = landing_dir(store, dataset)
    if listed is None:
        found: dict[str, str] = {}
        listed = store.listing(directory, found)
        unread = {store.url(path): why for path, why in found.items()}
    skipped = not_read(store, dataset, listed, unread)
    wanted = [p for p in listed if store.url(p) not in skipped]
    source_of = {p: store.url(p) for p in wanted}
    keys = {p: cache.key(p[len(directory) :], listed[p]) for p in wanted} if cache else {}
    reused = cache.fetch(list(keys.values())) if cache else {}
    outcomes: dict[str, _FileOutcome] = {
        path: _FileOutcome(
            reused[keys[path]].rows,
            [Rejected(**r) for r in reused[keys[path]].rejected],
            reused[keys[path]].path,  # type: ignore[arg-type]
            reused[keys[path]].tolerant_records,
            reused[keys[path]].days.get(day_column, {}) if day_column else {},
            None,
            reused=True,
            report=_report_from_dict(reused[keys[path]].checks),
        )
        for path in wanted
        if keys.get(path) in reused
    }

    # Each batch of files is a task (``parse_batch``): in this process one after another, or on a cluster.
    to_parse = [p for p in wanted if p not in outcomes]
    if on_read is not None:
        on_read(sum(listed[p].size for p in wanted if p not in to_parse))
    slots = executor.slots if executor is not None else 1
    # What is recorded of a file is what was read: once its batches are parsed, the folder is listed again,
    # and a file whose size or stamp moved meanwhile (a local file's stamp holds its change time, which
    # restoring the modification time, as `rsync --inplace -t` does, cannot hide) is read again with its
    # new ones, its first parse dropped from the cache. A file still moving after READS reads fails the
    # dataset.
    for attempt in range(1, READS + 1):
        _parse_all(
            to_parse, listed, keys, outcomes, batch_bytes, slots, ParseShared(store, cache), executor,
            ParseTask(dataset, (), (), day_column), on_task, on_read,
        )  # fmt: skip
        if not to_parse:
            break
        after = store.listing(directory, {})  # what is not read was reported from the first listing
        moved = [p for p in to_parse if after.get(p) != listed[p]]
        if not moved:
            break
        gone = [p for p in moved if p not in after]
        if gone:
            raise LandingError(f"landing file {store.url(gone[0])} disappeared while it was read; run again")
        if attempt == READS:
            raise LandingError(
                f"landing file {store.url(moved[0])} changed while it was read, {READS} times; run again "
                "once it is written"
            )
        for path in moved:
            if cache is not None:
                cache.forget(keys[path])
                keys[path] = cache.key(path[len(directory) :], after[path])
            listed[path] = after[path]
        to_parse = moved
    ordered = [outcomes[p] for p in wanted]
    rejected = [r for outcome in ordered for r in outcome.rejected]
    entries = [cache.rows_path(keys[p]) for p in wanted] if cache else []
    on_store = cache.store.scan_parquet(entries, contract.polars_schema()) if cache else None
    frame = (
        contract.empty_frame()
        if on_store is not None
        else pl.concat([o.frame for o in ordered], how="vertical")  # type: ignore[misc]
        if ordered
        else contract.empty_frame()
    )
    days = added(o.days for o in ordered) if day_column is not None else None
    report = _dataset_report(frame, on_store, contract, ordered, day_column, days, rows_at_once)
    files = tuple(
        FileRead(
            source_of[path],
            listed[path].size,
            outcome.rows,
            len(outcome.rejected),
            outcome.path,
            outcome.reused,
            outcome.tolerant_records,
        )
        for path, outcome in zip(wanted, ordered, strict=True)
    )
    seconds = time.perf_counter() - started
    parts_by_day: dict[int, list[str]] = {}
    for entry, outcome in zip(entries, ordered, strict=False):  # no entries without a cache
        for day in outcome.days:
            parts_by_day.setdefault(day, []).append(entry)
    return LandingRead(
        dataset,
        frame,
        quarantine_frame(rejected),
        files,
        skipped,
        report,
        seconds,
        days,
        on_store,
        {day: tuple(found) for day, found in parts_by_day.items()},
    )


def _parse_all(
    to_parse: list[str],
    listed: dict[str, FileInfo],
    keys: dict[str, str],
    outcomes: dict[str, _FileOutcome],
    batch_bytes: int,
    slots: int,
    shared: ParseShared,
    executor: Any,
    like: ParseTask,
    on_task: Callable[[Any], None] | None,
    on_read: Callable[[int], None] | None,
) -> None:
    """Parse ``to_parse`` in batches (tasks of ``executor``, else here), into ``outcomes``. The files' bytes
    are held one batch at a time, not the whole dataset's (1 GB at scale 100); on a cluster the batches are
    small enough that every worker has some."""
    task_bytes = batch_bytes
    if slots > 1:
        task_bytes = min(batch_bytes, max(sum(listed[p].size for p in to_parse) // (2 * slots), 1))
    batches = [
        replace(like, paths=tuple(batch), keys=tuple(keys[p] for p in batch) if shared.cache else ())
        for batch in _batches(to_parse, listed, task_bytes)
    ]
    with buffers_reused(batch_bytes):
        done_each = (
            executor.map(parse_batch, batches, shared)
            if executor is not None
            else (_Parsed(i, parse_batch(task, shared)) for i, task in enumerate(batches))
        )
        for done in done_each:
            batch = batches[done.index].paths
            outcomes.update(zip(batch, done.result, strict=True))
            if on_task is not None:
                on_task(done)
            if on_read is not None:
                on_read(sum(listed[p].size for p in batch))


@dataclass(frozen=True)
class ParseTask:
    """A batch of a dataset's landing files to parse, as a description another process can run
    (``parse_batch``): their paths in the landing store and, with a parse cache, their entries' keys."""

    dataset: str
    paths: tuple[str, ...]
    keys: tuple[str, ...]  # one per path; empty without a cache
    day_column: str | None


@dataclass(frozen=True)
class ParseShared:
    """What every parse task of a dataset needs: the landing store, and the parse cache its rows go to."""

    landing: Store
    cache: ParseCache | None


@dataclass(frozen=True)
class _Parsed:
    index: int
    result: list[_FileOutcome]


def parse_batch(task: ParseTask, shared: ParseShared) -> list[_FileOutcome]:
    """Read and parse a batch of files, check each file's rows against the row rules and sum them by day.
    With a cache, each file's parse is written to it and its outcome goes back without rows."""
    store, cache = shared.landing, shared.cache
    contract = landing_contract(task.dataset)
    sources = [store.url(p) for p in task.paths]
    texts = _texts(store, list(task.paths))
    parsed = parse_files(texts, sources, contract)
    del texts

    def finish(index: int) -> _FileOutcome:
        path = task.paths[index]
        outcome = _checked(
            parsed[index], sources[index], partial(_text_of, store, path), contract, task.day_column
        )
        if cache is not None:
            cache.put(task.keys[index], outcome.frame, outcome.entry(task.day_column))  # type: ignore[arg-type]
            outcome.frame = None  # its rows are in the cache now
        return outcome

    # A parse is finished (row rules, day sums, its cache entry) file by file on every core: Polars works
    # on such small frames mostly in the calling thread, and releases the GIL while it does.
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return list(pool.map(finish, range(len(task.paths))))


@dataclass
class _FileOutcome:
    """One file's final parse: its rows that passed the row rules (None once written to the cache), its
    rejects, and what it took."""

    rows: int
    rejected: list[Rejected]
    path: ReadPath
    tolerant_records: int
    days: DaySums
    frame: pl.DataFrame | None
    reused: bool = False
    report: ValidationReport | None = None  # the contract's checks on its rows

    def entry(self, day_column: str | None) -> Entry:
        from stedi_etl.landing.cache import Entry

        return Entry(
            self.rows,
            [asdict(r) for r in self.rejected],
            self.path,
            self.tolerant_records,
            {day_column: self.days} if day_column else {},
            self.report.to_dict() if self.report is not None else {},
        )


def _report_from_dict(fields: dict[str, Any]) -> ValidationReport | None:
    """A file's checks as its cache entry keeps them (None for an entry without: the dataset is checked
    whole then)."""
    try:
        return ValidationReport(
            fields["table"],
            fields["contract"],
            int(fields["rows"]),
            tuple(CheckFailure(**failure) for failure in fields["errors"]),
            tuple(CheckFailure(**failure) for failure in fields["warnings"]),
            fields.get("source"),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _text_of(store: Store, path: str) -> bytes:
    """A file read again: only for a file some of whose rows break a row rule, to find their lines."""
    return _decompress(path, store.read_bytes(path), store.url(path))


def _checked(
    parsed: ParsedFile,
    source: str,
    text_of: Callable[[], bytes],
    contract: Contract,
    day_column: str | None,
) -> _FileOutcome:
    """A file's parse once its rows met the row rules, with its rows summed by day."""
    frame, rejected, report = _apply_row_checks(parsed, source, text_of, contract)
    days = day_sums(frame, day_column).get(0, {}) if day_column else {}
    return _FileOutcome(
        frame.height, rejected, parsed.path, parsed.tolerant_records, days, frame, report=report
    )


def _dataset_report(
    frame: pl.DataFrame,
    on_store: pl.LazyFrame | None,
    contract: Contract,
    outcomes: list[_FileOutcome],
    day_column: str | None,
    days: DaySums | None,
    rows_at_once: int,
) -> ValidationReport:
    """The landing contract's checks on the dataset's rows.

    Rules of one row each held file by file: where the contract has no other and every file was parsed
    now, the files' reports make the dataset's. A rule relating rows to each other (a key's uniqueness)
    needs them together, read back where the cache holds them: a day of ``day_column`` at a time (about
    ``rows_at_once`` rows) where every such rule's key holds that column, since rows of different days then
    never repeat each other (scale 1000's 28M step trainer readings whole took 1.8 GiB); else all at once.
    """
    across_rows = [rule for rule in contract.rules if rule.kind == "duplicates"]
    reports = [o.report for o in outcomes if o.report is not None]
    if on_store is None:
        return check_frame(frame, contract)
    if not across_rows and len(reports) == len(outcomes):
        return merged_report(reports, contract)
    by_day = day_column is not None and all(
        not r.properties or day_column in r.properties for r in across_rows
    )
    if not by_day or not days:
        return check_frame(on_store.collect(), contract)
    parts = tasks({day: sums[0] for day, sums in days.items()}, rows_at_once)
    return merged_report(
        [check_frame(on_store.filter(on_days(day_column, group)).collect(), contract) for group in parts],  # type: ignore[arg-type]
        contract,
    )


def _texts(store: Store, paths: list[str]) -> list[bytes]:
    """Each file's bytes, fetched together (on S3 the requests run concurrently).

    Local files too are read into memory rather than handed to Polars by path: Polars maps a file into
    memory, and a file truncated while mapped (rewritten in place, as `rsync --inplace` does) killed the
    whole process with SIGBUS. Read into memory, a file changed mid-read is only a wrong copy, which the
    listing after the read catches (``read_landing``). The copy costs about 0.3 s per GB (FINDINGS §10).
    """
    blobs = store.read_many(paths)
    return [_decompress(path, blobs.pop(path), store.url(path)) for path in paths]


def _batches(paths: list[str], listed: dict[str, FileInfo], limit: int) -> Iterator[list[str]]:
    """Consecutive runs of files of about ``limit`` bytes together (a larger file alone)."""
    batch: list[str] = []
    size = 0
    for path in paths:
        if batch and size + listed[path].size > limit:
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += listed[path].size
    if batch:
        yield batch


def _decompress(path: str, data: bytes, source: str) -> bytes:
    if not path.endswith(".gz"):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise LandingError(
            f"{source} is named .gz but is not whole gzip data ({err}); nothing was written"
        ) from None


# Formats a landing file is sometimes by mistake, known by their first bytes.
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed data (name it .gz, or decompress it)"),
    (b"PK\x03\x04", "a zip archive"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"(\xb5/\xfd", "zstd-compressed data"),
    (b"PAR1", "a Parquet file"),
    (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an executable"),
)


def not_json_text(data: bytes) -> str | None:
    """What a landing file is instead of JSON text, where its first bytes tell; None if they may be JSON."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    head = data[:8192]
    if b"\x00" in head:  # git's test for binary content; UTF-16 JSON fails it too
        return "binary data (it holds NUL bytes)"
    # One memchr over the file: a 1 GB junk line is refused at once instead of going to the tolerant path.
    if b"{" not in data and data.removeprefix(BOM).strip(b" \t\r\n[],"):
        return _looks_like_markup(data) or "text without a JSON object"
    return None


def _looks_like_markup(data: bytes) -> str | None:
    if data.removeprefix(BOM).lstrip(b" \t\r\n")[:1] == b"<":
        return "HTML or XML (it starts with '<')"
    return None


def _whole_file_problem(parsed: ParsedFile, source: str) -> str | None:
    """A file from which not one record could be read as a JSON object is no landing data at all."""
    if parsed.frame.height or not parsed.rejected:
        return None
    if any(r.reason not in ("invalid_json", "not_an_object") for r in parsed.rejected):
        return None  # objects, if not the records the contract wants: those are quarantined one by one
    first = parsed.rejected[0]
    count = len(parsed.rejected)
    return (
        f"{source} is not JSON records: none of its {count} parts is a JSON object "
        f"(line {first.line}: {first.detail})"
    )


def quarantine_frame(rejected: list[Rejected]) -> pl.DataFrame:
    import polars as pl

    contract = load_contract("quarantine")
    rows = sorted(rejected, key=lambda r: (r.source, r.record))
    return pl.DataFrame(
        {
            "sourceFile": [r.source for r in rows],
            "lineNumber": [r.line for r in rows],
            "recordNumber": [r.record for r in rows],
            "reason": [r.reason for r in rows],
            "detail": [r.detail for r in rows],
            "rawRecord": [r.raw for r in rows],
        },
        schema=contract.polars_schema(),
    ).select(contract.column_names)


# --- one file -----------------------------------------------------------------------------------------------


def parse_file(data: bytes, source: str, contract: Contract) -> ParsedFile:
    """Type one file's records; row checks are applied afterwards, across all files of the dataset.

    A file that is not JSON text at all (binary, compressed, HTML, or not one parsable record) raises
    LandingError: that is a delivery gone wrong, not bad records, and publishing without it would hide it.
    """
    return parse_files([data], [source], contract)[0]


def _refuse_if_not_json(data: bytes, source: str) -> None:
    kind = not_json_text(data)
    if kind:
        raise LandingError(f"{source} is {kind}, not JSON records; nothing was written")


def _read_tolerant_or_refuse(data: bytes, source: str, contract: Contract) -> ParsedFile:
    parsed = read_tolerant(data, source, contract)
    problem = _whole_file_problem(parsed, source)
    if problem:
        # An HTML error page may hold "{" (in its styles), so only now is it known to be no JSON at all.
        markup = _looks_like_markup(data)
        problem = f"{source} is {markup}, not JSON records" if markup else problem
        raise LandingError(f"{problem}; nothing was written")
    return parsed


def parse_files(texts: list[bytes], sources: list[str], contract: Contract) -> list[ParsedFile]:
    """``parse_file`` for every file of a dataset, with one Polars query parsing all native candidates.

    One ``collect_all`` over per-file scans lets Polars parse files in parallel, where a file at a time
    leaves cores idle between files (about twice the throughput on the 2-core benchmark machine). Each file
    still gets its own frame and its own exactness checks; a file Polars refuses sends the batch back to
    one file at a time, so a bad file costs only itself.
    """
    import polars as pl

    for data, source in zip(texts, sources, strict=True):
        _refuse_if_not_json(data, source)
    plans = [_native_plan(data, contract) for data in texts]
    batch = [index for index, plan in enumerate(plans) if isinstance(plan, _NativeRead)]
    frames: dict[int, pl.DataFrame | None] = {}
    # Polars parses on its own threads without the GIL; counting the files' colons holds it, so a thread
    # counts meanwhile rather than after the parse with a core idle (FINDINGS §15).
    natives: list[_NativeRead] = [plans[index] for index in batch]  # type: ignore[misc]

    def count_colons() -> None:
        for plan in natives:
            plan.colons = plan.data.count(b":")

    with ThreadPoolExecutor(1) as counting:
        counted = counting.submit(count_colons)
        try:
            read = pl.collect_all([_scan(plan) for plan in natives])
        except _native_errors():
            read = [_read_planned(plan) for plan in natives]
        counted.result()
    shaped = _number_shaped_text(read, natives, contract)

    def accepted(plan: _NativeRead, frame: pl.DataFrame | None, suspects: list[str]) -> pl.DataFrame | None:
        return None if frame is None else _accept_native(frame, plan, contract, suspects)

    # Each file's exactness checks on every core: most of their time is Polars' (a file with explicit nulls
    # has its keys counted line by line), which does not hold the GIL; one file at a time kept a core idle.
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        frames.update(zip(batch, pool.map(accepted, natives, read, shaped), strict=True))
    parsed = []
    for index, (data, source) in enumerate(zip(texts, sources, strict=True)):
        plan = plans[index]
        frame = frames.get(index) if isinstance(plan, _NativeRead) else plan
        if frame is not None:
            parsed.append(ParsedFile(frame, [], "native"))
        elif isinstance(plan, _NativeRead) and (in_parts := _read_in_parts(plan, source, contract)):
            parsed.append(in_parts)
        else:
            parsed.append(_read_tolerant_or_refuse(data, source, contract))
    return parsed


@dataclass
class _NativeRead:
    """What Polars' reader gets for a file: its bytes (commas dropped), and the schema as the file spells
    it."""

    data: bytes
    spelled: dict[str, str]  # contract column -> the key spelling the file's first record uses
    schema: dict[str, Any]
    original: bytes = b""  # the file's bytes before the commas were dropped (the same length)
    colons: int | None = None  # how many ":" the bytes hold, once counted (``_may_repeat_a_key``)


def read_native(data: bytes, contract: Contract) -> pl.DataFrame | None:
    """Polars' own NDJSON reader, or None when it cannot be shown to read this file exactly."""
    plan = _native_plan(data, contract)
    if not isinstance(plan, _NativeRead):
        return plan
    frame = _read_planned(plan)
    if frame is None:
        return None
    (suspects,) = _number_shaped_text([frame], [plan], contract)
    return _accept_native(frame, plan, contract, suspects)


def _native_plan(data: bytes, contract: Contract) -> _NativeRead | pl.DataFrame | None:
    """How to read a file natively; an empty frame for a file without records; None: tolerant path only."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    original = data
    first = _first_line(data)
    if first is None:
        return contract.empty_frame()
    if not first.startswith(b"{"):
        return None  # a JSON array, or junk first: the tolerant path splits it
    trailing_comma = first.endswith(b",")
    try:
        keys = json.loads(first[:-1] if trailing_comma else first)
    except (ValueError, RecursionError):
        return None
    if not isinstance(keys, dict):
        return None
    by_lower = {k.lower(): k for k in reversed(list(keys))}  # the first spelling wins, as it does in a record
    spelled = {c.name: by_lower.get(c.name.lower(), c.name) for c in contract.columns}
    if trailing_comma:
        # A space for the comma keeps the length, the cheapest rewrite of a whole file; the CRLF pass runs
        # only on files holding a carriage return (each bytes.replace costs about as much as parsing).
        data = data.replace(b"},\n", b"} \n")
        if b"\r" in data:
            data = data.replace(b"},\r\n", b"} \r\n")
        tail = data.rstrip()
        if tail.endswith(b"},"):
            data = tail[:-1]
    schema = {spelled[name]: dtype for name, dtype in contract.polars_schema().items()}
    return _NativeRead(data, spelled, schema, original)


def _native_errors() -> tuple[type[Exception], ...]:
    """What Polars' reader raises on a file it cannot read (polars is imported only when reading)."""
    import polars as pl

    return (pl.exceptions.PolarsError, ValueError, OverflowError)


def _scan(plan: _NativeRead) -> pl.LazyFrame:
    import polars as pl

    # Bytes, not a BytesIO: Polars reads them in place instead of copying the file first.
    return pl.scan_ndjson(plan.data, schema=plan.schema)


def _read_planned(plan: _NativeRead) -> pl.DataFrame | None:
    try:
        return _scan(plan).collect()
    except _native_errors():
        return None


# --- a file Polars refuses, read in parts -------------------------------------------------------------------
# Polars' reader refuses a whole file for one bad line (and cannot say which), so a refused file is read
# again in parts: the parts it accepts keep the native path, a refused part is split again, and only the
# smallest refused parts go through the tolerant splitter. One bad line in the middle of a 300 MB file costs
# about two native reads of it instead of a tolerant read (about 10x slower, and 9x the file in memory).
_PARTS = 8
_SMALLEST_PART = 64 * 1024  # bytes: a refused part this small is read by the tolerant splitter
_SPLIT_FROM = 1024 * 1024  # bytes: a smaller refused file goes whole to the tolerant splitter
_LOOK_AHEAD = 1024 * 1024  # bytes read past a part's end to see whether a torn record goes on there
_MOST_BROKEN_CHECKED = 100  # records in one part that did not parse; with more, the file is read tolerantly

Part = tuple[int, int, "pl.DataFrame | None"]  # start, end (byte offsets), its rows if read natively


def _read_in_parts(plan: _NativeRead, source: str, contract: Contract) -> ParsedFile | None:
    """A refused file read in parts, or None when the parts would not read it as the tolerant path does
    (a record spanning lines cut between parts) or when most of it is refused anyway."""
    import polars as pl

    data = plan.data
    if len(data) < _SPLIT_FROM:
        return None
    parts = _read_parts(plan, 0, len(data), contract)
    refused = sum(end - start for start, end, frame in parts if frame is None)
    if refused * 2 > len(data):
        return None
    merged: list[Part] = []  # neighbouring refused parts are read together: a record may span both
    for start, end, frame in parts:
        if frame is None and merged and merged[-1][2] is None:
            merged[-1] = (merged[-1][0], end, None)
        else:
            merged.append((start, end, frame))
    frames: list[pl.DataFrame] = []
    rejected: list[Rejected] = []
    tolerant_records, record = 0, 1
    for start, end, native in merged:
        frame = native
        if frame is None:
            # The original bytes: a comma dropped for Polars may be inside a record spanning lines.
            part = read_tolerant(
                plan.original[start:end],
                source,
                contract,
                first_line=data.count(b"\n", 0, start) + 1,
                first_record=record,
            )
            if end < len(data) and _cut_a_record(plan.original, start, end, part.broken_at):
                return None
            frame = part.frame
            rejected += part.rejected
            tolerant_records += part.tolerant_records
            record += part.tolerant_records
        else:
            record += frame.height
        frames.append(frame)
    return ParsedFile(pl.concat(frames, how="vertical"), rejected, "mixed", tolerant_records=tolerant_records)


def _read_parts(plan: _NativeRead, start: int, end: int, contract: Contract) -> list[Part]:
    """``plan.data[start:end]``, which Polars refused, as parts read natively wherever Polars accepts them."""
    cuts = _cuts(plan.data, start, end, _PARTS)
    if len(cuts) == 2:
        return [(start, end, None)]
    parts: list[Part] = [
        (low, high, _read_native_part(plan, low, high, contract)) for low, high in itertools.pairwise(cuts)
    ]
    if all(frame is None for _low, _high, frame in parts):
        return [(start, end, None)]  # bad records everywhere here: splitting further would not pay
    found: list[Part] = []
    for low, high, frame in parts:
        if frame is None and high - low > _SMALLEST_PART:
            found += _read_parts(plan, low, high, contract)
        else:
            found.append((low, high, frame))
    return found


def _cuts(data: bytes, start: int, end: int, parts: int) -> list[int]:
    """``start``, up to ``parts - 1`` places to cut ``data[start:end]`` at, and ``end``.

    A cut is where a line starting with "{" follows a line ending with "}": no record spanning lines is cut
    there, except one whose inner lines look like whole records; ``_cut_a_record`` catches that one.
    """
    cuts = [start]
    step = max((end - start) // parts, 1)
    position = start + step
    while position < end and len(cuts) < parts:
        found = data.find(b"\n{", position - 1, end)
        if found < 0:
            break
        cut = found + 1
        before = data[max(start, found - 64) : found].rstrip(b" \t\r\n")
        if before.endswith(b"}") and cut > cuts[-1]:
            cuts.append(cut)
            position = max(cut + 1, start + step * len(cuts))
        else:
            position = cut + 1
    return [*cuts, end]


def _read_native_part(plan: _NativeRead, start: int, end: int, contract: Contract) -> pl.DataFrame | None:
    part = _NativeRead(plan.data[start:end], plan.spelled, plan.schema)
    frame = _read_planned(part)
    if frame is None:
        return None
    (suspects,) = _number_shaped_text([frame], [part], contract)
    return _accept_native(frame, part, contract, suspects)


def _cut_a_record(data: bytes, start: int, end: int, broken_at: list[int]) -> bool:
    """Whether a record that did not parse within ``data[start:end]`` parses when read on past ``end``: a
    record spanning lines cut there, which only a tolerant read of the whole file reads as one record.

    ``broken_at`` are the places (characters into the part) where the records that did not parse start. Many
    of them, or a record longer than the look-ahead, count as a cut: the whole file is read tolerantly then.
    """
    if len(broken_at) > _MOST_BROKEN_CHECKED:
        return True
    text = data[start : end + _LOOK_AHEAD].decode("utf-8", errors="surrogateescape")
    for position in broken_at:
        try:
            _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as err:
            if err.pos >= len(text) - 1 and end + _LOOK_AHEAD < len(data):
                return True
        except (ValueError, RecursionError):
            continue
        else:
            return True
    return False


def _accept_native(
    frame: pl.DataFrame, plan: _NativeRead, contract: Contract, shaped: list[str]
) -> pl.DataFrame | None:
    """The frame Polars read, when nothing shows the tolerant path would have read the file differently.

    ``shaped`` names the text columns holding a value that may not have been a JSON string in the file
    (``_number_shaped_text``).
    """
    spelled = plan.spelled
    frame = frame.rename({v: k for k, v in spelled.items() if k != v})
    if shaped and _text_columns_ambiguous(shaped, plan.data, spelled):
        return None
    if _may_repeat_a_key(frame, plan.data, spelled, plan.colons):
        return None  # Polars keeps a repeated key's first value; the tolerant path quarantines the record
    # A record spelling a key differently from the first record reads as null here. Only columns with nulls
    # can hide one; for those, the quoted name must occur as often case-blind as spelled.
    with_nulls = [name for name, count in frame.null_count().row(0, named=True).items() if count]
    if any(contract.column(name).required for name in with_nulls):
        return None  # records without a required value are rejects, which only the tolerant path reports
    if with_nulls:
        data = plan.data
        lowered = data.lower()
        for name in with_nulls:
            quoted = b'"%s"' % spelled[name].encode()
            if lowered.count(quoted.lower()) != data.count(quoted):
                return None
    return frame


# A key holding a \u escape: the escape, the rest of the string, then the colon that makes it a key.
_ESCAPED_KEY = re.compile(rb'\\u[0-9a-fA-F]{4}[^"\n]*"\s*:')


def _may_repeat_a_key(
    frame: pl.DataFrame, data: bytes, spelled: dict[str, str], colons: int | None = None
) -> bool:
    """Whether some record of the file holds a contract column's key twice (in any letter case).

    Every member of a JSON object, at any depth, has one colon outside strings, and each value read is a
    different member. So where the file holds no more colons than the frame has values, every member is one
    value read and none repeats: one count of a single byte over the file, the common case (every key
    present with a value and no colon inside a string), and half the cost of counting ``":`` (0.5 against
    1.0 s per GB, on one core: FINDINGS §15). Where colons sit inside strings, every key is still followed
    by ``":``, and as many of those as values settles it too. Otherwise (explicit nulls, keys outside the
    contract, or a repeat) a key spelled with a ``\\u`` escape counts as a possible repeat, and each line's
    plain keys are counted, column by column.
    """
    import polars as pl

    values = frame.select(pl.all().count()).row(0, named=True)
    read = sum(values.values())
    if (data.count(b":") if colons is None else colons) <= read or data.count(b'":') == read:
        return False
    if _ESCAPED_KEY.search(data):
        return True  # "us\u0065r" is "user" to every JSON reader, but not to the counts below
    lines = pl.Series([data.decode("utf-8", errors="replace")]).str.split("\n").explode()
    return any(
        (lines.str.count_matches(r'(?i)"' + re.escape(spelled.get(name, name)) + r'"\s*:').max() or 0) > 1
        for name in values
    )


# Polars reads any JSON scalar into a text column as its text, so a value shaped like a number, a boolean,
# an object or an array may not have been a JSON string. Digits alone are ambiguous too (1.0 reads as "1").
_NOT_PLAINLY_TEXT = r"^(?:-?[0-9][0-9.eE+-]*|true|false|[\[{].*)$"


def _number_shaped_text(
    frames: list[pl.DataFrame | None], plans: list[_NativeRead], contract: Contract
) -> list[list[str]]:
    """For each frame as Polars read it, the contract's text columns holding a value shaped like a number,
    boolean, object or array; one query for all frames, so files are searched in parallel (at scale 100,
    searching 7.9M emails one file at a time kept one core idle for 0.2-0.4 s)."""
    import polars as pl

    text = [c.name for c in contract.columns if c.logical_type == "string"]
    searched = [
        (index, frame, plans[index].spelled)
        for index, frame in enumerate(frames)
        if frame is not None and text and not frame.is_empty()
    ]
    found = pl.collect_all(
        [
            frame.lazy().select(
                pl.col(spelled[name]).str.contains(_NOT_PLAINLY_TEXT).fill_null(False).any().alias(name)
                for name in text
            )
            for _index, frame, spelled in searched
        ]
    )
    shaped: list[list[str]] = [[] for _ in frames]
    for (index, _frame, _spelled), flags in zip(searched, found, strict=True):
        shaped[index] = [name for name, hit in flags.row(0, named=True).items() if hit]
    return shaped


def _text_columns_ambiguous(suspects: list[str], data: bytes, spelled: dict[str, str]) -> bool:
    """Whether a text column holds a value that may not have been a JSON string in the file.

    A value shaped like a number, boolean, object or array (``suspects`` names the columns holding one) is
    ambiguous in the frame, but the bytes can settle it: if no key of that column is followed by anything
    but a string or null, every such value was a string (phone numbers and dates in customer files, which
    can then take this path).
    """
    if not suspects:
        return False
    if b"\\u" in data:
        return True  # an escaped key would slip past the byte check below
    for name in suspects:
        # The key in any case, then a value that is not a string (") or null (n): a number, true, [ or {.
        key = re.escape(spelled[name].encode())
        if re.search(rb'"(?i:' + key + rb')"\s*:\s*[^\s"n]', data):
            return True
    return False


def _first_line(data: bytes) -> bytes | None:
    for line in io.BytesIO(data):
        stripped = line.strip()
        if stripped:
            return stripped
    return None


# --- the tolerant path --------------------------------------------------------------------------------------


class _Object(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs, so repeated keys stay visible and the first can win."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_Object, parse_constant=_reject_constant)
_SEPARATORS = re.compile(r"[\s,]*")
# Where the next record can start after a broken one. Between top-level records (NDJSON): the next line
# that is not blank. Inside a JSON array, after a torn record (whose remains may hold commas and span lines):
# a "{" starting a line or following "," or "["; after junk that is no record at all: the next element.
_NEXT_LINE = re.compile(r"(?<=\n)[ \t\r]*\S")
_NEXT_ARRAY_RECORD = re.compile(r"(?:(?<=\n)|(?<=,)|(?<=\[))[ \t\r]*\{")
_NEXT_ARRAY_ELEMENT = re.compile(r"(?<=[,\n])[ \t\r]*[^\s,]")
_ENDS_LINE = re.compile(r"[ \t\r,]*(?:\n|$)")


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    value: Any = None
    error: str | None = None


def _pieces(text: str) -> Iterator[_Piece]:
    """Split text into top-level JSON values: NDJSON, trailing commas, one JSON array, or a mix.

    A piece that does not parse runs to the next place a record can start, so one torn record or junk line
    costs only itself, in an array as in NDJSON. (Inside an array the next record must start with "{": junk
    elements right after a torn record are taken as part of it, since nothing tells them apart.)
    """
    position = _SEPARATORS.match(text).end()  # type: ignore[union-attr]
    in_array = text.startswith("[", position)
    if in_array:
        position += 1
    length = len(text)
    while True:
        position = _SEPARATORS.match(text, position).end()  # type: ignore[union-attr]
        if position >= length:
            return
        if in_array and text[position] == "]":
            in_array = False
            position += 1
            continue
        try:
            value, end = _DECODER.raw_decode(text, position)
            if not in_array and text.find("\n", position, end) >= 0 and not _ENDS_LINE.match(text, end):
                # Outside an array a record spanning lines must end its last line; otherwise a torn line
                # has fused with the start of the next ("{" then "}{" reads as "{}" and a stray "{").
                raise ValueError("a record spanning lines runs into the next record")
        except (ValueError, RecursionError) as err:
            if isinstance(err, RecursionError):
                err = ValueError(f"nested deeper than {sys.getrecursionlimit()} levels")
            if not in_array:
                resync = _NEXT_LINE
            elif text.startswith("{", position):
                resync = _NEXT_ARRAY_RECORD  # a torn record: its remains may hold commas and new lines
            else:
                resync = _NEXT_ARRAY_ELEMENT  # junk: it ends where the next element starts
            following = resync.search(text, position + 1)
            end = following.end() - 1 if following else length
            message = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
            yield _Piece(position, end, error=f"invalid JSON: {message}")
        else:
            yield _Piece(position, end, value)
        position = end


class _BadValue(Exception):
    pass


def _as_text(value: Any) -> str:
    if type(value) is str:
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _BadValue("is not valid UTF-8") from None
        return value
    if type(value) is int:
        return str(value)
    raise _BadValue("is not text")


def _number_from_text(value: str) -> int | float:
    stripped = value.strip()
    if re.fullmatch(r"[+-]?\d+", stripped):
        return int(stripped)
    if re.fullmatch(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", stripped):
        return float(stripped)
    raise _BadValue("is not a number")


def _as_integer(value: Any) -> int:
    kind = type(value)
    if kind is str:
        try:
            value = _number_from_text(value)
        except _BadValue:
            raise _BadValue("is not an integer") from None
        kind = type(value)
    if kind is float:
        if not (math.isfinite(value) and value.is_integer()):
            raise _BadValue("is not an integer")
        value = int(value)
    elif kind is not int:
        raise _BadValue("is not an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise _BadValue("is out of the 64-bit integer range")
    return value


def _as_number(value: Any) -> float:
    kind = type(value)
    if kind is str:
        return float(_number_from_text(value))
    if kind is int or kind is float:
        try:
            return float(value)
        except OverflowError:
            raise _BadValue("is too large for a 64-bit float") from None
    raise _BadValue("is not a number")


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _as_text,
    "integer": _as_integer,
    "number": _as_number,
}


def _shown(value: Any, column: Column) -> str:
    """A value as a reject's detail shows it: never the value of a personal-data column."""
    if isinstance(value, _Object):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if column.personal:
        return f"a {_json_kind(value)} ({MASK})"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_tolerant(
    data: bytes,
    source: str,
    contract: Contract,
    *,
    first_line: int = 1,
    first_record: int = 1,
) -> ParsedFile:
    """Split and type the records of one file in Python; every record becomes a row or a reject.

    Keys match contract columns case-blind; a record holding a column's key twice (in any letter case) is
    quarantined as ``duplicate_key``. For a part of a file, ``first_line``/``first_record`` number the
    part's first line and record as in the whole file.
    """
    import polars as pl

    text = data.decode("utf-8", errors="surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    by_lower = {c.name.lower(): c for c in contract.columns}
    required = [c.name for c in contract.columns if c.required]
    values: dict[str, list[Any]] = {c.name: [] for c in contract.columns}
    parsed = ParsedFile(contract.empty_frame(), [], "tolerant")
    line, counted_to = first_line, 0
    for number, piece in enumerate(_pieces(text), start=first_record):
        parsed.tolerant_records += 1
        if piece.error is not None:
            parsed.broken_at.append(piece.start)
        line += text.count("\n", counted_to, piece.start)
        counted_to = piece.start
        raw = _raw_text(text, piece.start, piece.end)
        row, reason, detail = _conform(piece, by_lower, required)
        if row is None:
            parsed.rejected.append(Rejected(source, line, number, reason, detail, raw))  # type: ignore[arg-type]
            continue
        for name, column_values in values.items():
            column_values.append(row.get(name))
        parsed.records.append(number)
        parsed.lines.append(line)
        parsed.raws.append(raw)
    parsed.frame = pl.DataFrame(values, schema=contract.polars_schema())
    return parsed


def _conform(
    piece: _Piece, by_lower: dict[str, Column], required: list[str]
) -> tuple[dict[str, Any] | None, str, str]:
    if piece.error is not None:
        return None, "invalid_json", piece.error
    if not isinstance(piece.value, _Object):
        return None, "not_an_object", f"a JSON {_json_kind(piece.value)}, not an object"
    row: dict[str, Any] = {}
    columns: dict[str, Column] = {}
    keys: dict[str, str] = {}  # column -> the key its value came under
    for key, value in piece.value:
        column = by_lower.get(key.lower())
        if column is None:
            continue  # a key outside the contract
        name = column.name
        if name in keys:  # which value counts would be an accident of the reader: neither decides
            return None, "duplicate_key", f"{key!r} repeats {keys[name]!r}"
        row[name] = value
        columns[name] = column
        keys[name] = key
    missing = [name for name in required if row.get(name) is None]
    if missing:
        return None, "missing_required", f"no value for {', '.join(missing)}"
    for name, value in row.items():
        if value is None:
            continue
        try:
            row[name] = _CONVERTERS[columns[name].logical_type](value)
        except _BadValue as err:
            return None, "bad_value", f"{name}: {_shown(value, columns[name])} {err}"
    return row, "", ""


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


RAW_LIMIT = 64 * 1024  # characters of a record the quarantine keeps; a 1 GB junk line must not be copied


def _raw_text(whole: str, start: int, end: int) -> str:
    """A record's text as the quarantine keeps it: stripped, and cut at RAW_LIMIT characters."""
    text = whole[start : min(end, start + RAW_LIMIT + 1024)].strip().rstrip(",").rstrip()
    if len(text) > RAW_LIMIT:
        text = f"{text[:RAW_LIMIT]}... [{end - start - RAW_LIMIT} more characters not kept]"
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


# --- row checks across the dataset --------------------------------------------------------------------------


def _apply_row_checks(
    parsed: ParsedFile, source: str, text_of: Callable[[], bytes], contract: Contract
) -> tuple[pl.DataFrame, list[Rejected], ValidationReport]:
    """Quarantine a file's rows that break the contract's row rules, and check the rest."""
    import polars as pl

    frame = parsed.frame
    cases = failure_cases(frame, contract)
    failures = _row_failures(cases, contract)
    if not failures:
        return frame, list(parsed.rejected), report_from(frame, contract, cases, source=source)
    rejected = list(parsed.rejected)
    # The tolerant path knows each record's line and text; a native parse is read again for them.
    f = parsed
    if f.path == "native" or not f.lines:
        f = read_tolerant(text_of(), source, contract)
        if f.frame.height != parsed.frame.height:
            raise LandingError(f"{source} changed while it was being read; run again")
    for row, reasons in sorted(failures.items()):
        rejected.append(Rejected(source, f.lines[row], f.records[row], "check_failed", reasons, f.raws[row]))
    kept = frame.filter(pl.Series(range(frame.height)).is_in(list(failures)).not_())
    return kept, rejected, check_frame(kept, contract, source=source)


def _row_failures(cases: pl.DataFrame | None, contract: Contract) -> dict[int, str]:
    """Row index -> "column: rule (value); ..." for rows breaking a column rule of the contract."""
    if cases is None:
        return {}
    reasons: dict[int, list[str]] = {}
    for column, check, value, index in cases.select("column", "check", "failure_case", "index").iter_rows():
        if index is None or column is None or column == contract.name:
            continue  # a table-level rule (uniqueness, a column's type): not a property of any one record
        label = "required" if check == "not_nullable" else check
        shown = MASK if contract.column(column).personal and value is not None else value
        reasons.setdefault(index, []).append(f"{column}: {label} ({shown})")
    return {index: "; ".join(parts) for index, parts in reasons.items()}
