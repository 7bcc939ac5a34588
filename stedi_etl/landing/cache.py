"""Each landing file parsed once: its typed rows and its rejects kept, keyed by what decides them.

A file's parse depends on its bytes (its path, size and change stamp: the ETag on S3, the modification time
on disk), on its dataset's landing contract and on the reader's code. Those make the key; a run reads and
parses only the files whose key it has not seen, and takes the rest from here. Entries live in the lake's
own area (``<lake>/_stedi/parsed/<dataset>/``): the rows as Parquet, the rejects and the read path as JSON.
Entries are written after a run published (never during reading), and entries of files no longer in the
landing zone are dropped then.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from typing import TYPE_CHECKING, Any

from stedi_etl.lake.storage import FileInfo, Store

if TYPE_CHECKING:
    import polars as pl

# A file's parse as the cache holds it: its rows, its rejects (as dicts of their fields), its read path, how
# many of its records went through the tolerant splitter, and its rows summed by day (per time column).
Parse = tuple["pl.DataFrame", list[dict[str, Any]], str, int, dict[str, dict[int, tuple[int, int, int]]]]

FORMAT = "stedi-etl/parsed-file/1"


class ParseCache:
    """The parses of one dataset's landing files, under ``folder`` of ``store`` (the lake's)."""

    def __init__(self, store: Store, folder: str, contract_sha256: str, reader_code: str) -> None:
        self.store = store
        self.folder = folder
        self.salt = f"{FORMAT} {contract_sha256} {reader_code}"
        self.found: dict[str, Parse] = {}  # key -> parse, from this cache
        self.made: dict[str, bytes] = {}  # path -> content: the entries of the parses this run made
        self.used: set[str] = set()

    def key(self, relative: str, info: FileInfo) -> str:
        text = json.dumps([self.salt, relative, info.size, info.stamp])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def fetch(self, keys: list[str]) -> dict[str, Parse]:
        """The cached parses among ``keys`` (fetched together, decoded in one parallel query)."""
        self.used.update(keys)
        paths = {k: (f"{self.folder}/{k}.parquet", f"{self.folder}/{k}.json") for k in keys}
        blobs = self.store.read_many_if_exists([p for pair in paths.values() for p in pair])
        entries: dict[str, tuple[bytes, dict[str, Any]]] = {}
        for key, (rows_path, meta_path) in paths.items():
            data, meta = blobs[rows_path], blobs[meta_path]
            if data is None or meta is None:
                continue
            try:
                fields = json.loads(meta)
            except ValueError:
                continue  # a damaged entry is parsed again
            if isinstance(fields, dict) and fields.get("format") == FORMAT:
                entries[key] = (data, fields)
        frames = _decoded({key: data for key, (data, _fields) in entries.items()})
        for key, (_data, fields) in entries.items():
            if key not in frames:
                continue
            try:
                self.found[key] = (
                    frames[key],
                    list(fields["rejected"]),
                    fields["path"],
                    int(fields.get("tolerant_records", 0)),
                    {
                        column: {int(day): (rows, low, high) for day, (rows, low, high) in days.items()}
                        for column, days in fields.get("days", {}).items()
                    },
                )
            except (ValueError, TypeError, KeyError):
                continue
        return {k: self.found[k] for k in keys if k in self.found}

    def remember(self, key: str, parse: Parse) -> None:
        """Keep a parse of this run for ``save``, serialised now: the frame itself would hold the dataset's
        rows in memory until the run has published (at scale 100, 0.9 GiB more at the run's peak)."""
        frame, rejected, read_path, tolerant_records, days = parse
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd")
        meta: dict[str, Any] = {
            "format": FORMAT,
            "path": read_path,
            "rejected": rejected,
            "tolerant_records": tolerant_records,
            "days": {
                column: {str(day): list(sums) for day, sums in by_day.items()}
                for column, by_day in days.items()
            },
        }
        self.made[f"{self.folder}/{key}.parquet"] = buffer.getvalue()
        self.made[f"{self.folder}/{key}.json"] = json.dumps(meta).encode()

    def save(self) -> None:
        """Write the parses this run made, and drop the entries of files it did not see."""
        entries = self.made
        if entries:
            self.store.write_many(entries)
        stale = [
            path
            for path in self.store.files(self.folder)
            if path.rsplit("/", 1)[-1].split(".", 1)[0] not in self.used
        ]
        if stale:
            self.store.remove_many(stale)


def _decoded(parquet: dict[str, bytes]) -> dict[str, pl.DataFrame]:
    """Each entry's rows; one query decodes them all in parallel (half the time of one after another at
    scale 100). An entry that does not decode is left out, to be parsed again."""
    import polars as pl

    keys = list(parquet)
    try:
        frames = pl.collect_all([pl.scan_parquet(io.BytesIO(parquet[key])) for key in keys])
        return dict(zip(keys, frames, strict=True))
    except Exception:  # one damaged entry: decode one at a time, so only it is left out
        decoded = {}
        for key in keys:
            with contextlib.suppress(Exception):
                decoded[key] = pl.read_parquet(io.BytesIO(parquet[key]))
        return decoded
