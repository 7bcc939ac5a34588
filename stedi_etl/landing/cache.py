"""Each landing file parsed once: its rows (those that passed the row rules) and its rejects kept, keyed by
what decides them.

A file's parse depends on its bytes (its path, size and change stamp: the ETag on S3, the modification time
on disk), on its dataset's landing contract and on the reader's code. Those make the key; a run reads and
parses only the files whose key it has not seen, and takes the rest from here. Entries live in the lake's
own area (``<lake>/_stedi/parsed/<dataset>/``): the rows as Parquet, the rejects, read path and day sums as
JSON, written last (an entry without its JSON, or whose Parquet does not hold the rows the JSON counts, is
parsed again).

Entries are written as each batch of files is parsed, and the run reads its landing rows back from them as
its steps need them (a day at a time for the reading tables), so a run never holds a dataset's rows whole.
An entry a killed or failed run wrote is still a correct parse of its file; entries of files no longer in
the landing zone are dropped once a run has published.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stedi_etl.lake.storage import FileInfo, Store
from stedi_etl.model.days import DaySums

if TYPE_CHECKING:
    import polars as pl

FORMAT = "stedi-etl/parsed-file/3"


@dataclass(frozen=True)
class Entry:
    """One file's parse as the cache holds it; its rows stay on the store (``ParseCache.scan``)."""

    rows: int
    rejected: list[dict[str, Any]]  # each reject's fields (landing.read.Rejected)
    path: str  # its read path: native, tolerant or mixed
    tolerant_records: int  # records that went through the tolerant splitter
    days: dict[str, DaySums]  # time column -> its rows summed by day (model/days.py)
    checks: dict[str, Any]  # the contract's checks on its rows (checks.rules.ValidationReport.to_dict)


class ParseCache:
    """The parses of one dataset's landing files, under ``folder`` of ``store`` (the lake's)."""

    def __init__(self, store: Store, folder: str, contract_sha256: str, reader_code: str) -> None:
        self.store = store
        self.folder = folder
        self.salt = f"{FORMAT} {contract_sha256} {reader_code}"
        self.used: set[str] = set()

    def key(self, relative: str, info: FileInfo) -> str:
        text = json.dumps([self.salt, relative, info.size, info.stamp])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def rows_path(self, key: str) -> str:
        return f"{self.folder}/{key}.parquet"

    def meta_path(self, key: str) -> str:
        return f"{self.folder}/{key}.json"

    def fetch(self, keys: list[str]) -> dict[str, Entry]:
        """The cached parses among ``keys``: their records fetched together, and each one's Parquet footer
        read (in one parallel query) to confirm it holds the rows its record counts."""

        self.used.update(keys)
        metas = self.store.read_many_if_exists([self.meta_path(k) for k in keys])
        entries: dict[str, Entry] = {}
        for key in keys:
            found = metas[self.meta_path(key)]
            if found is None:
                continue
            try:
                fields = json.loads(found)
                if not isinstance(fields, dict) or fields.get("format") != FORMAT:
                    continue
                entries[key] = Entry(
                    int(fields["rows"]),
                    list(fields["rejected"]),
                    str(fields["path"]),
                    int(fields["tolerant_records"]),
                    {
                        column: {int(day): (rows, low, high) for day, (rows, low, high) in days.items()}
                        for column, days in fields["days"].items()
                    },
                    dict(fields["checks"]),
                )
            except (ValueError, TypeError, KeyError, AttributeError):
                continue  # a damaged record: the file is parsed again
        counted = _row_counts(self.store, {key: self.rows_path(key) for key in entries})
        return {key: entry for key, entry in entries.items() if counted.get(key) == entry.rows}

    def put(self, key: str, frame: pl.DataFrame, entry: Entry) -> None:
        """Write a file's parse now: its rows, then its record (so a record always has its rows)."""
        buffer = io.BytesIO()
        # LZ4: the cache is this tool's own, read back within the run; it writes a third faster than zstd
        # and reads twice as fast, for twice the bytes (FINDINGS §15).
        frame.write_parquet(buffer, compression="lz4", statistics=True)
        meta: dict[str, Any] = {
            "format": FORMAT,
            "rows": entry.rows,
            "path": entry.path,
            "rejected": entry.rejected,
            "tolerant_records": entry.tolerant_records,
            "days": {
                column: {str(day): list(sums) for day, sums in by_day.items()}
                for column, by_day in entry.days.items()
            },
            "checks": entry.checks,
        }
        self.used.add(key)
        self.store.write_bytes(self.rows_path(key), buffer.getvalue())
        self.store.write_bytes(self.meta_path(key), json.dumps(meta).encode())

    def forget(self, key: str) -> None:
        """Drop an entry now: its file changed as it was read, so its parse is of bytes no listing names."""
        self.used.discard(key)
        self.store.remove_many([self.meta_path(key), self.rows_path(key)])

    def save(self) -> None:
        """Drop the entries of files this run did not see (its own parses are written as it reads)."""
        stale = [
            path
            for path in self.store.files(self.folder)
            if path.rsplit("/", 1)[-1].split(".", 1)[0] not in self.used
        ]
        if stale:
            self.store.remove_many(stale)


def _row_counts(store: Store, paths: dict[str, str]) -> dict[str, int]:
    """Each Parquet file's row count from its footer (one query for all); a file that does not decode is
    left out."""
    import polars as pl

    if not paths:
        return {}
    keys = list(paths)
    try:
        counts = pl.collect_all([store.scan_parquet([paths[k]], {}).select(pl.len()) for k in keys])
        return {key: int(frame.item()) for key, frame in zip(keys, counts, strict=True)}
    except Exception:  # a damaged file: count one at a time, so only it is left out
        found = {}
        for key in keys:
            try:
                found[key] = int(store.scan_parquet([paths[key]], {}).select(pl.len()).collect().item())
            except Exception:  # a damaged file: parsed again
                continue
        return found
