"""Athena / Glue DDL derived from the contracts: what a user runs to publish the lake to the Glue catalog.

Landing tables are JSON read with the OpenX SerDe (one record per line, keys matched case-insensitively,
as the seed project's customer_landing.sql); lake tables are Delta tables at their fixed folders, whose
columns, partition columns (the reading tables' ``reading_date``) and current files Athena reads from
the table's own log, so it reads exactly the files stedi-etl's readers do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stedi_etl.contracts import Contract
from stedi_etl.errors import UsageError

if TYPE_CHECKING:
    from stedi_etl.lake.tables import Pointer

# Contract logical type -> Hive/Athena column type; the one statement of that mapping.
HIVE_TYPES = {
    "string": "string",
    "integer": "bigint",
    "number": "double",
    "boolean": "boolean",
    "date": "date",
}
DEFAULT_DATABASE = "stedi"

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
JSON_SERDE_PROPERTIES = {
    "ignore.malformed.json": "FALSE",
    "dots.in.keys": "FALSE",
    "case.insensitive": "TRUE",
    "mapping": "TRUE",
}
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"


@dataclass(frozen=True)
class TableDdl:
    table: str
    location: str
    statement: str


@dataclass(frozen=True)
class DdlResult:
    database: str
    tables: tuple[TableDdl, ...]

    def script(self) -> str:
        return "\n\n".join(t.statement for t in self.tables) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "tables": [{"table": t.table, "location": t.location, "ddl": t.statement} for t in self.tables],
        }


def quote(identifier: str) -> str:
    """A Hive identifier in backticks (``user`` and ``timestamp`` are keywords there)."""
    return "`" + identifier.replace("`", "``") + "`"


def string_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_table(contract: Contract, table: str, location: str, database: str, *, landing: bool) -> str:
    """One CREATE EXTERNAL TABLE statement for ``table`` with the columns of ``contract``."""
    columns = ",\n".join(f"  {quote(c.name)} {HIVE_TYPES[c.logical_type]}" for c in contract.columns)
    head = f"CREATE EXTERNAL TABLE IF NOT EXISTS {quote(database)}.{quote(table)} (\n{columns}\n)"
    location = location if location.endswith("/") else location + "/"
    if landing:
        properties = ",\n".join(
            f"  {string_literal(k)} = {string_literal(v)}" for k, v in JSON_SERDE_PROPERTIES.items()
        )
        storage = (
            f"ROW FORMAT SERDE {string_literal(JSON_SERDE)}\n"
            f"WITH SERDEPROPERTIES (\n{properties}\n)\n"
            f"STORED AS INPUTFORMAT {string_literal(TEXT_INPUT)} OUTPUTFORMAT {string_literal(TEXT_OUTPUT)}\n"
            f"LOCATION {string_literal(location)}\n"
            "TBLPROPERTIES ('classification' = 'json');"
        )
    else:
        # Athena's form for a Delta table: no column list, it reads the schema from the table's own log.
        return (
            f"CREATE EXTERNAL TABLE IF NOT EXISTS {quote(database)}.{quote(table)}\n"
            f"LOCATION {string_literal(location)}\n"
            "TBLPROPERTIES ('table_type' = 'DELTA');"
        )
    return f"{head}\n{storage}"


def generate_ddl(
    tables: tuple[str, ...] = (),
    *,
    lake: str | None = None,
    landing: str | None = None,
    location: str | None = None,
    database: str = DEFAULT_DATABASE,
    endpoint_url: str | None = None,
) -> DdlResult:
    """DDL for ``tables`` (default: the three landing tables and the lake's five).

    LOCATION is ``<root>/<dataset>/landing/`` for a landing table and the Delta table's folder
    ``<root>/<dataset>/<zone>/`` for a lake table, where root is ``location`` (where the data is
    published, e.g. s3://bucket/stedi) or else the lake itself and ``landing`` (by default the landing the
    lake was built from), when they are on S3: Athena reads nothing else, so a local folder without
    ``location`` is a usage error that says what to pass. A lake table must have a published version in
    ``lake``.
    """
    from stedi_etl.commands.catalog import catalog_tables
    from stedi_etl.contracts import lake_tables, landing_tables, table_contract
    from stedi_etl.lake.storage import S3_PROTOCOLS, open_store
    from stedi_etl.lake.tables import Lake
    from stedi_etl.landing.read import landing_contract, landing_dir

    if not database.replace("_", "").isalnum():
        raise UsageError(f"database name {database!r}: use letters, digits and underscores")
    landing_names = landing_tables()
    known = (*landing_names, *catalog_tables())
    wanted = tables or (*landing_names, *lake_tables())
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise UsageError(f"unknown table {unknown[0]!r}; tables: {', '.join(known)}")

    the_lake = Lake.of(lake, endpoint_url) if lake else None
    published: dict[str, Pointer] = {}
    if any(t not in landing_names for t in wanted):
        if the_lake is None:
            raise UsageError("lake tables are located by their current version: give --lake URI")
        published = the_lake.tables()
        if not published:
            raise UsageError(f"no published tables in {lake} (is the lake URI right?)")

    def readable_by_athena(uri: str, what: str) -> None:
        if open_store(uri, endpoint_url=endpoint_url).protocol not in S3_PROTOCOLS:
            raise UsageError(
                f"{what} {uri} is a local folder, which Athena cannot read: pass --location "
                "s3://bucket/prefix (where the data is published, laid out as the lake)"
            )

    if not landing and the_lake is not None and not location:
        landing = the_lake.recorded_landing()

    statements = []
    for table in wanted:
        if table in landing_names:
            dataset = landing_names[table]
            if location:
                layout = open_store(".")  # only to lay out the relative folder; nothing is read
                where = _under(location, layout.relative(landing_dir(layout, dataset)))
            elif landing:
                readable_by_athena(landing, "landing")
                store = open_store(landing, endpoint_url=endpoint_url)
                where = store.url(landing_dir(store, dataset)) + "/"
            else:
                raise UsageError(
                    f"{table} needs a LOCATION: give --location s3://bucket/prefix or --landing URI"
                )
            contract = landing_contract(dataset)
            statements.append(
                TableDdl(table, where, create_table(contract, table, where, database, landing=True))
            )
            continue
        assert the_lake is not None
        pointer = published.get(table)
        if pointer is None:
            raise UsageError(f"{table} has no published version in {lake}; run the pipeline first")
        table_dir = the_lake.table_dir(table)
        if not location:
            readable_by_athena(the_lake.uri, "lake")
        if location:
            where = _under(location, the_lake.store.relative(table_dir))
        else:
            where = the_lake.store.url(table_dir) + "/"
        contract = table_contract(table)
        statements.append(
            TableDdl(table, where, create_table(contract, table, where, database, landing=False))
        )
    return DdlResult(database, tuple(statements))


def _under(prefix: str, relative: str) -> str:
    """``relative`` (a folder of the lake's layout) under the prefix the data is published to."""
    return f"{prefix.rstrip('/')}/{relative.strip('/')}/"
