"""Which rows may break a contract's rules, found in one Polars query, so pandera runs only on those.

Tuning, not meaning: the masks are never narrower than pandera's checks, so the verdict is pandera's.
Timings (pandera over a whole 2.8M-row frame 0.6 s; its import 0.3 s; 8M hashes sorted 0.2 s against
``is_duplicated``'s 0.9 s) are in benchmarks/FINDINGS.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stedi_etl.contracts import Contract, Rule, Severity

if TYPE_CHECKING:
    import polars as pl


def is_repeat_rule(rule: Rule) -> bool:
    return rule.kind == "duplicates" and rule.column is None


def repeat_cases(
    frame: pl.DataFrame, contract: Contract, rules: tuple[Rule, ...], suspects: pl.Series
) -> pl.DataFrame | None:
    """pandera's failure cases for uniqueness rules, found without it: a warning that an email repeats is
    in nearly every real landing batch, and importing pandera only to say which rows repeat is slow."""
    import polars as pl

    rows = frame[suspects]
    cases = []
    for number, rule in enumerate(rules):
        together = list(rule.properties or contract.column_names)
        repeated = rows.select(pl.struct(together).is_duplicated()).to_series()
        cases.append(
            rows.filter(repeated).select(
                pl.struct(pl.all()).struct.json_encode().alias("failure_case"),
                pl.lit("DataFrameSchema").alias("schema_context"),
                pl.lit(contract.name).alias("column"),
                pl.lit(rule.name).alias("check"),
                pl.lit(number, dtype=pl.Int32).alias("check_number"),
                suspects.filter(repeated).cast(pl.Int32).alias("index"),
            )
        )
    found = pl.concat(cases)
    return None if found.is_empty() else found


def suspect_rows(
    frame: pl.DataFrame, contract: Contract, severity: Severity = "error", waive: frozenset[str] = frozenset()
) -> pl.Series | None:
    """The positions of every row that may break a rule of one severity, found in one Polars query; None
    when that cannot be told row by row (a column missing, extra or mistyped; a rule kind not known here).

    pandera runs a query or more per check (a few hundred per run), which costs more than the checks
    themselves on large tables, and importing it is slow. So each rule is first evaluated here as a row
    mask, all in one ``select``; pandera runs only when some row is suspect, and only on those rows, to say
    which fail and why. The masks are never narrower than pandera's checks: a row pandera would fail is
    always a suspect, and every row of a group of repeats is, so pandera sees each group whole.
    """
    import polars as pl

    wanted = contract.row_rules(severity, waive)
    masks: list[pl.Expr] = []
    if severity == "error":
        if dict(frame.schema) != dict(contract.polars_schema()):
            return None  # a missing, extra or mistyped column: pandera names it
        for column in contract.columns:
            values = pl.col(column.name)
            if column.required:
                masks.append(values.is_null())
            if column.minimum is not None:
                masks.append(values < column.minimum)
            if column.maximum is not None:
                masks.append(values > column.maximum)
            if frame.schema[column.name].is_float() and (column.minimum, column.maximum) != (None, None):
                masks.append(values.is_nan())  # NaN is in no range, however it compares
    for rule in wanted:
        if rule.column is not None and rule.column not in frame.columns:
            return None
        values = pl.col(rule.column) if rule.column else None
        if rule.kind == "finite" and values is not None:
            masks.append(~values.is_finite())
        elif rule.kind == "valid_values" and values is not None:
            masks.append(~values.is_in(list(rule.valid_values)))
        elif rule.kind == "duplicates":
            together = list(rule.properties or contract.column_names)
            if any(name not in frame.columns for name in together):
                return None
            if _strictly_ascending(frame, together):
                continue  # no two rows can be equal: a table built distinct and sorted, known in one pass
            # Rows whose hashes repeat include every repeated row (and, rarely, a collision, which pandera
            # then clears): one hash per row is several times faster than hashing structs.
            repeats = _repeated_hash_rows(frame.select(together).hash_rows())
            if repeats is not None:
                masks.append(pl.lit(repeats))
        else:
            return None  # a kind not evaluated here: pandera decides on every row
    if not masks:
        return pl.Series("suspects", [], dtype=pl.UInt32)
    suspect = frame.select(pl.any_horizontal([mask.fill_null(False) for mask in masks]).alias("suspect"))
    return suspect.get_column("suspect").arg_true()


def _strictly_ascending(frame: pl.DataFrame, columns: list[str], *, sample: int = 1_000) -> bool:
    """Whether every row sorts strictly after the row before it by ``columns`` (in order, ascending): then
    no two rows are equal. A table's rows are built distinct and sorted by all columns, and comparing
    neighbours costs a fraction of hashing every row and sorting the hashes (FINDINGS §15).

    Only a strict "greater" in some column, after equal values in the columns before it, counts: a null,
    a NaN or a tie is never taken for a difference, so a frame this cannot vouch for is hashed as before.
    The first ``sample`` rows are compared first, so an unsorted frame (a landing file) costs little.
    """
    import polars as pl

    after: pl.Expr = pl.lit(False)
    for name in reversed(columns):
        value, before = pl.col(name), pl.col(name).shift(1)
        after = (value > before) | ((value == before) & after)
    ascending = after.slice(1).fill_null(False).all()
    if frame.height > sample and not frame.head(sample).select(ascending).item():
        return False
    return bool(frame.select(ascending).item())


def _repeated_hash_rows(hashes: pl.Series) -> pl.Series | None:
    """Which of ``hashes`` occur more than once; None when none does.

    Sorting the hashes and comparing neighbours is faster than ``is_duplicated``'s hash table; the few
    repeated values are then looked up in a small set.
    """
    ordered = hashes.sort()
    repeated = ordered.filter(ordered == ordered.shift(1))
    if repeated.is_empty():
        return None
    return hashes.is_in(repeated.unique().implode())
