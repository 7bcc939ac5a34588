"""Contract checks on data: every failing rule at once, with counts and samples, as a result object.

``check_frame`` is the one place a frame meets its contract: the pandera schema compiled from the contract
(types, required columns, ranges, finiteness, uniqueness; values, not just the schema), then the contract's
SQL rules, which relate a table to the tables it was built from. The CLI only prints what it returns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from stedi_etl.checks.prefilter import is_repeat_rule, repeat_cases, suspect_rows
from stedi_etl.contracts import MASK, Contract, Severity, range_text

if TYPE_CHECKING:
    import polars as pl

SAMPLES = 3

# pandera's names for the checks it derives itself, as the contract calls them.
_PANDERA_NAMES = {
    "not_nullable": "required",
    "column_in_dataframe": "present",
    "column_in_schema": "in_contract",
}
_STRUCTURAL = ["column_in_dataframe", "column_in_schema"]  # with dtype(...): the table's shape is wrong


@dataclass(frozen=True)
class CheckFailure:
    """One rule of a contract that some rows (or the table as a whole) break."""

    table: str
    check: str
    severity: Severity
    failing_rows: int | None  # None: a table-level failure such as a wrong column type
    description: str
    column: str | None = None
    samples: tuple[str, ...] = ()

    def line(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        count = (
            ""
            if self.failing_rows is None
            else f" — {self.failing_rows} failing row{'s' * (self.failing_rows != 1)}"
        )
        if self.samples and all(s == MASK for s in self.samples):
            samples = " (values not shown: personal data)"
        else:
            samples = f" (e.g. {', '.join(self.samples)})" if self.samples else ""
        return f"{where}: {self.check}{count}: {self.description}{samples}"


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of checking one table against its contract."""

    table: str
    contract: str
    rows: int
    errors: tuple[CheckFailure, ...] = ()
    warnings: tuple[CheckFailure, ...] = ()
    source: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "contract": self.contract,
            "source": self.source,
            "rows": self.rows,
            "ok": self.ok,
            "errors": [asdict(f) for f in self.errors],
            "warnings": [asdict(f) for f in self.warnings],
        }


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of one ``validate`` call: one report per table checked, plus landing quarantine counts."""

    reports: tuple[ValidationReport, ...]
    quarantined: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # Landing dataset -> each file under its folder that was not read -> why (hidden, a link not followed).
    skipped: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports) and not any(sum(q.values()) for q in self.quarantined.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tables": [r.to_dict() for r in self.reports],
            "quarantined": {k: dict(v) for k, v in self.quarantined.items()},
            "skipped": {k: dict(v) for k, v in self.skipped.items()},
        }


def check_frame(
    frame: pl.DataFrame,
    contract: Contract,
    *,
    table: str | None = None,
    related: Mapping[str, pl.DataFrame] | None = None,
    waive: frozenset[str] = frozenset(),
    source: str | None = None,
) -> ValidationReport:
    """Check every rule of ``contract`` on ``frame``; ``related`` holds the tables its SQL rules refer to.

    Waived rules are still evaluated and reported, as warnings.
    """
    cases = failure_cases(frame, contract, "error", waive)
    return report_from(frame, contract, cases, table=table, related=related, waive=waive, source=source)


def check_rows(
    frame: pl.DataFrame,
    contract: Contract,
    error_cases: pl.DataFrame | None,
    *,
    table: str | None = None,
    waive: frozenset[str] = frozenset(),
    source: str | None = None,
) -> ValidationReport:
    """The rules of ``contract`` that read ``frame`` alone (columns, values, uniqueness), no SQL rule;
    ``error_cases`` are the error rules' failure cases (``failure_cases``)."""
    table = table or contract.name
    errors = _summarize(error_cases, frame, contract, table, "error")
    warnings = _summarize(failure_cases(frame, contract, "warning", waive), frame, contract, table, "warning")
    return ValidationReport(table, contract.name, frame.height, tuple(errors), tuple(warnings), source)


def check_relations(
    report: ValidationReport,
    contract: Contract,
    tables: Mapping[str, pl.DataFrame | pl.LazyFrame],
    waive: frozenset[str] = frozenset(),
) -> ValidationReport:
    """``report`` with the failures of the contract's SQL rules added; ``tables`` are what the rules read,
    by name, the contract's own table included. A LazyFrame is read as the rules' joins need it (the
    pipeline passes scans of staged Parquet, so that a table no later step needs is not held whole)."""
    return check_relations_in_parts(report, contract, [tables], waive)


def check_relations_in_parts(
    report: ValidationReport,
    contract: Contract,
    parts: Iterable[Mapping[str, pl.DataFrame | pl.LazyFrame]],
    waive: frozenset[str] = frozenset(),
) -> ValidationReport:
    """``check_relations`` over a table in parts whose rows relate only to rows of the same part (a table
    built by day: each part is some days of every table the rules read). Only one part's joins are in
    memory at a time."""
    tally = RelationTally(contract, waive)
    for tables in parts:
        tally.add(tables)
    return tally.into(report)


@dataclass(frozen=True)
class PartCounts:
    """The SQL rules' counts on one part (``RelationTally.count``): the tables it held, each rule's count
    or why it could not run."""

    names: frozenset[str]
    counts: tuple[int | Exception, ...]


class RelationTally:
    """The contract's SQL rules counted part by part, for a table whose rows relate only to rows of the same
    part: a rule's count is the sum of its counts in the parts; a rule that cannot run in one part fails
    as it would whole."""

    def __init__(self, contract: Contract, waive: frozenset[str] = frozenset()) -> None:
        self.contract = contract
        self.waive = waive
        self.rules = [
            (severity, rule)
            for severity in ("error", "warning")
            for rule in contract.sql_rules(severity, waive)  # type: ignore[arg-type]
        ]
        self.totals: list[int | Exception] = [0] * len(self.rules)
        self.names: set[str] = set()  # the tables the parts held (a rule naming another is "not checked")

    def add(self, tables: Mapping[str, pl.DataFrame | pl.LazyFrame]) -> None:
        """Count the rules on one part: ``tables`` by name, the contract's own table included."""
        self.merge(self.count(tables))

    def count(self, tables: Mapping[str, pl.DataFrame | pl.LazyFrame]) -> PartCounts:
        """The rules' counts on one part, to ``merge`` (a part may be counted in another process)."""
        if not self.rules:
            return PartCounts(frozenset(tables), ())
        return PartCounts(frozenset(tables), tuple(_sql_counts([rule for _s, rule in self.rules], tables)))

    def merge(self, part: PartCounts) -> None:
        """Add one part's counts to the totals."""
        self.names |= part.names
        for index, value in enumerate(part.counts):
            total = self.totals[index]
            if isinstance(value, Exception) or isinstance(total, Exception):
                self.totals[index] = total if isinstance(total, Exception) else value
            else:
                self.totals[index] = total + value

    def into(self, report: ValidationReport) -> ValidationReport:
        """``report`` with the rules' failures over every part added."""
        if not self.rules:
            return report
        errors, warnings = list(report.errors), list(report.warnings)
        present = dict.fromkeys(self.names)
        for (severity, rule), value in zip(self.rules, self.totals, strict=True):
            failure = _sql_failure(rule, value, present, report.table, severity)  # type: ignore[arg-type]
            if failure is not None:
                (errors if failure.severity == "error" else warnings).append(failure)
        return replace(report, errors=tuple(errors), warnings=tuple(warnings))


def merged_report(reports: Sequence[ValidationReport], contract: Contract) -> ValidationReport:
    """One report for a table checked in parts, for rules that hold or fail row by row (a rule relating rows
    to each other must be checked on the rows together): each failure's rows summed over the parts, its
    samples the first few of theirs."""

    def combined(failures: Iterable[CheckFailure]) -> tuple[CheckFailure, ...]:
        found: dict[tuple[Any, ...], CheckFailure] = {}
        for failure in failures:
            key = (failure.check, failure.column, failure.severity, failure.failing_rows is None)
            before = found.get(key)
            if before is None:
                found[key] = replace(failure, table=contract.name)
            elif failure.failing_rows is not None and before.failing_rows is not None:
                samples = tuple(dict.fromkeys((*before.samples, *failure.samples)))[:SAMPLES]
                rows = before.failing_rows + failure.failing_rows
                found[key] = replace(before, failing_rows=rows, samples=samples)
        return tuple(found.values())

    return ValidationReport(
        contract.name,
        contract.name,
        sum(r.rows for r in reports),
        combined(f for r in reports for f in r.errors),
        combined(f for r in reports for f in r.warnings),
    )


def failure_cases(
    frame: pl.DataFrame, contract: Contract, severity: Severity = "error", waive: frozenset[str] = frozenset()
) -> pl.DataFrame | None:
    """pandera's failure cases for the contract's rules of one severity; None when they all hold.

    pandera runs on the suspect rows alone (checks/prefilter.py), with each case's index that of the row
    in ``frame``; uniqueness warnings are explained without pandera. Timings: benchmarks/FINDINGS.md.
    """
    suspects = suspect_rows(frame, contract, severity, waive)
    if suspects is not None and suspects.is_empty():
        return None
    wanted = contract.row_rules(severity, waive)
    if suspects is not None and severity == "warning" and all(is_repeat_rule(r) for r in wanted):
        return repeat_cases(frame, contract, wanted, suspects)
    import pandera.errors

    schema = contract.pandera_schema(severity, waive)
    if not schema.columns and not schema.checks:
        return None
    try:
        schema.validate(frame if suspects is None else frame[suspects], lazy=True)
    except pandera.errors.SchemaErrors as err:
        cases = err.failure_cases
        if suspects is None:
            return cases
        index = cases.get_column("index")
        return cases.with_columns(suspects.gather(index).cast(index.dtype).alias("index"))
    return None


def report_from(
    frame: pl.DataFrame,
    contract: Contract,
    error_cases: pl.DataFrame | None,
    *,
    table: str | None = None,
    related: Mapping[str, pl.DataFrame] | None = None,
    waive: frozenset[str] = frozenset(),
    source: str | None = None,
) -> ValidationReport:
    """``check_frame`` for a caller that already has the failure cases of the error rules."""
    rows = check_rows(frame, contract, error_cases, table=table, waive=waive, source=source)
    return check_relations(rows, contract, {**(related or {}), contract.name: frame}, waive)


def _summarize(
    cases: pl.DataFrame | None, frame: pl.DataFrame, contract: Contract, table: str, severity: Severity
) -> list[CheckFailure]:
    """One CheckFailure per broken rule, with the number of failing rows and a few sample values."""
    import polars as pl

    if cases is None:
        return []
    # A missing column or one of the wrong type makes the checks that read it fail to run, or run on the
    # wrong thing; report the structural problem alone.
    structural = pl.col("check").str.starts_with("dtype(") | pl.col("check").is_in(_STRUCTURAL)
    wrong_type = set(cases.filter(structural).get_column("column").drop_nulls().to_list())
    malformed = not cases.filter(structural).is_empty()
    failures: list[CheckFailure] = []
    grouped = (
        cases.with_columns(pl.col("column").fill_null(""))
        .group_by("column", "check", maintain_order=True)
        .agg(
            pl.col("index").drop_nulls().n_unique().alias("rows"),
            pl.col("index").is_null().all().alias("table_level"),
            pl.col("failure_case").unique(maintain_order=True).head(SAMPLES).alias("samples"),
            pl.col("index").drop_nulls().alias("indices"),
        )
    )
    for column_or_blank, check, rows, table_level, values, indices in grouped.iter_rows():
        column = column_or_blank or None
        samples = _masked(contract, column, _key_samples(contract, column, check, frame, indices) or values)
        is_structural = check.startswith("dtype(") or check in _PANDERA_NAMES
        if not is_structural and (column in wrong_type or (table_level and malformed)):
            continue
        name, description = _describe(contract, column, check, samples, frame)
        if table_level and not is_structural:  # the check itself failed to run
            description = f"could not be checked: {sample_text(samples[0] if samples else '?')}"
        failures.append(
            CheckFailure(
                table=table,
                check=name,
                severity=severity,
                failing_rows=None if table_level else rows,
                description=description,
                column=column if column != contract.name else None,
                samples=() if table_level else tuple(sample_text(s) for s in samples),
            )
        )
    return failures


def _key_samples(
    contract: Contract, column: str | None, check: str, frame: pl.DataFrame, indices: list[int]
) -> list[str]:
    """For a uniqueness rule over some columns, the repeated keys (not whole rows) as samples."""
    if column not in (None, contract.name) or not indices:
        return []
    try:
        rule = contract.rule(check)
    except KeyError:
        return []
    if rule.kind != "duplicates" or not rule.properties or not set(rule.properties) <= set(frame.columns):
        return []
    keys = frame[indices].select(rule.properties).unique(maintain_order=True).head(SAMPLES)
    personal = [contract.column(p).personal if p in contract.column_names else False for p in rule.properties]
    shown = [
        [MASK if hide else str(v) for v, hide in zip(row, personal, strict=True)] for row in keys.iter_rows()
    ]
    if len(rule.properties) == 1:
        return [values[0] for values in shown]
    return [f"({', '.join(values)})" for values in shown]


def _masked(contract: Contract, column: str | None, samples: list[str]) -> list[str]:
    """Samples with every personal-data value replaced by the mask; whole rows keep their other fields."""
    if column in contract.column_names:
        return [MASK if contract.column(column).personal and s is not None else s for s in samples]
    personal = set(contract.personal_columns)
    masked = []
    for sample in samples:
        try:
            row = json.loads(sample)
        except (TypeError, ValueError):
            row = None
        if isinstance(row, dict):
            masked.append(
                json.dumps({k: MASK if k in personal and v is not None else v for k, v in row.items()})
            )
        else:
            masked.append(sample)
    return masked


def _describe(
    contract: Contract, column: str | None, check: str, samples: list[str], frame: pl.DataFrame
) -> tuple[str, str]:
    if check.startswith("dtype("):
        expected = contract.polars_schema()[column] if column else "?"
        actual = frame.schema.get(column) if column else "?"
        return "type", f"is {actual}, the contract says {expected}"
    if check in _PANDERA_NAMES:
        name = _PANDERA_NAMES[check]
        if name == "required":
            return name, "must not be null"
        if name == "present":
            return name, f"column {samples[0] if samples else column} is missing"
        return name, f"column {samples[0] if samples else column} is not in the contract"
    if check == "range" and column:
        return check, f"must be {range_text(contract.column(column))}"
    qualified = f"{column}.{check}" if column and column != contract.name else check
    try:
        rule = contract.rule(qualified)
    except KeyError:
        return check, check
    return rule.name, rule.description or rule.name


def sample_text(value: object) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _sql_counts(rules: list[Any], tables: Mapping[str, pl.DataFrame | pl.LazyFrame]) -> list[int | Exception]:
    """Each rule's count, or why it could not run; the rules that plan are run together in one collect_all,
    which runs them in parallel and shares the scans they have in common."""
    import polars as pl

    context = pl.SQLContext({name: frame.lazy() for name, frame in tables.items()})
    planned: list[pl.LazyFrame | Exception] = []
    for rule in rules:
        try:
            planned.append(context.execute(rule.query))
        except Exception as err:
            planned.append(err)
    runnable = [index for index, plan in enumerate(planned) if not isinstance(plan, Exception)]
    results: list[int | Exception] = [plan if isinstance(plan, Exception) else 0 for plan in planned]
    try:
        frames = pl.collect_all([planned[index] for index in runnable])  # type: ignore[misc]
        for index, frame in zip(runnable, frames, strict=True):
            results[index] = frame.item()
    except Exception:
        for index in runnable:  # one at a time, so each rule keeps its own error
            try:
                results[index] = planned[index].collect().item()  # type: ignore[union-attr]
            except Exception as err:
                results[index] = err
    return results


def _sql_failure(
    rule: Any,
    value: int | Exception,
    tables: Mapping[str, pl.DataFrame | pl.LazyFrame],
    table: str,
    severity: Severity,
) -> CheckFailure | None:
    if isinstance(value, Exception):
        err = value
        missing = [name for name in _referenced(rule.query) if name not in tables]
        if missing:  # checking one file alone: the tables it relates to are elsewhere
            return CheckFailure(
                table,
                rule.name,
                "warning",
                None,
                f"not checked (needs {', '.join(missing)}): {rule.description}",
            )
        # With every table at hand a rule that cannot run fails as it would if it had found rows: a consent
        # rule must never pass by not running.
        return CheckFailure(table, rule.name, severity, None, f"could not run ({str(err).splitlines()[0]})")
    if value == 0:
        return None
    return CheckFailure(table, rule.name, severity, int(value), rule.description)


def _referenced(query: str) -> list[str]:
    import re

    return sorted(set(re.findall(r"(?i)\b(?:from|join)\s+([A-Za-z_][A-Za-z0-9_]*)", query)))


def conform(frame: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """Give columns spelled in another case the contract's spelling, as Glue and Athena match names."""
    renames = contract.conform_names(frame.columns)
    return frame.rename(renames) if renames else frame
