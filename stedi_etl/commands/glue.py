"""`stedi-etl catalog --register-glue DATABASE`: every table in the AWS Glue Data Catalog, where Athena looks.

Columns come from the contracts, locations are the ones `ddl` writes (the lake tables' fixed Delta folders,
the landing folders), so a later run changes nothing here: a Delta table's location never moves. Landing
tables are JSON read with the OpenX SerDe; lake tables are marked as Delta tables (``table_type`` DELTA, as
Athena creates them), with their Parquet storage described for readers that do not know Delta.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any, Literal

from stedi_etl.commands.ddl import (
    HIVE_TYPES,
    JSON_SERDE,
    JSON_SERDE_PROPERTIES,
    TEXT_INPUT,
    TEXT_OUTPUT,
    generate_ddl,
)
from stedi_etl.contracts import landing_tables, table_contract
from stedi_etl.errors import StorageError, UsageError
from stedi_etl.lake.storage import redact

PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
# Deadlines for each Glue request, and botocore's retries around them.
_CONNECT_TIMEOUT_S, _READ_TIMEOUT_S, _ATTEMPTS = 10, 60, 3

Action = Literal["created", "updated"]


@dataclass(frozen=True)
class RegisteredTable:
    table: str
    location: str
    action: Action


@dataclass(frozen=True)
class GlueResult:
    database: str
    tables: tuple[RegisteredTable, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"Glue database {self.database}:"]
        lines.extend(f"  {t.table:<26}{t.action:<9}{t.location}" for t in self.tables)
        return "\n".join(lines)


def table_input(table: str, location: str) -> dict[str, Any]:
    """Glue's TableInput for ``table`` at ``location``, its columns from the contract."""
    contract = table_contract(table)
    columns = [
        {"Name": c.name, "Type": HIVE_TYPES[c.logical_type]} for c in contract.columns if not c.partitioned
    ]
    partition_keys = [
        {"Name": c.name, "Type": HIVE_TYPES[c.logical_type]} for c in contract.columns if c.partitioned
    ]
    if table in landing_tables():
        storage = {
            "Columns": columns,
            "Location": location,
            "InputFormat": TEXT_INPUT,
            "OutputFormat": TEXT_OUTPUT,
            "SerdeInfo": {"SerializationLibrary": JSON_SERDE, "Parameters": dict(JSON_SERDE_PROPERTIES)},
        }
        parameters = {"classification": "json", "EXTERNAL": "TRUE"}
    else:
        storage = {
            "Columns": columns,
            "Location": location,
            "InputFormat": PARQUET_INPUT,
            "OutputFormat": PARQUET_OUTPUT,
            "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE},
        }
        parameters = {
            "table_type": "DELTA",
            "spark.sql.sources.provider": "delta",
            "classification": "delta",
            "EXTERNAL": "TRUE",
        }
    found = {
        "Name": table,
        "Description": contract.grain,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "StorageDescriptor": storage,
    }
    return {**found, "PartitionKeys": partition_keys} if partition_keys else found


def register_glue(
    lake: str,
    database: str,
    *,
    landing: str | None = None,
    location: str | None = None,
    endpoint_url: str | None = None,
    glue_endpoint_url: str | None = None,
) -> GlueResult:
    """Create or update every landing and lake table of ``lake`` in the Glue database ``database``
    (created if missing), at the locations `stedi-etl ddl` gives them."""
    ddl = generate_ddl(
        (), lake=lake, landing=landing, location=location, database=database, endpoint_url=endpoint_url
    )
    client = _glue_client(glue_endpoint_url)
    errors = client.exceptions
    registered = []
    try:
        with contextlib.suppress(errors.AlreadyExistsException):
            client.create_database(DatabaseInput={"Name": database})
        for entry in ddl.tables:
            spec = table_input(entry.table, entry.location)
            try:
                client.create_table(DatabaseName=database, TableInput=spec)
                action: Action = "created"
            except errors.AlreadyExistsException:
                client.update_table(DatabaseName=database, TableInput=spec)
                action = "updated"
            registered.append(RegisteredTable(entry.table, entry.location, action))
    except UsageError:
        raise
    except Exception as err:
        first = redact(str(err)).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StorageError(f"cannot register the lake in Glue database {database}: {first}") from None
    return GlueResult(database, tuple(registered))


def _glue_client(endpoint_url: str | None) -> Any:
    """A Glue client from botocore itself (s3fs brings it; boto3 is not needed), the AWS chain deciding
    credentials and region (us-east-1 where none is set), every request with a deadline."""
    import botocore.session
    from botocore.config import Config

    config = Config(
        connect_timeout=_CONNECT_TIMEOUT_S,
        read_timeout=_READ_TIMEOUT_S,
        retries={"max_attempts": _ATTEMPTS, "mode": "standard"},
    )
    session = botocore.session.get_session()
    region = session.get_config_variable("region") or "us-east-1"
    return session.create_client("glue", region_name=region, endpoint_url=endpoint_url or None, config=config)
