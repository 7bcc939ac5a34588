"""`stedi-etl report`: one self-contained HTML page of the lake, checked in a real browser and by its numbers.

The browser is Debian's chromium (/usr/bin/chromium, installed by .ci/run) driven by Playwright; a machine
without it fails these tests rather than skipping them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from stedi_etl.cli import main
from stedi_etl.commands.funnel import chains
from stedi_etl.commands.query import run_query
from stedi_etl.contracts import MASK
from stedi_etl.render.report import build_report, mask_raw, write_report
from stedi_etl.run.runner import STEPS, run
from tests.conftest import (
    REPO,
    STARTER_COUNTS,
    STARTER_LANDING,
    STEDI_2022_COUNTS,
    STEDI_2022_LANDING,
    break_step_trainer_trusted,
    write_landing,
)

CHROMIUM = Path("/usr/bin/chromium")

# The zone pipeline issue's published counts, landing rows first.
STARTER = {**{f"{d}_landing": n for d, n in STARTER_LANDING.items()}, **STARTER_COUNTS}
STEDI_2022 = {**{f"{d}_landing": n for d, n in STEDI_2022_LANDING.items()}, **STEDI_2022_COUNTS}

# Each reason the funnel gives, counted again in SQL (DuckDB through `query`) straight from the landing
# data and the lake: a second implementation, so the funnel's Polars code is checked, not restated.
INDEPENDENT_COUNTS = {
    (
        "customer_trusted",
        "no_consent",
    ): "SELECT COUNT(*) FROM customer_landing WHERE shareWithResearchAsOfDate IS NULL",
    ("customer_trusted", "duplicates"): """
        SELECT COUNT(*) - (SELECT COUNT(*) FROM (SELECT DISTINCT * FROM customer_landing
                           WHERE shareWithResearchAsOfDate IS NOT NULL))
        FROM customer_landing WHERE shareWithResearchAsOfDate IS NOT NULL""",
    ("accelerometer_trusted", "not_consenting_customer"): """
        SELECT COUNT(*) FROM accelerometer_landing
        WHERE "user" NOT IN (SELECT email FROM customer_trusted)""",
    ("accelerometer_trusted", "duplicates"): """
        WITH ours AS (SELECT * FROM accelerometer_landing
                      WHERE "user" IN (SELECT email FROM customer_trusted))
        SELECT (SELECT COUNT(*) FROM ours) - (SELECT COUNT(*) FROM (SELECT DISTINCT * FROM ours))""",
    ("customer_curated", "no_readings"): """
        SELECT COUNT(*) FROM customer_trusted
        WHERE email NOT IN (SELECT "user" FROM accelerometer_trusted)""",
    ("step_trainer_trusted", "no_curated_serial"): """
        SELECT COUNT(*) FROM step_trainer_landing
        WHERE serialNumber NOT IN (SELECT serialNumber FROM customer_curated)""",
    ("machine_learning_curated", "no_match"): """
        SELECT COUNT(*) FROM step_trainer_trusted s WHERE NOT EXISTS (
            SELECT 1 FROM customer_curated c JOIN accelerometer_trusted a ON a."user" = c.email
            WHERE c.serialNumber = s.serialNumber AND a."timestamp" = s.sensorReadingTime)""",
}


@pytest.fixture(scope="module")
def stedi_2022_lake(stedi_2022: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("stedi-2022-lake")
    result = run(str(stedi_2022), str(lake))
    assert result.ok, [t.reason for t in result.failed]
    return lake


@pytest.fixture(scope="module")
def starter_report(starter_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("report") / "report.html"
    result = write_report(str(starter_lake), str(output))
    assert result.adds_up and result.output == str(output)
    return output


def artifacts_dir() -> Path:
    """Where CI keeps what tests leave for people to look at (STEDI_TEST_ARTIFACTS, else <repo>/artifacts)."""
    folder = Path(os.environ.get("STEDI_TEST_ARTIFACTS") or REPO / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- the page's numbers, read back from its HTML ------------------------------------------------------------


class PageIds(HTMLParser):
    """Every element with a data-testid: its attributes and the text directly inside it."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found: dict[str, list[dict[str, str | None]]] = {}
        self.scripts = 0
        self.urls: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self.scripts += 1
        self.urls += [
            v for k, v in attrs if k in ("src", "href", "xlink:href") and v and not v.startswith("#")
        ]
        if "data-testid" in named:
            self.found.setdefault(str(named["data-testid"]), []).append(named)

    def rows(self, testid: str) -> int:
        (element,) = self.found[testid]
        return int(str(element["data-rows"]))


def test_the_chains_are_read_off_the_steps() -> None:
    assert chains() == {
        "customer": ("customer_landing", "customer_trusted", "customer_curated"),
        "accelerometer": ("accelerometer_landing", "accelerometer_trusted"),
        "step_trainer": ("step_trainer_landing", "step_trainer_trusted", "machine_learning_curated"),
    }


@pytest.mark.parametrize(
    ("data_set", "expected"), [("starter", STARTER), ("stedi_2022", STEDI_2022)], ids=["starter", "2022"]
)
def test_the_funnel_adds_up_and_agrees_with_sql_on_both_real_data_sets(
    data_set: str, expected: dict[str, int], request: pytest.FixtureRequest
) -> None:
    landing = request.getfixturevalue(data_set)
    lake = request.getfixturevalue("starter_lake" if data_set == "starter" else "stedi_2022_lake")
    funnel = build_report(str(lake)).funnel
    assert {s.table: s.rows for c in funnel.chains for s in c.stages} == expected
    for chain in funnel.chains:
        for stage in chain.stages[1:]:
            assert stage.source_rows == expected[stage.source]  # type: ignore[index]
            lost = sum(loss.rows for loss in stage.losses)
            if stage.is_join:
                assert stage.matched == stage.source_rows - lost
                assert stage.pairs - sum(loss.rows for loss in stage.pair_losses) == stage.rows  # type: ignore[operator]
            else:
                assert stage.source_rows == stage.rows + lost, stage
            assert stage.adds_up
    for (table, reason), sql in INDEPENDENT_COUNTS.items():
        counted = run_query(sql, str(lake), str(landing)).frame.item()
        losses = {loss.reason: loss.rows for loss in funnel.stage(table).losses}
        assert losses[reason] == counted, (table, reason)
    if data_set == "starter":  # the data set's README: 474 of 956 customers lack the consent key
        assert {loss.reason: loss.rows for loss in funnel.stage("customer_trusted").losses}[
            "no_consent"
        ] == 474


def test_the_stedi_2022_report_shows_its_numbers_where_a_reader_looks(
    stedi_2022_lake: Path, tmp_path: Path
) -> None:
    output = tmp_path / "report.html"
    result = write_report(str(stedi_2022_lake), str(output))
    page = PageIds(output.read_text())
    for table, rows in STEDI_2022.items():
        assert page.rows(f"headline-{table}") == rows, table
        assert page.rows(f"funnel-bar-{table}") == rows, table
    assert page.rows("headline-quarantined") == 0
    assert page.rows("funnel-loss-customer_curated-no_readings") == 497 - 137
    assert page.rows("funnel-loss-machine_learning_curated-no_match") == 29970
    # The fulfillment bug: 30 serial numbers shared by up to 43 customers (the data set's profile).
    shared = [int(str(bar["data-customers"])) for bar in page.found["serial-bar"]]
    assert max(shared) == 43 and len(shared) == 10
    assert result.rows == STEDI_2022 and result.adds_up and not result.notes


def test_the_starter_report_renders_in_chromium_with_the_right_numbers_and_no_requests(
    starter_report: Path,
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    url = starter_report.as_uri()
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}"))
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.goto(url, wait_until="load")

            def rows_of(testid: str) -> int:
                element = page.get_by_test_id(testid)
                assert element.count() == 1 and element.is_visible(), testid
                return int(element.get_attribute("data-rows") or "-1")

            def number_in(testid: str) -> int:  # text_content: SVG text has no inner_text
                return int((page.get_by_test_id(testid).text_content() or "").replace(",", ""))

            for table, rows in STARTER.items():
                assert rows_of(f"headline-{table}") == rows and number_in(f"headline-{table}") == rows
                assert rows_of(f"funnel-bar-{table}") == rows
                assert number_in(f"funnel-count-{table}") == rows
            assert rows_of("funnel-loss-customer_trusted-no_consent") == 474
            assert rows_of("funnel-loss-accelerometer_trusted-not_consenting_customer") == 81273 - 40981
            assert rows_of("funnel-loss-step_trainer_trusted-no_curated_serial") == 28680 - 14460
            why = page.get_by_test_id("funnel-why-customer_trusted").text_content() or ""
            assert "kept 482 of 956 (50.4%)" in why and "474 no research consent" in why

            # The bars are drawn to scale: customer_trusted's bar is 482/956 of the landing bar's width.
            def width(testid: str) -> float:
                box = page.get_by_test_id(testid).bounding_box()
                assert box is not None, testid
                return float(box["width"])

            ratio = width("funnel-bar-customer_trusted") / width("funnel-bar-customer_landing")
            assert ratio == pytest.approx(482 / 956, rel=0.01)

            # Lineage: every table of the DAG and every input edge, drawn.
            tables = {s.table for s in STEPS} | {i for s in STEPS for i in s.inputs}
            assert len(tables) == 8
            for table in tables:
                assert page.get_by_test_id(f"lineage-{table}").is_visible(), table
            edges = page.locator('[data-testid^="lineage-edge-"]')
            assert edges.count() == sum(len(s.inputs) for s in STEPS)
            assert page.locator("svg").count() >= 5

            # Tables: each lake table's rows and contract; samples with personal values masked.
            for table, rows in STARTER.items():
                if not table.endswith("_landing"):
                    assert rows_of(f"rows-{table}") == rows
                    assert page.get_by_test_id(f"contract-{table}").inner_text() == "contract passed"
            sample = page.get_by_test_id("sample-customer_curated")
            headers = sample.locator("th").all_inner_texts()
            emails = sample.locator(f"tbody td:nth-child({headers.index('email') + 1})").all_inner_texts()
            assert len(emails) == 5 and set(emails) == {MASK}
            assert page.get_by_test_id("runs-table").locator("tbody tr").count() == 1
            assert page.get_by_test_id("run-status").inner_text() == "succeeded"

            screenshot = artifacts_dir() / "report-stedi-starter.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot} (browser checks took {time.perf_counter() - started:.1f}s)")
    # Nothing but the file itself was fetched, and nothing was refused (a refusal shows on the console).
    assert requests == [url]
    assert problems == []


def test_the_page_is_self_contained(starter_report: Path) -> None:
    page = PageIds(starter_report.read_text())
    assert page.urls == [] and page.scripts == 0
    assert "default-src 'none'" in starter_report.read_text()


# --- hostile landing data -----------------------------------------------------------------------------------

CUSTOMER = {
    "customerName": "Ann <b>Bold</b>",
    "email": "ann@example.com",
    "phone": "555",
    "birthDay": "1990-01-01",
    "serialNumber": "<script>alert('serial')</script>",
    "registrationDate": 1655564376361,
    "lastUpdateDate": 1655564376361,
    "shareWithResearchAsOfDate": 1655564376361,
    "shareWithPublicAsOfDate": None,
    "shareWithFriendsAsOfDate": None,
}


@pytest.fixture
def hostile_landing(tmp_path: Path) -> Path:
    """Markup in values, a quarantined record holding an email and markup, a non-consenting duplicate."""
    landing = tmp_path / "landing"
    no_consent = {**CUSTOMER, "email": "bob@example.com", "shareWithResearchAsOfDate": None}
    lines = [json.dumps(CUSTOMER), json.dumps(CUSTOMER), json.dumps(no_consent)]
    lines.append('{"customerName": "</code><script>steal()</script>", "email": "eve@evil.example", "phone": ')
    write_landing(landing, "customer", "c.json", "\n".join(lines) + "\n")
    readings = [
        {"user": "ann@example.com", "timestamp": 1655564376361, "x": 1.0, "y": 0.0, "z": 0.0},
        {"user": "bob@example.com", "timestamp": 1655564376361, "x": 1.0, "y": 0.0, "z": 0.0},
    ]
    write_landing(landing, "accelerometer", "a.json", "\n".join(json.dumps(r) for r in readings))
    step = {
        "sensorReadingTime": 1655564376361,
        "serialNumber": CUSTOMER["serialNumber"],
        "distanceFromObject": 1,
    }
    write_landing(landing, "step_trainer", "s.json", json.dumps(step))
    return landing


def test_hostile_values_are_escaped_and_personal_ones_masked(hostile_landing: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert run(str(hostile_landing), str(lake)).ok
    output = tmp_path / "report.html"
    result = write_report(str(lake), str(output))
    text = output.read_text()
    page = PageIds(text)
    assert page.scripts == 0 and page.urls == []
    assert "&lt;script&gt;alert(&#x27;serial&#x27;)&lt;/script&gt;" in text  # the serial number, as text
    assert "<b>Bold" not in text and "steal()" not in text
    for email in ("ann@example.com", "bob@example.com", "eve@evil.example"):
        assert email not in text
    # The funnel accounts for every record: 4 received = 1 quarantined + 1 without consent + 1 duplicate + 1.
    assert result.adds_up and result.quarantined == 1
    assert page.rows("headline-customer_landing") == 4
    assert page.rows("funnel-loss-customer_trusted-quarantined") == 1
    assert page.rows("funnel-loss-customer_trusted-no_consent") == 1
    assert page.rows("funnel-loss-customer_trusted-duplicates") == 1
    assert page.rows("headline-machine_learning_curated") == 1
    assert len(page.found["quarantine-examples"]) == 1

    shown = write_report(str(lake), str(tmp_path / "personal.html"), show_personal=True)
    assert shown.personal_shown and "ann@example.com" in (tmp_path / "personal.html").read_text()


def test_mask_raw_masks_personal_keys_in_any_case_and_emails_anywhere() -> None:
    raw = '{"customerName": "Ann", "EMAIL": "a@b.c", "phone": 5551234, "serialNumber": "s-1", "note": x@y.z'
    masked = mask_raw(raw, ["customerName", "email", "phone"])
    assert masked == (
        f'{{"customerName": "{MASK}", "EMAIL": "{MASK}", "phone": "{MASK}", "serialNumber": "s-1", '
        f'"note": {MASK}'
    )
    assert mask_raw('{"email": "torn@record', ["email"]) == f'{{"email": "{MASK}"'


def test_a_funnel_that_does_not_add_up_says_so(hostile_landing: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert run(str(hostile_landing), str(lake)).ok
    # The landing data changes after the run: one more consenting customer the lake has not seen.
    write_landing(hostile_landing, "customer", "more.json", json.dumps({**CUSTOMER, "email": "new@x.y"}))
    result = write_report(str(lake), str(tmp_path / "report.html"))
    assert not result.adds_up and "does not add up" in result.notes[0]
    assert "not-adding-up" in PageIds((tmp_path / "report.html").read_text()).found


# --- the command line ---------------------------------------------------------------------------------------


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def test_the_report_command_writes_the_page(starter_lake: Path, starter: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.html"
    done = CliRunner().invoke(main, ["report", "--lake", str(starter_lake), "--output", str(output)])
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith(f"report {output} (") and "customer_trusted 482" in done.stdout
    assert PageIds(output.read_text()).rows("headline-accelerometer_trusted") == 40981

    as_json = CliRunner().invoke(
        main, ["report", "--lake", str(starter_lake), "-o", str(output), "--landing", str(starter), "--json"]
    )
    assert as_json.exit_code == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["rows"] == STARTER and document["adds_up"] is True and document["quarantined"] == 0


def test_the_default_output_is_report_html_in_the_working_folder(starter_lake: Path, in_tmp: Path) -> None:
    done = CliRunner().invoke(main, ["report", "--lake", str(starter_lake)])
    assert done.exit_code == 0, done.stderr
    assert (in_tmp / "report.html").is_file()


@pytest.mark.parametrize(
    "args",
    [
        ["--lake", "{tmp}/no-lake"],
        ["--lake", "{lake}", "--landing", "{tmp}/no-landing"],
        ["--lake", "{lake}", "--output", "{tmp}/no-folder/report.html"],
    ],
    ids=["no lake", "no landing", "unwritable output"],
)
def test_bad_locations_are_one_line_usage_errors(args: list[str], starter_lake: Path, tmp_path: Path) -> None:
    filled = [a.format(tmp=tmp_path, lake=starter_lake) for a in args]
    done = CliRunner().invoke(main, ["report", *filled])
    assert done.exit_code == 2, done.output
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_run_all_writes_the_report_at_the_end_of_the_run(starter: Path, tmp_path: Path) -> None:
    lake, output = tmp_path / "lake", tmp_path / "run.html"
    done = CliRunner().invoke(
        main, ["run-all", "--landing", str(starter), "--lake", str(lake), "--report", str(output), "-q"]
    )
    assert done.exit_code == 0, done.stderr
    page = PageIds(output.read_text())
    assert page.rows("headline-machine_learning_curated") == 40981
    assert page.found["run-status"]


def test_run_all_report_without_a_path_writes_report_html(hostile_landing: Path, in_tmp: Path) -> None:
    done = CliRunner().invoke(
        main, ["run-all", "--landing", str(hostile_landing), "--lake", "lake", "--report"]
    )
    assert done.exit_code == 0, done.stderr
    assert (in_tmp / "report.html").is_file() and "report report.html" in done.stderr


def test_run_all_writes_the_report_after_a_failed_run(
    hostile_landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_step_trainer_trusted(monkeypatch)
    output = tmp_path / "failed.html"
    done = CliRunner().invoke(
        main,
        [
            "run-all",
            "--landing",
            str(hostile_landing),
            "--lake",
            str(tmp_path / "lake"),
            "--report",
            str(output),
        ],
    )
    assert done.exit_code == 1 and "step_trainer_trusted failed" in done.stderr
    page = PageIds(output.read_text())
    assert page.found["run-status"] and "failed" in output.read_text()
    assert page.rows("headline-customer_trusted") == 1
    assert page.found["headline-step_trainer_trusted"][0]["data-rows"] == "None"
    text = output.read_text()
    assert "distinct_rows" in text  # the rule the table broke, beside the table


def test_the_masked_stedi_2022_report_in_chromium_holds_no_local_part_of_any_email(
    stedi_2022_lake: Path, stedi_2022: Path, tmp_path: Path
) -> None:
    """The local part of an email is a name: the masked page, as a browser shows it and as its HTML holds
    it, contains none of the data set's (Larry.Mitra@*** named a customer who never consented)."""
    import duckdb

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    output = tmp_path / "report.html"
    write_report(str(stedi_2022_lake), str(output), landing=str(stedi_2022))
    sources = [
        f"SELECT email AS e FROM read_json_auto('{stedi_2022 / 'customer' / 'landing' / '*.json'}')",
        f"SELECT user AS e FROM read_json_auto('{stedi_2022 / 'accelerometer' / 'landing' / '*.json'}')",
    ]
    emails = {row[0] for source in sources for row in duckdb.sql(source).fetchall() if row[0]}
    local_parts = {email.split("@", 1)[0] for email in emails}
    assert len(local_parts) > 500
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page()
            page.goto(output.as_uri(), wait_until="load")
            shown = page.inner_text("body")
            html = page.content()
        finally:
            browser.close()
    assert "***#" in shown  # the repeated emails are there, as digests
    assert "research consent withdrawn by a later record: 72 customers" in shown
    assert not [part for part in local_parts if part in shown or part in html]
