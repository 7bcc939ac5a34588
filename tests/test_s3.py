"""The lake on S3, against a real S3 HTTP endpoint on loopback (moto's server; tests/s3_fixtures.py).

Every expectation is independent of the code under test: the known stedi-starter counts, the raw landing
files, or the same pipeline run on local disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from stedi_etl.cli import main
from stedi_etl.commands.land import land_files, place
from stedi_etl.errors import StorageError, UsageError
from stedi_etl.lake.storage import Store, redact
from stedi_etl.lake.tables import Lake
from stedi_etl.run.runner import run
from tests.conftest import REPO
from tests.killing import killed_run

if TYPE_CHECKING:
    import polars as pl

    from tests.s3_fixtures import S3, FaultProxy

# The server, the proxy and their fixtures; imported by pytest first, so its asserts are rewritten.
pytest_plugins = ["tests.s3_fixtures"]

EXPECTED = {
    "customer_trusted": 482,
    "accelerometer_trusted": 40981,
    "customer_curated": 482,
    "step_trainer_trusted": 14460,
    "machine_learning_curated": 40981,
}
QUARANTINES = ("customer_quarantine", "accelerometer_quarantine", "step_trainer_quarantine")


# --- helpers ------------------------------------------------------------------------------------------------


def raw_files(root: Path) -> dict[str, bytes]:
    """The landing files under ``root``, by path relative to it."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def comparable(frame: pl.DataFrame, landing: str) -> pl.DataFrame:
    """Sorted rows; a quarantine's source files relative to their landing root, which differs by place."""
    import polars as pl

    if "sourceFile" in frame.columns:
        frame = frame.with_columns(pl.col("sourceFile").str.strip_prefix(landing.rstrip("/") + "/"))
    return frame.sort(frame.columns, nulls_last=True)


def lake_tables(lake: str, landing: str, endpoint: str | None = None) -> dict[str, pl.DataFrame]:
    """Every published table of a lake, as a reader gets it, ready to compare."""
    the_lake = Lake(Store(lake, endpoint_url=endpoint))
    return {name: comparable(the_lake.read(name), landing) for name in the_lake.tables()}


def lake_versions(lake: str, endpoint: str) -> dict[str, str]:
    return {
        name: pointer.version for name, pointer in Lake(Store(lake, endpoint_url=endpoint)).tables().items()
    }


def assert_same_tables(got: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame]) -> None:
    assert sorted(got) == sorted(expected)
    assert {t: got[t].height for t in EXPECTED} == EXPECTED
    for name, frame in expected.items():
        assert got[name].schema == frame.schema, name
        assert got[name].equals(frame), name


def cli(*args: str) -> tuple[int, str, str]:
    """Run the stedi-etl command line in this process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="session")
def local_tables(starter: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    """The stedi-starter lake built on local disk: what every S3 run must equal."""
    lake = tmp_path_factory.mktemp("local-lake")
    assert run(str(starter), str(lake)).ok
    return lake_tables(str(lake), str(starter))


@pytest.fixture
def landed(s3: S3, starter: Path) -> str:
    """stedi-starter landed into the bucket; its landing URI."""
    land_files(str(starter), s3.uri("landing"), endpoint_url=s3.endpoint)
    return s3.uri("landing")


# --- placing files (no S3 needed) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "dataset", "below"),
    [
        ("customer-1691348231425.json", "customer", "customer-1691348231425.json"),
        ("customer/landing/customer-1691348231425.json", "customer", "customer-1691348231425.json"),
        ("Customer_Keep-1655293787679.json", "customer", "Customer_Keep-1655293787679.json"),
        ("exports/step-trainer/2022/06/a.json", "step_trainer", "2022/06/a.json"),
        ("steptrainer-1.jsonl", "step_trainer", "steptrainer-1.jsonl"),
        ("step_trainer-1655296678763.json.gz", "step_trainer", "step_trainer-1655296678763.json.gz"),
        ("accelerometer/landing/sub/x.ndjson", "accelerometer", "sub/x.ndjson"),
        ("raw/accelerometer/customer-notes.json", None, None),  # folder and name disagree
        ("customers.json", None, None),  # "customer" inside another word
        ("nocustomer-1.json", None, None),
        ("my-customer-1.json", None, None),  # not at the start of the name
        ("step-1.json", None, None),
        ("customer/trusted/x.json", None, None),  # already a trusted zone
        ("customer/landing/readme.md", None, None),  # not JSON
        ("step_trainer/customer/x.json", None, None),  # two datasets
    ],
)
def test_a_file_is_placed_by_its_folder_or_name(
    relative: str, dataset: str | None, below: str | None
) -> None:
    if dataset is None:
        with pytest.raises(ValueError, match=r"\w"):
            place(relative)
    else:
        assert place(relative) == (dataset, below)


def test_redact_removes_the_environments_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "fake-secret-for-redact-Ab12Cd34"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    message = f"signature for {secret} failed; aws_secret_access_key = other-secret-value"
    assert secret not in redact(message)
    assert "other-secret-value" not in redact(message)


# --- land ---------------------------------------------------------------------------------------------------


@pytest.mark.s3
def test_land_uploads_the_raw_files_once_then_skips_them(
    s3: S3, starter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = raw_files(starter)

    result = land_files(str(starter), s3.uri("landing"), endpoint_url=s3.endpoint)

    assert len(result.uploaded) == len(raw) == 13
    assert s3.keys("landing/") == {f"landing/{name}": len(data) for name, data in raw.items()}
    for name, data in raw.items():
        assert s3.get(f"landing/{name}") == data

    # Again, through the command line, with the endpoint from the AWS chain: nothing to send.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    code, out, _ = cli("land", str(starter), "--landing", s3.uri("landing"), "--json")
    assert code == 0
    assert json.loads(out)["uploaded"] == 0
    assert json.loads(out)["skipped"] == len(raw)

    # Same size, one byte different: the checksum tells, and only that file goes up.
    source = tmp_path / "source"
    for name, data in raw.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    changed = "customer/landing/customer-1691348231425.json"
    edited = bytearray(raw[changed])
    edited[-2] = ord("}") if edited[-2] != ord("}") else ord(" ")
    (source / changed).write_bytes(bytes(edited))
    code, out, _ = cli("land", str(source), "--landing", s3.uri("landing"), "--json")
    assert code == 0
    assert [f["target"] for f in json.loads(out)["files"] if f["status"] == "uploaded"] == [
        s3.uri("landing", changed)
    ]
    assert s3.get(f"landing/{changed}") == bytes(edited)


def test_land_into_a_local_landing_compares_content(starter: Path, tmp_path: Path) -> None:
    raw = raw_files(starter)
    landing = tmp_path / "landing"

    code, out, err = cli("land", str(starter), "--landing", str(landing), "--json")
    assert code == 0, err
    assert json.loads(out)["uploaded"] == len(raw)
    assert raw_files(landing) == raw

    source = tmp_path / "source"
    (source / "customer").mkdir(parents=True)
    name = "customer-1691348231425.json"
    data = bytearray(raw[f"customer/landing/{name}"])
    data[0:1] = b" " if data[0:1] != b" " else b"\n"  # same size, other bytes
    (source / "customer" / name).write_bytes(bytes(data))
    result = land_files(str(source), str(landing))
    assert [f.status for f in result.files] == ["uploaded"]
    assert (landing / "customer" / "landing" / name).read_bytes() == bytes(data)
    assert [f.status for f in land_files(str(source), str(landing)).files] == ["skipped"]


@pytest.mark.s3
def test_land_refuses_a_file_it_cannot_place_and_uploads_nothing(
    s3: S3, starter: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "customer-1691348231425.json").write_bytes(
        (starter / "customer/landing/customer-1691348231425.json").read_bytes()
    )
    (source / "notes.json").write_text('{"a": 1}\n')

    with pytest.raises(UsageError, match=r"notes\.json"):
        land_files(str(source), s3.uri("landing"), endpoint_url=s3.endpoint)
    code, out, err = cli(
        "land", str(source), "--landing", s3.uri("landing"), "--s3-endpoint-url", s3.endpoint
    )

    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "notes.json" in err
    assert s3.keys() == {}


@pytest.mark.s3
def test_land_knows_a_multipart_upload_of_the_same_bytes(s3: S3, tmp_path: Path) -> None:
    from boto3.s3.transfer import TransferConfig

    # Three 8 MiB parts, as the AWS CLI and boto3 upload a file this big: the ETag is not the file's MD5.
    data = os.urandom(17 * 2**20)
    (tmp_path / "accelerometer-1.json").write_bytes(data)
    key = "landing/accelerometer/landing/accelerometer-1.json"
    parts = TransferConfig(multipart_threshold=8 * 2**20, multipart_chunksize=8 * 2**20)
    s3.client().upload_file(str(tmp_path / "accelerometer-1.json"), s3.bucket, key, Config=parts)
    assert s3.client().head_object(Bucket=s3.bucket, Key=key)["ETag"].endswith('-3"')

    result = land_files(str(tmp_path), s3.uri("landing"), endpoint_url=s3.endpoint)
    assert [f.status for f in result.files] == ["skipped"]

    (tmp_path / "accelerometer-1.json").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    result = land_files(str(tmp_path), s3.uri("landing"), endpoint_url=s3.endpoint)
    assert [f.status for f in result.files] == ["uploaded"]
    assert (
        hashlib.md5(s3.get(key), usedforsecurity=False).digest()
        != hashlib.md5(data, usedforsecurity=False).digest()
    )


# --- run-all on S3 ------------------------------------------------------------------------------------------


@pytest.mark.s3
def test_run_all_from_s3_to_s3_gives_the_local_runs_tables(
    s3: S3, landed: str, starter: Path, local_tables: dict[str, pl.DataFrame]
) -> None:
    code, out, err = cli(
        "run-all", "--landing", landed, "--lake", s3.uri("lake"), "--s3-endpoint-url", s3.endpoint
    )

    assert code == 0, err
    assert "tables: 5 published" in out
    assert_same_tables(lake_tables(s3.uri("lake"), landed, s3.endpoint), local_tables)
    # Each table is a Delta table with its first commit; the run has its manifest.
    keys = s3.keys("lake/")
    assert sum(k.endswith(f"/_delta_log/{0:020d}.json") for k in keys) == len(EXPECTED) + len(QUARANTINES)
    assert sum(k.startswith("lake/_stedi/runs/") for k in keys) == 1
    assert "lake/_stedi/lock" not in keys  # released


@pytest.mark.s3
def test_local_landing_to_s3_lake_and_back(
    s3: S3,
    starter: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    local_tables: dict[str, pl.DataFrame],
) -> None:
    # Local landing -> S3 lake, the endpoint from AWS_ENDPOINT_URL, through the library.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    result = run(str(starter), s3.uri("lake"))
    assert result.ok
    assert_same_tables(lake_tables(s3.uri("lake"), str(starter)), local_tables)

    # S3 landing -> local lake, the endpoint from --s3-endpoint-url, through the command line.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    land_files(str(starter), s3.uri("landing"), endpoint_url=s3.endpoint)
    lake = tmp_path / "lake"
    code, _, err = cli(
        "run-all", "--landing", s3.uri("landing"), "--lake", str(lake), "--s3-endpoint-url", s3.endpoint
    )
    assert code == 0, err
    assert_same_tables(lake_tables(str(lake), s3.uri("landing")), local_tables)


# --- an interrupted run -------------------------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.slow
@pytest.mark.parametrize(
    "kill_at", [3, 10]
)  # after the run's two manifest writes (started, publishing): its first new version; all eight
def test_a_killed_s3_run_leaves_every_table_at_its_previous_version(
    s3: S3, landed: str, kill_at: int, local_tables: dict[str, pl.DataFrame]
) -> None:
    lake = s3.uri("lake")
    assert run(landed, lake, endpoint_url=s3.endpoint).ok
    before = lake_versions(lake, s3.endpoint)
    keys_before = set(s3.keys("lake/"))

    # The run uploads its eight new data files before its first commit: killed right after its Nth upload
    # (N <= 8), files 1..N are on S3 and nothing is committed.
    killed_run(
        landed, lake, kill_at, half_written=False, env={"AWS_ENDPOINT_URL": s3.endpoint}, full_refresh=True
    )

    written = {key for key in set(s3.keys("lake/")) - keys_before if not key.startswith("lake/_stedi/")}
    # The dead run's new files are there, but no commit names them; its lock is left behind.
    assert written  # uploads run concurrently: others may have landed before the kill
    assert all("/part-" in key and key.endswith(".parquet") and "/_delta_log/" not in key for key in written)
    assert "lake/_stedi/lock" in s3.keys("lake/")
    assert lake_versions(lake, s3.endpoint) == before
    assert_same_tables(lake_tables(lake, landed, s3.endpoint), local_tables)

    # No retention: the next run vacuums every file no version needs, the dead run's among them.
    code, _, err = cli(
        "run-all", "--landing", landed, "--lake", lake, "--s3-endpoint-url", s3.endpoint, "--full-refresh",
        "--retention-hours", "0",
    )  # fmt: skip
    assert code == 0, err
    assert "took over the lock" in err  # its holder is a dead process on this host
    after = lake_versions(lake, s3.endpoint)
    assert all(after[table] != version for table, version in before.items())
    assert not written & set(s3.keys("lake/"))  # the next run vacuumed the dead run's files
    assert_same_tables(lake_tables(lake, landed, s3.endpoint), local_tables)


# --- transient and persistent S3 errors ---------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize(
    ("code", "method"),
    [("SlowDown", None), ("InternalError", "PUT")],  # the run's first requests; its first uploads
)
def test_transient_s3_errors_are_retried(
    s3: S3, landed: str, fault_proxy: FaultProxy, code: str, method: str | None
) -> None:
    fault_proxy.fail(2, code, None if method is None else lambda m, _path: m == method)

    exit_code, out, err = cli(
        "run-all", "--landing", landed, "--lake", s3.uri("lake"), "--s3-endpoint-url", fault_proxy.endpoint
    )

    assert exit_code == 0, err
    assert len(fault_proxy.failed) == 2  # the faults did happen, and were retried
    assert "tables: 5 published" in out
    the_lake = Lake(Store(s3.uri("lake"), endpoint_url=s3.endpoint))
    assert {table: the_lake.read(table).height for table in EXPECTED} == EXPECTED


FAULTS = {
    # every upload: the run dies writing its first new version
    "uploads": ("SlowDown", lambda method, _path: method == "PUT"),
    # only commits: every new data file is written, the first Delta commit fails
    "commits": ("InternalError", lambda method, path: method == "PUT" and "/_delta_log/" in path),
    # everything: the run dies at its first request, listing the landing zone
    "everything": ("ServiceUnavailable", lambda _method, _path: True),
}


@pytest.mark.s3
@pytest.mark.slow
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_persistent_s3_error_fails_the_run_cleanly(
    s3: S3,
    landed: str,
    fault_proxy: FaultProxy,
    fault: str,
    monkeypatch: pytest.MonkeyPatch,
    local_tables: dict[str, pl.DataFrame],
) -> None:
    lake = s3.uri("lake")
    assert run(landed, lake, endpoint_url=s3.endpoint).ok
    before = lake_versions(lake, s3.endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # fail fast: the retries themselves are tested above
    code, matches = FAULTS[fault]
    fault_proxy.fail(None, code, matches)

    with pytest.raises(StorageError, match=rf"^cannot \w+ s3://{s3.bucket}/(lake|landing)/\S+: {code}"):
        run(landed, lake, endpoint_url=fault_proxy.endpoint, full_refresh=True)
    command = [
        "run-all",
        "--full-refresh",
        "--landing",
        landed,
        "--lake",
        lake,
        "-q",
        "--s3-endpoint-url",
        fault_proxy.endpoint,
    ]
    done = subprocess.run(
        [sys.executable, "-m", "stedi_etl", *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1
    # One error line; the retries before it are each said as they happen (at most one a few seconds).
    retries = [line for line in done.stderr.splitlines() if line.startswith("warning: S3 ")]
    lines = [line for line in done.stderr.splitlines() if line not in retries]
    assert len(lines) == 1, done.stderr
    assert all(line.endswith("; retrying") for line in retries)
    assert retries or fault == "commits", done.stderr  # deltalake's own client retries without a word
    assert lines[0].startswith("error: cannot ")
    assert f"s3://{s3.bucket}/" in lines[0]
    assert "Traceback" not in done.stderr
    for secret in (s3.secret, s3.key_id):
        assert secret not in done.stdout + done.stderr
    assert lake_versions(lake, s3.endpoint) == before
    assert_same_tables(lake_tables(lake, landed, s3.endpoint), local_tables)
    # The failed runs' manifests (where they could be written) list no table as published: nothing was.
    for key in s3.keys("lake/_stedi/runs/"):
        manifest = json.loads(s3.get(key))
        if manifest["status"] != "succeeded":
            assert manifest["status"] in ("failed", "interrupted"), (key, manifest["status"])
            published = [t["table"] for t in manifest["tables"] if t["status"] == "published"]
            assert not published, (key, published)


# --- catalog, query and ddl of a lake on S3 -----------------------------------------------------------------


@pytest.mark.s3
def test_catalog_query_and_ddl_read_a_lake_on_s3(s3: S3, landed: str) -> None:
    assert run(landed, s3.uri("lake"), endpoint_url=s3.endpoint).ok
    endpoint = ("--s3-endpoint-url", s3.endpoint)

    code, out, err = cli("catalog", "--lake", s3.uri("lake"), "--json", *endpoint)
    assert code == 0, err
    document = json.loads(out)
    assert {t["table"]: t["rows"] for t in document["tables"] if t["table"] in EXPECTED} == EXPECTED
    version = s3.uri("lake", "customer", "trusted") + "/"  # the Delta table's fixed folder
    assert document["tables"][0]["location"] == version

    # No --landing: the lake on S3 records the landing it was built from, and query and ddl use it.
    code, out, err = cli(
        "query",
        "SELECT (SELECT COUNT(*) FROM customer_landing) AS landed, COUNT(*) AS n FROM customer_trusted"
        " WHERE email IN (SELECT user FROM accelerometer_trusted)",
        "--lake",
        s3.uri("lake"),
        "--format",
        "csv",
        *endpoint,
    )
    assert code == 0, err
    assert out.splitlines() == ["landed,n", "956,482"]

    # No --location either: a lake on S3 is its own location.
    code, out, err = cli("ddl", "customer_trusted", "customer_landing", "--lake", s3.uri("lake"), *endpoint)
    assert code == 0, err
    assert f"LOCATION '{version}'" in out
    assert f"LOCATION '{landed}/customer/landing/'" in out
    assert s3.key_id not in out + err and s3.secret not in out + err


@pytest.mark.s3
def test_an_s3_rerun_with_nothing_changed_reads_no_landing_file_and_writes_no_table(
    s3: S3, landed: str, fault_proxy: FaultProxy
) -> None:
    lake = s3.uri("lake")
    assert run(landed, lake, endpoint_url=s3.endpoint).ok
    tables_before = {k: v for k, v in s3.keys("lake/").items() if not k.startswith("lake/_stedi/")}

    again = run(landed, lake, endpoint_url=fault_proxy.endpoint)

    assert again.ok and {t.status for t in again.tables + again.quarantines} == {"up_to_date"}
    assert {k: v for k, v in s3.keys("lake/").items() if not k.startswith("lake/_stedi/")} == tables_before
    writes = {path.split("?")[0] for method, path, _status in fault_proxy.seen if method in ("PUT", "POST")}
    assert writes == {f"/{s3.bucket}/lake/_stedi/lock", f"/{s3.bucket}/lake/_stedi/runs/{again.run_id}.json"}
    landing_objects = f"/{s3.bucket}/landing/"
    assert not [
        path for method, path, _ in fault_proxy.seen if method == "GET" and path.startswith(landing_objects)
    ]
    # Listings, the lock, each table's log listed and its newest commit read (8 + 8), 2 manifest writes.
    assert len(fault_proxy.seen) <= 33


@pytest.mark.s3
def test_two_runs_on_s3_leave_both_versions_readable_by_plain_delta_readers(s3: S3, landed: str) -> None:
    import polars as pl

    from stedi_etl.run.runner import RunOptions

    lake = s3.uri("lake")
    assert run(landed, lake, endpoint_url=s3.endpoint).ok
    assert run(landed, lake, endpoint_url=s3.endpoint, options=RunOptions(ml_join="timestamp")).ok
    options = Store(lake, endpoint_url=s3.endpoint).polars_options()
    where = s3.uri("lake", "step_trainer", "curated")
    latest = pl.scan_delta(where, storage_options=options).select(pl.len()).collect().item()
    first = pl.scan_delta(where, version=0, storage_options=options).select(pl.len()).collect().item()
    assert (first, latest) == (EXPECTED["machine_learning_curated"], 43681)
    assert s3.key_id == options["AWS_ACCESS_KEY_ID"]  # the identity s3fs resolved, handed to deltalake


# --- the AWS Glue Data Catalog (moto's Glue, on the same server) --------------------------------------------


@pytest.mark.s3
def test_register_glue_lists_every_table_with_contract_columns_at_fixed_locations(
    s3: S3, landed: str
) -> None:
    import boto3
    import yaml

    from stedi_etl.run.runner import RunOptions

    lake = s3.uri("lake")
    assert run(landed, lake, endpoint_url=s3.endpoint).ok
    endpoints = ("--s3-endpoint-url", s3.endpoint, "--glue-endpoint-url", s3.endpoint)
    code, out, err = cli("catalog", "--lake", lake, "--register-glue", "stedi", "--json", *endpoints)
    assert code == 0, err
    assert {t["action"] for t in json.loads(out)["tables"]} == {"created"}

    glue = boto3.client("glue", endpoint_url=s3.endpoint, region_name="us-east-1")
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="stedi")["TableList"]}
    assert len(tables) == 8
    for name, table in tables.items():
        contract = yaml.safe_load((REPO / "contracts" / f"{name}.yaml").read_text())
        properties = contract["schema"][0]["properties"]
        wanted = [p["name"] for p in properties if not p.get("partitioned")]
        assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == wanted, name
        partitioned = [(p["name"], p["logicalType"]) for p in properties if p.get("partitioned")]
        assert [(c["Name"], c["Type"]) for c in table.get("PartitionKeys", [])] == partitioned, name
    ml = tables["machine_learning_curated"]
    assert ml["StorageDescriptor"]["Location"] == s3.uri("lake", "step_trainer", "curated") + "/"
    assert ml["Parameters"]["table_type"] == "DELTA"
    assert tables["customer_landing"]["StorageDescriptor"]["Location"] == f"{landed}/customer/landing/"
    locations = {name: t["StorageDescriptor"]["Location"] for name, t in tables.items()}

    # Another lake version: registering again updates the tables and moves no location.
    assert run(landed, lake, endpoint_url=s3.endpoint, options=RunOptions(ml_join="timestamp")).ok
    code, out, err = cli("catalog", "--lake", lake, "--register-glue", "stedi", *endpoints)
    assert code == 0, err
    assert "updated" in out
    again = {
        t["Name"]: t["StorageDescriptor"]["Location"]
        for t in glue.get_tables(DatabaseName="stedi")["TableList"]
    }
    assert again == locations


@pytest.mark.s3
@pytest.mark.slow
def test_readers_on_s3_see_one_runs_lake_while_a_writer_replaces_it(
    s3: S3, landed: str, starter: Path
) -> None:
    from stedi_etl.commands.query import run_query
    from tests.conftest import STARTER_COUNTS, STEDI_2022_COUNTS, data_set

    lake = s3.uri("lake")
    land_files(str(data_set("stedi-2022")), s3.uri("landing-2022"), endpoint_url=s3.endpoint)
    assert run(landed, lake, endpoint_url=s3.endpoint).ok
    tables = list(STARTER_COUNTS)
    five = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {t}) AS c{i}" for i, t in enumerate(tables))
    one_run = {tuple(STARTER_COUNTS[t] for t in tables), tuple(STEDI_2022_COUNTS[t] for t in tables)}
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom stedi_etl.run.runner import run\n"
            "for n in range(6):\n"
            "    assert run(sys.argv[2 + n % 2], sys.argv[1], full_refresh=True).ok\n",
            lake,
            s3.uri("landing-2022"),
            landed,
        ],
        cwd=REPO,
        env={**os.environ, "AWS_ENDPOINT_URL": s3.endpoint},
        stderr=subprocess.PIPE,
    )
    reads = 0
    try:
        while writer.poll() is None:
            counts = tuple(run_query(five, lake, landed, endpoint_url=s3.endpoint).frame.row(0))
            assert counts in one_run, counts
            reads += 1
    finally:
        writer.wait(timeout=300)
    assert writer.returncode == 0, writer.stderr.read().decode()  # type: ignore[union-attr]
    print(f"{reads} five-table reads on S3 during 6 runs")
    assert reads >= 5
