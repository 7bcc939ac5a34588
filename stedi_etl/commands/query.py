"""Read-only SQL over the lake's current versions and the landing data, as Athena gives over the Glue tables.

DuckDB runs the SQL: like Athena it matches identifiers case-insensitively and reads ``t.user`` as a
column, so the seed project's queries run verbatim (Polars' SQL matches column names case-sensitively and
parses ``accelerometer_trusted.user`` as a function call). The tables are handed to DuckDB as Arrow
streams of the Polars frames stedi-etl reads; DuckDB itself is given no access to files at all.
"""

from __future__ import annotations

import difflib
import io
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stedi_etl.contracts import lake_tables, landing_table, landing_tables
from stedi_etl.errors import UsageError
from stedi_etl.lake.tables import Lake

if TYPE_CHECKING:
    import polars as pl

Format = Literal["table", "csv", "json", "parquet"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json", "parquet")
READ_ONLY = ("SELECT", "EXPLAIN")  # DuckDB's statement types of SELECT, WITH, VALUES, FROM, DESCRIBE, EXPLAIN
# EXPLAIN, ANALYZE and an option list, in front of the statement explained.
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?(?:\([^)]*\)\s*)?", re.IGNORECASE)


def query_tables() -> tuple[str, ...]:
    """The eight tables a query can name: three landing tables, then the lake's in build order."""
    return (*landing_tables(), *lake_tables())


@dataclass(frozen=True)
class QueryResult:
    sql: str
    tables: tuple[str, ...]  # the tables read for this query
    frame: pl.DataFrame
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "sql": self.sql,
            "tables": list(self.tables),
            "rows": self.frame.height,
            "columns": self.frame.columns,
            "seconds": self.seconds,
        }


def check_read_only(sql: str) -> None:
    """Refuse anything but one read-only statement; DuckDB's own parser decides what the statement is."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as err:
        raise UsageError(f"bad SQL: {_first_line(err)}") from None
    if not statements:
        raise UsageError("no SQL statement given")
    if len(statements) > 1:
        raise UsageError(f"one statement at a time; got {len(statements)}")
    kind = statements[0].type.name
    if kind not in READ_ONLY:
        raise UsageError(f"only read-only queries run (SELECT, WITH, VALUES, EXPLAIN), not {kind}")
    if kind == "EXPLAIN":
        # EXPLAIN ANALYZE runs what it explains: only what a plain query may run may follow it.
        explained = _EXPLAIN.sub("", statements[0].query, count=1)
        inner = duckdb.extract_statements(explained) if explained.strip() else []
        inner_kind = inner[0].type.name if len(inner) == 1 else "nothing"
        if inner_kind != "SELECT":
            raise UsageError(
                f"EXPLAIN explains only read-only queries (SELECT, WITH, VALUES), not {inner_kind}"
            )


def referenced_tables(sql: str) -> tuple[str, ...]:
    """The known tables whose names occur in ``sql`` as words, in any case and quoted or not.

    A name inside a string literal or a comment counts too: that only reads a table needlessly, where
    asking DuckDB to bind the query would already let it touch files to resolve table functions.
    """
    words = {word.lower() for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql)}
    return tuple(name for name in query_tables() if name in words)


def run_query(
    sql: str, lake: str, landing: str | None, *, endpoint_url: str | None = None, as_of: str | None = None
) -> QueryResult:
    """Run one read-only SQL statement over the tables it names, read from ``lake`` and ``landing``
    (None: the landing the lake was built from, or the bundled sample for a lake without one)."""
    import duckdb
    import polars as pl

    started = time.perf_counter()
    check_read_only(sql)
    needed = referenced_tables(sql)
    frames = _read_tables(needed, Lake.of(lake, endpoint_url, as_of=as_of), landing, endpoint_url)
    # No file system, no extensions, and settings locked: the registered frames are all a query can see.
    connection = duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "lock_configuration": True,
        },
    )
    try:
        for name, frame in frames.items():
            connection.register(name, _ArrowStream(frame))
        try:
            relation = connection.sql(sql)
            if relation is None:
                raise UsageError("the statement returns no rows")
            if len(set(relation.columns)) < len(relation.columns):
                relation = relation.project("*")  # DuckDB names repeated columns x_1, as a frame needs
            frame = pl.DataFrame(_as_polars_reads(relation))
        except duckdb.CatalogException as err:
            message = _first_line(err)
            if "Table with name" in message:
                # DuckDB suggests from what is registered (only the tables the statement names) and its
                # own catalog; the eight tables are the ones to suggest from.
                message = message.split(" — Did you mean", 1)[0]
                missing = message.split("Table with name ", 1)[1].split(" ", 1)[0]
                close = difflib.get_close_matches(missing.lower(), query_tables(), n=1)
                if close:
                    message += f' — Did you mean "{close[0]}"?'
                message += f" (tables: {', '.join(query_tables())})"
            raise UsageError(message) from None
        except duckdb.Error as err:
            raise UsageError(f"query failed: {_first_line(err)}") from None
    finally:
        connection.close()
    return QueryResult(sql, needed, frame, round(time.perf_counter() - started, 4))


def _as_polars_reads(relation: Any) -> Any:
    """The result with the types Polars cannot take from Arrow (an INTERVAL, even inside a list or struct:
    taking one panicked) as DuckDB's text for them: every result can be shown and written."""
    unreadable = [
        name for name, kind in zip(relation.columns, relation.types, strict=True) if "INTERVAL" in str(kind)
    ]
    if not unreadable:
        return relation
    quoted = {name: '"' + name.replace('"', '""') + '"' for name in relation.columns}
    columns = [
        f"CAST({quoted[name]} AS VARCHAR) AS {quoted[name]}" if name in unreadable else quoted[name]
        for name in relation.columns
    ]
    return relation.project(", ".join(columns))


class _ArrowStream:
    """A frame seen only through the Arrow PyCapsule interface: DuckDB scans it without pyarrow."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.frame.__arrow_c_stream__(requested_schema)


def _read_tables(
    names: tuple[str, ...], lake: Lake, landing_uri: str | None, endpoint_url: str | None
) -> dict[str, pl.DataFrame]:
    from stedi_etl.lake.storage import open_store
    from stedi_etl.lake.tables import choose_landing
    from stedi_etl.landing.read import read_landing, require_landing

    frames = {}
    datasets = landing_tables()
    wanted_landing = [datasets[n] for n in names if n in datasets]
    if wanted_landing:
        recorder = None if landing_uri else lake
        store = open_store(choose_landing(recorder, landing_uri).uri, endpoint_url=endpoint_url)
        listings = require_landing(store, wanted_landing)
        for dataset in wanted_landing:
            frames[landing_table(dataset)] = read_landing(store, dataset, listings[dataset]).frame
    wanted_lake = [n for n in names if n not in datasets]
    if wanted_lake:
        if not lake.tables():
            raise UsageError(f"no published tables in {lake.uri} (is the lake URI right?)")
        pointers = lake.tables()  # one snapshot: every table of the same run's lake
        for name in wanted_lake:
            frames[name] = lake.read(name, pointers.get(name))
    return frames


def render(frame: pl.DataFrame, fmt: Format) -> bytes:
    """The result in one of FORMATS; table is for people (every row), the others for programs."""
    import polars as pl

    if fmt == "table":
        with pl.Config(
            tbl_rows=-1,
            tbl_cols=-1,
            fmt_str_lengths=80,
            tbl_width_chars=1000,
            tbl_hide_column_data_types=True,
            tbl_hide_dataframe_shape=True,
            tbl_formatting="ASCII_MARKDOWN",
        ):
            rows = "1 row" if frame.height == 1 else f"{frame.height} rows"
            return f"{frame}\n({rows})\n".encode()
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    frame = _writable(frame, fmt)
    buffer = io.BytesIO()
    try:
        if fmt == "csv":
            frame.write_csv(buffer)
        elif fmt == "json":
            frame.write_json(buffer)
            buffer.write(b"\n")
        else:
            frame.write_parquet(buffer, compression="zstd")
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as err:  # a panic is no Exception
        raise UsageError(f"--format {fmt} cannot hold this result: {_first_line(err)}") from None
    return buffer.getvalue()


def _writable(frame: pl.DataFrame, fmt: Format) -> pl.DataFrame:
    """The result as ``fmt`` holds it: bytes (BLOB) as hex text in CSV and JSON, which have no bytes; a
    column CSV cannot hold (lists, structs, maps) refused in one line, naming it and what can."""
    import polars as pl

    if fmt == "parquet":
        return frame
    for name, dtype in frame.schema.items():
        compound = dtype.is_nested() or str(dtype).startswith(("Extension", "Object"))
        if fmt == "csv" and compound:
            raise UsageError(
                f"column {name!r} holds {dtype} values, which CSV cannot hold; use --format json or parquet"
            )
        if compound and "Binary" in str(dtype):  # Polars' JSON writer has no bytes inside other values
            raise UsageError(f"column {name!r} holds bytes inside {dtype}; use --format parquet")
    binary = [name for name, dtype in frame.schema.items() if dtype == pl.Binary]
    return frame.with_columns(pl.col(binary).bin.encode("hex")) if binary else frame


def write_output(data: bytes, output: str) -> None:
    """Write a query's rendered result to a local file."""
    try:
        Path(output).write_bytes(data)
    except OSError as err:
        raise UsageError(f"cannot write {output}: {err.strerror or err}") from None


# Lines of DuckDB's messages that say how to fix the statement; they follow the first line.
_HINTS = ("Candidate bindings", "Did you mean", "LINE ")
_LISTED_FUNCTIONS = 4


def _first_line(err: BaseException) -> str:
    """The engine's message as one line: its first line and the hints that follow it (the column or
    table meant, the place in the statement, the signatures that would match), the rest left out."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    kept = [lines[0]]
    for index, line in enumerate(lines[1:], start=1):
        if line.startswith(_HINTS):
            kept.append(line)
        elif line.startswith("Candidate functions"):
            functions = [f for f in lines[index + 1 :] if "(" in f and not f.startswith(_HINTS)]
            more = len(functions) - _LISTED_FUNCTIONS
            listed = "; ".join(functions[:_LISTED_FUNCTIONS]) + (f"; and {more} more" if more > 0 else "")
            kept.append(f"candidate functions: {listed}")
    return " — ".join(kept)
