"""How every command words counts: right plurals, and one way of counting a run's tables.

A run's tables are counted apart from its quarantines everywhere (run-all's summary, `runs`, `catalog` and
the report), so "5 tables published" means the same five lake tables wherever it is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from stedi_etl.contracts import QUARANTINE_SUFFIX

_FAILED = ("failed", "skipped")


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``; ``many`` where adding an s is wrong."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def table_counts(statuses: Iterable[tuple[str, str]]) -> str:
    """``(table, status)`` pairs as one phrase: "tables: 5 published, 0 up to date, 0 failed; quarantines: 3
    published". Skipped tables (not built because an input failed) count as failed; quarantine statuses
    that no quarantine has are left out."""
    tables: Counter[str] = Counter()
    quarantines: Counter[str] = Counter()
    for table, status in statuses:
        counted = quarantines if table.endswith(QUARANTINE_SUFFIX) else tables
        counted["failed" if status in _FAILED else status] += 1
    phrase = (
        f"tables: {tables['published']} published, {tables['up_to_date']} up to date, "
        f"{tables['failed']} failed"
    )
    held = [
        f"{quarantines[s]} {s.replace('_', ' ')}"
        for s in ("published", "up_to_date", "failed")
        if quarantines[s]
    ]
    return phrase + (f"; quarantines: {', '.join(held)}" if held else "")
