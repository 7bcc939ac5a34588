"""Data contracts: the ODCS v3 files in contracts/ are the one statement of every table.

This module reads them into Contract objects and derives from them what the rest of stedi-etl needs: the
Polars schema, the pandera schema (errors and warnings separately) and the SQL rules. Nothing else names
a table's columns, types, keys, checks or personal-data classes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stedi_etl import bundled
from stedi_etl.errors import ContractError, UsageError

if TYPE_CHECKING:
    import pandera.polars as pa
    import polars as pl

Severity = Literal["error", "warning"]
RuleKind = Literal["duplicates", "finite", "valid_values", "pattern", "sql"]

LOGICAL_TYPES = ("string", "integer", "number", "boolean", "date")
MASK = "***"  # how a value of a personal-data column is shown in reports, rejects and logs
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Rule:
    """One quality rule of a contract; ``column`` is None for table-level rules."""

    name: str
    kind: RuleKind
    severity: Severity
    description: str
    column: str | None = None
    properties: tuple[str, ...] = ()  # duplicates: the columns that must be unique together; () = all
    valid_values: tuple[Any, ...] = ()
    pattern: str | None = None
    query: str | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.column}.{self.name}" if self.column else self.name


@dataclass(frozen=True)
class Column:
    name: str
    logical_type: str
    required: bool
    primary_key: bool
    classification: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    partitioned: bool = False  # a Delta partition column: a folder per value, not stored in the files

    @property
    def personal(self) -> bool:
        return self.classification == "personal"


@dataclass(frozen=True)
class Contract:
    name: str
    version: str
    dataset: str
    zone: str
    grain: str
    purpose: str
    columns: tuple[Column, ...]
    rules: tuple[Rule, ...]
    path: str
    sha256: str
    # Why the table can legally be empty, in words (customProperty whenEmpty); a run warns with it.
    when_empty: str = ""
    position: int = 0  # the table's place in the flow (customProperty position): every list follows it

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def key_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.primary_key)

    @property
    def partition_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.partitioned)

    @property
    def personal_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.personal)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def rule(self, qualified_name: str) -> Rule:
        for rule in self.rules:
            if qualified_name in (rule.qualified_name, rule.name):
                return rule
        raise KeyError(qualified_name)

    def polars_schema(self) -> dict[str, pl.DataType]:
        import polars as pl

        dtypes = {
            "string": pl.String,
            "integer": pl.Int64,
            "number": pl.Float64,
            "boolean": pl.Boolean,
            "date": pl.Date,
        }
        return {c.name: dtypes[c.logical_type] for c in self.columns}

    def file_schema(self) -> dict[str, pl.DataType]:
        """The columns the table's data files hold: its partition columns are folder names, not data."""
        partitions = set(self.partition_columns)
        return {name: dtype for name, dtype in self.polars_schema().items() if name not in partitions}

    def of_files(self) -> Contract:
        """This contract as the table's data files keep it: without its partition columns, whose values
        are the names of the files' folders (checking a file read on its own)."""
        partitions = set(self.partition_columns)
        if not partitions:
            return self
        return replace(
            self,
            columns=tuple(c for c in self.columns if c.name not in partitions),
            rules=tuple(r for r in self.rules if r.column not in partitions),
        )

    def empty_frame(self) -> pl.DataFrame:
        import polars as pl

        return pl.DataFrame(schema=self.polars_schema())

    def pandera_schema(
        self, severity: Severity = "error", waive: frozenset[str] = frozenset()
    ) -> pa.DataFrameSchema:
        """The pandera schema of the rules of one severity; waived rules count as warnings."""
        return _pandera_schema(self, severity, waive)

    def sql_rules(
        self, severity: Severity = "error", waive: frozenset[str] = frozenset()
    ) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == "sql" and effective_severity(r, waive) == severity)

    def row_rules(
        self, severity: Severity = "error", waive: frozenset[str] = frozenset()
    ) -> tuple[Rule, ...]:
        """The rules of one severity checked on the table's own rows (all but the SQL rules)."""
        return tuple(r for r in self.rules if r.kind != "sql" and effective_severity(r, waive) == severity)

    def conform_names(self, names: list[str]) -> dict[str, str]:
        """Renames giving columns spelled in another case the contract's spelling (as Glue, Athena do)."""
        by_lower = {c.name.lower(): c.name for c in self.columns}
        return {n: by_lower[n.lower()] for n in names if n.lower() in by_lower and by_lower[n.lower()] != n}


def effective_severity(rule: Rule, waive: frozenset[str]) -> Severity:
    return "warning" if rule.qualified_name in waive or rule.name in waive else rule.severity


@cache
def _pandera_schema(contract: Contract, severity: Severity, waive: frozenset[str]) -> pa.DataFrameSchema:
    import pandera.polars as pa
    import polars as pl

    def check_for(rule: Rule) -> pa.Check:
        if rule.kind == "finite":
            return pa.Check(
                lambda data: data.lazyframe.select(pl.col(data.key).is_finite()),
                error=rule.name,
            )
        if rule.kind == "valid_values":
            return pa.Check.isin(list(rule.valid_values), error=rule.name)
        if rule.kind == "pattern":
            return pa.Check.str_matches(rule.pattern, error=rule.name)
        if rule.kind == "duplicates":
            together = list(rule.properties or contract.column_names)
            return pa.Check(
                lambda data: data.lazyframe.select(~pl.struct(together).is_duplicated()),
                error=rule.name,
            )
        raise AssertionError(rule.kind)

    wanted = contract.row_rules(severity, waive)
    columns = {}
    for column in contract.columns:
        checks = [check_for(r) for r in wanted if r.column == column.name]
        if severity == "error" and (column.minimum is not None or column.maximum is not None):
            checks.insert(0, _range_check(column))
        if severity == "error":
            dtype = contract.polars_schema()[column.name]
            columns[column.name] = pa.Column(dtype, checks, nullable=not column.required, coerce=False)
        elif checks:
            columns[column.name] = pa.Column(None, checks, nullable=True, required=False)
    return pa.DataFrameSchema(
        columns,
        checks=[check_for(r) for r in wanted if r.column is None],
        strict=severity == "error",
        name=contract.name,
    )


def _range_check(column: Column) -> pa.Check:
    import pandera.polars as pa

    low, high = column.minimum, column.maximum
    if low is not None and high is not None:
        return pa.Check.in_range(low, high, error="range")
    if low is not None:
        return pa.Check.ge(low, error="range")
    return pa.Check.le(high, error="range")


def range_text(column: Column) -> str:
    def shown(bound: float | None, infinite: str) -> str:
        if bound is None:
            return infinite
        return str(int(bound)) if float(bound).is_integer() else str(bound)

    return f"between {shown(column.minimum, '-inf')} and {shown(column.maximum, 'inf')}"


# --- loading ------------------------------------------------------------------------------------------------


def contracts_dir() -> Path:
    """The folder holding the contract files of this installation."""
    return bundled("_contracts", "contracts")


def contract_names(directory: Path | None = None) -> tuple[str, ...]:
    directory = directory or contracts_dir()
    return tuple(sorted(p.stem for p in directory.glob("*.yaml")))


@cache
def load_contract(name: str, directory: Path | None = None) -> Contract:
    """The contract named ``name`` (e.g. "customer_trusted")."""
    directory = directory or contracts_dir()
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(contract_names(directory))
        raise UsageError(f"unknown contract {name!r}; known contracts: {known}")
    return parse_contract(path.read_bytes(), str(path))


def load_contracts(directory: Path | None = None) -> dict[str, Contract]:
    return {name: load_contract(name, directory) for name in contract_names(directory)}


# --- the registry: which datasets and tables exist, from the contract files alone --------------------------
#
# Every other module asks here; none restates the list. Landing contracts (zone landing) name the datasets;
# the quarantine contract is one table per dataset; every other contract is a table the lake builds.

LANDING_ZONE = "landing"
QUARANTINE = "quarantine"
QUARANTINE_SUFFIX = "_quarantine"


@cache
def _in_flow_order() -> tuple[Contract, ...]:
    return tuple(sorted(load_contracts().values(), key=lambda c: (c.position, c.name)))


def datasets() -> tuple[str, ...]:
    """The landing datasets, in the order data flows through the lake."""
    return tuple(c.dataset for c in _in_flow_order() if c.zone == LANDING_ZONE)


def landing_tables() -> dict[str, str]:
    """Each landing table's name -> its dataset, in flow order."""
    return {c.name: c.dataset for c in _in_flow_order() if c.zone == LANDING_ZONE}


def landing_table(dataset: str) -> str:
    """The landing table of ``dataset``."""
    for table, owner in landing_tables().items():
        if owner == dataset:
            return table
    raise UsageError(f"unknown dataset {dataset!r}; datasets: {', '.join(datasets())}")


def lake_tables() -> tuple[str, ...]:
    """The tables the lake builds (trusted and curated), in flow order."""
    return tuple(c.name for c in _in_flow_order() if c.zone not in (LANDING_ZONE, QUARANTINE))


def quarantine_table(dataset: str) -> str:
    """The lake table of a dataset's quarantine, e.g. customer_quarantine."""
    return f"{dataset}{QUARANTINE_SUFFIX}"


def quarantine_tables() -> tuple[str, ...]:
    return tuple(quarantine_table(d) for d in datasets())


def table_contract(table: str) -> Contract:
    """The contract of any table, a quarantine's included (they share the quarantine contract)."""
    return load_contract(QUARANTINE if table.endswith(QUARANTINE_SUFFIX) else table)


def parse_contract(text: bytes, path: str) -> Contract:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        document = yaml.load(text, Loader=loader)
    except yaml.YAMLError as err:
        raise ContractError(f"{path}: not valid YAML: {err}") from None
    return _build(document, path, hashlib.sha256(text).hexdigest())


def _require(condition: object, path: str, message: str) -> None:
    if not condition:
        raise ContractError(f"{path}: {message}")


def _build(doc: Any, path: str, sha256: str) -> Contract:
    _require(isinstance(doc, dict), path, "a contract is a YAML mapping")
    _require(doc.get("kind") == "DataContract", path, "kind must be DataContract")
    _require(str(doc.get("apiVersion", "")).startswith("v3."), path, "apiVersion must be an ODCS v3 version")
    name = doc.get("name")
    _require(isinstance(name, str) and name, path, "name is required")
    custom = {p.get("property"): p.get("value") for p in doc.get("customProperties") or []}
    _require(
        custom.get("dataset") and custom.get("zone"), path, "customProperties dataset and zone are required"
    )
    schema = doc.get("schema")
    _require(isinstance(schema, list) and len(schema) == 1, path, "schema must hold exactly one object")
    obj = schema[0]
    _require(obj.get("name") == name, path, f"the schema object must be named {name!r}")
    grain = obj.get("dataGranularityDescription")
    _require(
        isinstance(grain, str) and grain.strip(), path, "dataGranularityDescription (the grain) is required"
    )
    properties = obj.get("properties")
    _require(isinstance(properties, list) and properties, path, "properties are required")

    columns: list[Column] = []
    rules: list[Rule] = []
    for prop in properties:
        column = _column(prop, path)
        _require(
            column.name not in {c.name for c in columns}, path, f"property {column.name!r} is listed twice"
        )
        columns.append(column)
        if prop.get("unique"):
            rules.append(
                Rule("unique", "duplicates", "error", f"{column.name} is unique", column.name, (column.name,))
            )
        rules.extend(_rule(q, path, column.name) for q in prop.get("quality") or [])
    rules.extend(_rule(q, path, None) for q in obj.get("quality") or [])
    names = {c.name for c in columns}
    for rule in rules:
        unknown = set(rule.properties) - names
        _require(not unknown, path, f"rule {rule.name!r} names unknown properties {sorted(unknown)}")
    qualified = [r.qualified_name for r in rules]
    _require(len(qualified) == len(set(qualified)), path, "quality rule names must be unique per element")
    description = doc.get("description") or {}
    return Contract(
        name=name,
        version=str(doc.get("version", "")),
        dataset=str(custom["dataset"]),
        zone=str(custom["zone"]),
        when_empty=str(custom.get("whenEmpty") or ""),
        position=int(custom.get("position") or 0),
        grain=" ".join(grain.split()),
        purpose=" ".join(str(description.get("purpose", "")).split()),
        columns=tuple(columns),
        rules=tuple(r for r in rules if r.kind != "text"),
        path=path,
        sha256=sha256,
    )


def _column(prop: Any, path: str) -> Column:
    _require(
        isinstance(prop, dict) and isinstance(prop.get("name"), str), path, "every property needs a name"
    )
    name = prop["name"]
    logical = prop.get("logicalType")
    _require(logical in LOGICAL_TYPES, path, f"{name}: logicalType must be one of {', '.join(LOGICAL_TYPES)}")
    classification = prop.get("classification")
    _require(
        classification in ("personal", "pseudonymous", "internal", "public"),
        path,
        f"{name}: classification must be personal, pseudonymous, internal or public",
    )
    options = prop.get("logicalTypeOptions") or {}
    for bound in ("minimum", "maximum"):
        _require(
            options.get(bound) is None or isinstance(options[bound], int | float),
            path,
            f"{name}: logicalTypeOptions.{bound} must be a number",
        )
    for unsupported in ("exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
        _require(
            unsupported not in options, path, f"{name}: logicalTypeOptions.{unsupported} is not supported"
        )
    return Column(
        name=name,
        logical_type=logical,
        required=bool(prop.get("required", False)),
        primary_key=bool(prop.get("primaryKey", False)),
        classification=classification,
        description=" ".join(str(prop.get("description", "")).split()),
        minimum=options.get("minimum"),
        maximum=options.get("maximum"),
        partitioned=bool(prop.get("partitioned", False)),
    )


def _rule(quality: Any, path: str, column: str | None) -> Rule:
    _require(isinstance(quality, dict), path, "a quality rule is a mapping")
    name = quality.get("name")
    where = f"{column}: " if column else ""
    _require(isinstance(name, str) and name, path, f"{where}every quality rule needs a name")
    severity = quality.get("severity", "error")
    _require(severity in ("error", "warning"), path, f"{name}: severity must be error or warning")
    description = " ".join(str(quality.get("description", "")).split())
    kind = quality.get("type") or ("library" if quality.get("metric") else None)
    if kind == "text":
        return Rule(name, "text", severity, description, column)  # type: ignore[arg-type]
    thresholds = {k for k in quality if k.startswith("mustBe") or k.startswith("mustNotBe")}
    _require(
        thresholds == {"mustBe"} and quality["mustBe"] == 0 if kind != "custom" else thresholds <= {"mustBe"},
        path,
        f"{name}: only 'mustBe: 0' is supported (every failing row counts)",
    )
    arguments = quality.get("arguments") or {}
    if kind == "library":
        metric = quality.get("metric")
        if metric == "duplicateValues":
            together = tuple(arguments.get("properties") or ((column,) if column else ()))
            return Rule(name, "duplicates", severity, description, column, together)
        if metric == "invalidValues" and column and "validValues" in arguments:
            return Rule(
                name,
                "valid_values",
                severity,
                description,
                column,
                valid_values=tuple(arguments["validValues"]),
            )
        if metric == "invalidValues" and column and "pattern" in arguments:
            return Rule(name, "pattern", severity, description, column, pattern=str(arguments["pattern"]))
        raise ContractError(f"{path}: {name}: library metric {metric!r} is not supported here")
    if kind == "custom":
        _require(
            quality.get("engine") == "stedi-etl", path, f"{name}: custom rules must use engine stedi-etl"
        )
        _require(quality.get("implementation") == "finite" and column, path, f"{name}: unknown custom rule")
        return Rule(name, "finite", severity, description, column)
    if kind == "sql":
        query = quality.get("query")
        _require(isinstance(query, str) and query.strip(), path, f"{name}: a sql rule needs a query")
        return Rule(name, "sql", severity, description, column, query=" ".join(query.split()))
    raise ContractError(f"{path}: {name}: unsupported quality type {kind!r}")
