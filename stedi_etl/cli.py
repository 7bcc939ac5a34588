"""The stedi-etl command line: each command calls one library function, prints its result and picks the exit
code (0 ok, 1 data or contract failure, 2 usage error). Errors are one line on stderr, without a traceback.

Only click is imported at start-up; a command imports the library it needs when it runs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

import click

from stedi_etl import __version__
from stedi_etl.wording import plural, table_counts

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_LAKE = "./lake"
DEFAULT_REPORT = "report.html"


def _fail(message: str, code: int, also: list[str] | None = None) -> None:
    """The error in one line, then any met while handling it, and the exit code."""
    click.echo(f"error: {message}", err=True)
    for line in also or ():
        click.echo(f"error: {line}", err=True)
    sys.exit(code)


class _StderrWarnings(logging.Handler):
    """What the library logs at WARNING and above (an S3 request being retried), one line each on stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        from stedi_etl.lake.storage import redact

        click.echo(f"warning: {redact(record.getMessage())}", err=True)


def _reports_errors(command: F) -> F:
    """Turn library errors into one line and an exit code; keep tracebacks for STEDI_ETL_DEBUG=1."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import logging

        from stedi_etl.errors import StediError
        from stedi_etl.lake.storage import redact

        warnings = _StderrWarnings()
        logging.getLogger("stedi_etl").addHandler(warnings)
        try:
            return command(*args, **kwargs)
        except StediError as err:
            _fail(redact(str(err)), err.exit_code, also=[redact(line) for line in err.also])
        except KeyboardInterrupt:
            _fail(
                "interrupted; each table is whole: at its previous version, or this run's if published", 130
            )
        except Exception as err:
            if os.environ.get("STEDI_ETL_DEBUG"):
                raise
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            _fail(
                f"unexpected {type(err).__name__}: {redact(first)} (STEDI_ETL_DEBUG=1 shows the traceback)", 1
            )
        finally:
            logging.getLogger("stedi_etl").removeHandler(warnings)

    return wrapper  # type: ignore[return-value]


def _lake_option(help_text: str = "Lake root: a folder or s3://bucket/prefix.") -> Callable[[F], F]:
    return click.option("--lake", default=DEFAULT_LAKE, show_default=True, metavar="URI", help=help_text)


def _landing_option(read_for: str) -> Callable[[F], F]:
    """--landing for commands that read it; without it they read the landing the lake was built from."""
    return click.option(
        "--landing",
        metavar="URI",
        help=f"Landing root {read_for}; default: the landing the lake was built from (the bundled sample "
        "for a new lake).",
    )


def _as_of_option(command: F) -> F:
    return click.option(
        "--as-of",
        metavar="RUN_ID|TIME",
        help="Read the lake as a run left it: a run id (stedi-etl runs) or an ISO time, within the "
        "retention.",
    )(command)


def _s3_endpoint_option(command: F) -> F:
    return click.option(
        "--s3-endpoint-url",
        metavar="URL",
        envvar="STEDI_ETL_S3_ENDPOINT_URL",
        help="S3-compatible endpoint (MinIO, Ceph, R2); default: the AWS chain, e.g. AWS_ENDPOINT_URL.",
    )(command)


def _output_options(command: F) -> F:
    command = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")(
        command
    )
    return click.option(
        "--quiet", "-q", is_flag=True, help="No progress and no summary; the exit code tells."
    )(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stedi-etl")
def main() -> None:
    """The STEDI Step Trainer lake: landing JSON -> trusted -> curated Parquet, checked by data contracts."""


def _size(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    from stedi_etl.run.partitions import parse_size

    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _run_options(command: F) -> F:
    command = click.option(
        "--retention-hours",
        type=click.FloatRange(min=0),
        default=168,
        show_default=True,
        metavar="HOURS",
        help="Keep files a table no longer needs this long, so its earlier versions stay readable; then "
        "vacuum them.",
    )(command)
    command = click.option(
        "--progress/--no-progress",
        "show_progress",
        default=None,
        help="Show progress bars (bytes read, tables built, rate, time left) on stderr; default: only when "
        "stderr is a terminal.",
    )(command)
    command = click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Run the tasks on N local Dask worker processes started for the run (needs stedi-etl[dask]).",
    )(command)
    command = click.option(
        "--scheduler",
        envvar="STEDI_ETL_SCHEDULER",
        default=None,
        metavar="tcp://HOST:PORT",
        help="Run the tasks (parsing landing files, building days) on the Dask cluster of this scheduler; "
        "its workers must reach the same landing and lake. This process still checks and commits. "
        "Default: $STEDI_ETL_SCHEDULER, else in this process.",
    )(command)
    command = click.option(
        "--memory-limit",
        callback=_size,
        default=None,
        metavar="SIZE",
        help="About how much memory the run may hold (e.g. 1GiB, 800MB); it sizes the batches of landing "
        "files parsed and the days built at once. Default: 768 MiB, or a quarter of the machine's memory "
        "where less.",
    )(command)
    command = click.option(
        "--wait",
        type=click.FloatRange(min=0),
        default=0,
        metavar="SECONDS",
        help="If another run holds the lake's lock, wait up to SECONDS for it instead of failing at once.",
    )(command)
    command = click.option(
        "--full-refresh",
        is_flag=True,
        help="Rebuild every table, even those whose inputs, contract and options are unchanged.",
    )(command)
    command = click.option(
        "--consent",
        type=click.Choice(["per-record", "latest-record"]),
        default="per-record",
        show_default=True,
        help="Whose records are trusted: every record with research consent (per-record), or only those of "
        "customers whose latest record, by lastUpdateDate, consents (latest-record: withdrawals honoured).",
    )(command)
    command = click.option(
        "--consent-cutoff",
        is_flag=True,
        help="Keep only accelerometer readings taken at or after the customer's research consent.",
    )(command)
    command = click.option(
        "--ml-join",
        type=click.Choice(["same-customer", "timestamp"]),
        default="same-customer",
        show_default=True,
        help="Pair readings of the same customer, or of any customer at that instant (the rubric's join).",
    )(command)
    command = _lake_option()(command)
    return _landing_option("holding <dataset>/landing/ folders")(command)


@main.command("run-all")
@_run_options
@click.option(
    "--report",
    "report_path",
    is_flag=False,
    flag_value=DEFAULT_REPORT,
    default=None,
    metavar="[PATH]",
    help=f"At the end of the run, ok or failed, write the HTML report (default PATH: {DEFAULT_REPORT}).",
)
@_s3_endpoint_option
@_output_options
@_reports_errors
def run_all(report_path: str | None, **options: Any) -> None:
    """Build every table of the lake that is out of date (all with --full-refresh) from the landing data."""
    _run(None, RunArgs(**options), report_path=report_path)


class _RunCommand(click.Command):
    """`run`, whose help ends with the tables it can build, read from the DAG only when help is asked for."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from stedi_etl.run.runner import STEPS

        with formatter.section("Tables (each built from the ones after it)"):
            formatter.write_dl([(step.table, ", ".join(step.inputs)) for step in STEPS])
        super().format_epilog(ctx, formatter)


@main.command("run", cls=_RunCommand)
@click.argument("tables", nargs=-1, required=True)
@_run_options
@_s3_endpoint_option
@_output_options
@_reports_errors
def run_tables(tables: tuple[str, ...], **options: Any) -> None:
    """Build the named TABLES and the tables they need, where out of date.

    Landing tables are read, not built: check them with `stedi-etl validate --landing URI`.
    """
    _run(tables, RunArgs(**options))


@dataclass(frozen=True)
class RunArgs:
    """The options `run-all` and `run` share, as click passes them."""

    landing: str | None
    lake: str
    ml_join: str
    consent_cutoff: bool
    consent: str
    full_refresh: bool
    wait: float
    memory_limit: int | None
    scheduler: str | None
    workers: int | None
    show_progress: bool | None  # None: when stderr is a terminal
    retention_hours: float
    s3_endpoint_url: str | None
    quiet: bool
    as_json: bool


def _run(tables: tuple[str, ...] | None, args: RunArgs, *, report_path: str | None = None) -> None:
    from stedi_etl.render.progress import TerminalMeter
    from stedi_etl.run.progress import NO_METER, Meter
    from stedi_etl.run.runner import RunOptions, run

    started = time.perf_counter()
    wanted = args.show_progress
    if wanted is None:
        wanted = not (args.quiet or args.as_json) and sys.stderr.isatty()
    meter: Meter = TerminalMeter() if wanted else NO_METER

    def progress(message: str) -> None:
        line = f"[{time.perf_counter() - started:6.2f}s] {message}"
        if wanted:
            meter.note(line)
        else:
            click.echo(line, err=True)

    result = run(
        args.landing,
        args.lake,
        tables=tables,
        options=RunOptions(ml_join=args.ml_join, consent_cutoff=args.consent_cutoff, consent=args.consent),  # type: ignore[arg-type]
        endpoint_url=args.s3_endpoint_url,
        progress=None if args.quiet or args.as_json else progress,
        full_refresh=args.full_refresh,
        wait=args.wait,
        meter=meter,
        retention_hours=args.retention_hours,
        memory_limit=args.memory_limit,
        scheduler=args.scheduler or None,
        workers=args.workers,
    )
    if args.as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    elif not args.quiet:
        click.echo(render_run(result))
    for failed in result.failed:
        click.echo(f"error: {failed.table} {failed.status}: {failed.reason}", err=True)
    if report_path:
        from stedi_etl.render.report import write_report

        written = write_report(
            args.lake, report_path, landing=result.landing, endpoint_url=args.s3_endpoint_url
        )
        if not args.quiet:
            click.echo(f"report {written.output} ({written.bytes / 1024:.0f} KiB)", err=True)
    sys.exit(0 if result.ok else 1)


def render_run(result: Any) -> str:
    """The end-of-run summary: rows per table and zone, quarantine, time per step."""
    lines = [f"run {result.run_id}  {result.landing} -> {result.lake}"]
    if result.landing_changed_from:
        lines.append(f"landing changed: {result.landing_changed_from} -> {result.landing}")
    elif result.landing_source == "recorded":
        lines.append("landing: the one the lake was built from (--landing reads another)")
    options = result.options
    if options.ml_join != "same-customer" or options.consent_cutoff or options.consent != "per-record":
        lines.append(
            f"options: ml-join={options.ml_join} consent={options.consent} "
            f"consent-cutoff={options.consent_cutoff} full-refresh={result.full_refresh}"
        )
    elif result.full_refresh:
        lines.append("options: full-refresh")
    if result.took_over_from:
        lines.append(f"took over the lock of run {result.took_over_from}, which ended without releasing it")
    executor = result.executor
    if executor.get("kind") == "dask":
        where = "local workers" if executor.get("local") else f"the cluster at {executor['scheduler']}"
        lines.append(
            f"tasks: {plural(len(result.tasks), 'task')} on {where}, "
            f"{plural(len(executor['workers']), 'worker')} ran some"
        )
    lines.append("")
    lines.append(f"{'landing':<28}{'files':>6}{'rows':>10}{'quarantined':>13}{'seconds':>9}")
    for s in result.landing_results:
        if not s.read:
            lines.append(f"  {s.dataset:<26}{s.files:>6}{'unchanged, not read':>32}")
            lines.extend(f"    {line}" for line in not_read_lines(s.skipped))
            continue
        lines.append(f"  {s.dataset:<26}{s.files:>6}{s.rows:>10}{s.quarantined:>13}{s.seconds:>9.2f}")
        for reason, count in s.quarantined_by_reason.items():
            lines.append(f"    {count} {reason}")
        if s.files_reused:
            lines.append(
                f"    {plural(s.files_parsed, 'file')} parsed, {s.files_reused} reused from earlier runs"
            )
        if s.read_paths.get("tolerant") or s.read_paths.get("mixed"):
            lines.append(
                f"    {plural(s.records_read_tolerantly, 'record')} read by the tolerant reader "
                f"(files: {', '.join(f'{n} {path}' for path, n in sorted(s.read_paths.items()))})"
            )
        lines.extend(f"    {line}" for line in not_read_lines(s.skipped))
    lines.append("")
    lines.append(f"{'table':<28}{'zone':<9}{'rows':>7}  {'status':<11}{'seconds':>8}")
    for t in result.tables:
        rows = "-" if t.rows is None else str(t.rows)
        status = t.status.replace("_", " ")
        empty = "  empty: see warnings" if t.ok and t.rows == 0 else ""
        lines.append(f"  {t.table:<26}{t.zone:<9}{rows:>7}  {status:<11}{t.seconds:>8.2f}{empty}")
    warnings = [w for s in result.landing_results for w in s.warnings] + [
        w for t in result.tables for w in t.warnings
    ]
    if warnings:
        lines.append("")
        lines.append("warnings:")
        lines.extend(f"  {w.line()}" for w in warnings)
    lines.append("")
    quarantined = sum(s.quarantined or 0 for s in result.landing_results)
    verdict = "ok" if result.ok else "FAILED"
    counts = table_counts((t.table, t.status) for t in result.tables + result.quarantines)
    lines.append(
        f"{verdict}: {counts}; {plural(quarantined, 'record')} quarantined, {result.seconds:.2f}s; "
        f"manifest {result.manifest}"
    )
    return "\n".join(lines)


@main.command()
@click.option("--landing", metavar="URI", help="Check the landing data under this root.")
@click.option("--lake", metavar="URI", help="Check every published table of this lake.")
@click.option(
    "--contract", "contract_name", metavar="NAME", help="Check PATHS (Parquet or JSON) against this contract."
)
@click.argument("paths", nargs=-1)
@_as_of_option
@_s3_endpoint_option
@_output_options
@_reports_errors
def validate(
    landing: str | None,
    lake: str | None,
    contract_name: str | None,
    paths: tuple[str, ...],
    as_of: str | None,
    s3_endpoint_url: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Check data against its contracts: landing data, a whole lake, or files against one contract."""
    from stedi_etl.commands import validate as checks

    chosen = [bool(landing), bool(lake), bool(contract_name)]
    if sum(chosen) != 1:
        _fail("choose exactly one of --landing URI, --lake URI or --contract NAME PATH...", 2)
    if contract_name and not paths:
        _fail("--contract NAME needs at least one PATH to check", 2)
    if paths and not contract_name:
        _fail("PATHs are checked against a contract: add --contract NAME", 2)
    if as_of and not lake:
        _fail("--as-of reads an earlier snapshot of a lake: add --lake URI", 2)
    if landing:
        result = checks.validate_landing(landing, endpoint_url=s3_endpoint_url)
    elif lake:
        result = checks.validate_lake(lake, endpoint_url=s3_endpoint_url, as_of=as_of)
    else:
        result = checks.validate_paths(contract_name, paths, endpoint_url=s3_endpoint_url)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    elif not quiet:
        click.echo(render_validation(result))
    sys.exit(0 if result.ok else 1)


SHOWN_NOT_READ = 10


def not_read_lines(skipped: dict[str, str]) -> list[str]:
    """The files under a landing folder that were not read, a line each with why (the first few)."""
    lines = [f"not read: {path} ({why})" for path, why in list(skipped.items())[:SHOWN_NOT_READ]]
    if len(skipped) > SHOWN_NOT_READ:
        lines.append(f"not read: {len(skipped) - SHOWN_NOT_READ} more (--json lists every one)")
    return lines


def render_validation(result: Any) -> str:
    lines = []
    for report in result.reports:
        status = "ok" if report.ok else "FAILED"
        source = f" ({report.source})" if report.source else ""
        lines.append(f"{report.table}{source}: {report.rows} rows, {status}")
        lines.extend(f"  error   {f.line()}" for f in report.errors)
        lines.extend(f"  warning {f.line()}" for f in report.warnings)
    for dataset, reasons in result.quarantined.items():
        for reason, count in reasons.items():
            lines.append(f"{dataset}: {count} records would be quarantined: {reason}")
    for dataset, unread in result.skipped.items():
        lines.extend(f"{dataset}: {line}" for line in not_read_lines(unread))
    failed = sum(not r.ok for r in result.reports)
    quarantined = sum(sum(q.values()) for q in result.quarantined.values())
    if result.ok:
        one = len(result.reports) == 1
        verb = "passes its contract" if one else "pass their contracts"
        lines.append(f"ok: {plural(len(result.reports), 'table')} {verb}")
    else:
        lines.append(
            f"FAILED: {failed} of {plural(len(result.reports), 'table')} break{'s' * (failed == 1)} their "
            "contracts, "
            f"{plural(quarantined, 'record')} rejected"
        )
    return "\n".join(lines)


@main.command()
@click.argument("out", metavar="OUT")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same files.")
@click.option("--customers", type=click.IntRange(1, 1_000_000), default=300, show_default=True)
@click.option(
    "--readings",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="Readings per active customer.",
)
@click.option(
    "--scale",
    type=click.FloatRange(0, 10_000, min_open=True),
    metavar="N",
    help="Write N times the public starter set (956 customers, ~81k accelerometer readings per unit), "
    "vectorised; N may be fractional. Replaces --customers/--readings.",
)
@click.option(
    "--clean", is_flag=True, help="With --scale: well-formed NDJSON only, no defects and no odd layouts."
)
@click.option("--force", is_flag=True, help="Write into OUT even if it already holds files.")
@_s3_endpoint_option
@_output_options
@_reports_errors
def generate(
    out: str,
    seed: int,
    customers: int,
    readings: int,
    scale: float | None,
    clean: bool,
    force: bool,
    s3_endpoint_url: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Write STEDI-shaped landing data, real-world defects included, under OUT (a new or empty folder, or
    s3://...)."""
    from stedi_etl.errors import UsageError

    context = click.get_current_context()
    explicit = [
        f"--{name}"
        for name in ("customers", "readings")
        if context.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    ]
    if scale is not None and explicit:
        raise UsageError(f"--scale sets the size; it cannot be combined with {' and '.join(explicit)}")
    if clean and scale is None:
        raise UsageError("--clean needs --scale (the sample generator always plants its defects)")
    if scale is not None:
        from stedi_etl.synth.scale import generate_scaled

        result: Any = generate_scaled(
            out, scale=scale, seed=seed, clean=clean, endpoint_url=s3_endpoint_url, force=force
        )
    else:
        from stedi_etl.synth.sample import generate as write_sample

        result = write_sample(
            out,
            seed=seed,
            customers=customers,
            readings_per_customer=readings,
            endpoint_url=s3_endpoint_url,
            force=force,
        )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif not quiet:
        click.echo(result.summary())


@main.command()
@click.argument("source_dir", metavar="SOURCE_DIR")
@click.option(
    "--landing", required=True, metavar="URI", help="Landing root to upload into (a folder or s3://...)."
)
@_s3_endpoint_option
@_output_options
@_reports_errors
def land(source_dir: str, landing: str, s3_endpoint_url: str | None, quiet: bool, as_json: bool) -> None:
    """Upload raw JSON files into the landing layout (<dataset>/landing/), skipping ones already there."""
    from stedi_etl.commands.land import land_files

    result = land_files(source_dir, landing, endpoint_url=s3_endpoint_url)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif not quiet:
        click.echo(result.summary())


@main.command()
@_lake_option()
@click.option("--last", type=click.IntRange(min=1), metavar="N", help="Only the N most recent runs.")
@_s3_endpoint_option
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON on stdout.")
@_reports_errors
def runs(lake: str, last: int | None, s3_endpoint_url: str | None, as_json: bool) -> None:
    """List the runs recorded in the lake: when, with which options, and what each did."""
    from stedi_etl.commands.runs import list_runs

    result = list_runs(lake, endpoint_url=s3_endpoint_url, last=last)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    if not result.runs:
        click.echo(f"no runs recorded in {result.lake}")
        return
    click.echo(f"{'run':<30}{'status':<13}{'started':<31}{'seconds':>8}  tables")
    for r in result.runs:
        seconds = "-" if r.seconds is None else f"{r.seconds:.2f}"
        click.echo(f"{r.run_id:<30}{r.status:<13}{r.started_at or '-':<31}{seconds:>8}  {r.counts}")
        if r.error:
            click.echo(f"  {r.error}")


@main.command()
@click.argument("tables", nargs=-1)
@_lake_option()
@_s3_endpoint_option
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON on stdout.")
@_reports_errors
def history(tables: tuple[str, ...], lake: str, s3_endpoint_url: str | None, as_json: bool) -> None:
    """Every Delta version of TABLES (default: all), newest first: time, operation, rows, run."""
    from stedi_etl.commands.history import table_history

    result = table_history(lake, tables, endpoint_url=s3_endpoint_url)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(result.summary())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the contracts' summary as JSON.")
@_reports_errors
def contracts(as_json: bool) -> None:
    """List the data contracts: table, zone, grain, keys and personal-data columns."""
    from stedi_etl.contracts import load_contracts

    loaded = load_contracts()
    if as_json:
        summary = {
            name: {
                "zone": c.zone,
                "dataset": c.dataset,
                "grain": c.grain,
                "keys": list(c.key_columns),
                "columns": {col.name: col.logical_type for col in c.columns},
                "personal": list(c.personal_columns),
                "path": c.path,
            }
            for name, c in loaded.items()
        }
        click.echo(json.dumps(summary, indent=2))
        return
    for name, c in loaded.items():
        click.echo(f"{name}  ({_where(c)})")
        click.echo(f"  grain:    {c.grain}")
        click.echo(f"  columns:  {', '.join(f'{col.name}:{col.logical_type}' for col in c.columns)}")
        click.echo(f"  personal: {', '.join(c.personal_columns) or '-'}")


def _where(contract: Any) -> str:
    """Where a contract's table lives, as a user finds it."""
    if contract.zone == "quarantine":
        return "<lake>/_quarantine/<dataset>: one table per landing dataset"
    if contract.zone == "landing":
        return f"<landing>/{contract.dataset}/landing/"
    return f"<lake>/{contract.dataset}/{contract.zone}"


@main.command()
@click.argument("sql", metavar="SQL")
@_lake_option()
@_landing_option("for the *_landing tables")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
    help="Output format; parquet needs --output.",
)
@click.option("--output", "-o", metavar="PATH", help="Write the result to this file instead of stdout.")
@_as_of_option
@_s3_endpoint_option
@_reports_errors
def query(
    sql: str,
    lake: str,
    landing: str | None,
    fmt: str,
    output: str | None,
    as_of: str | None,
    s3_endpoint_url: str | None,
) -> None:
    """Run one read-only SQL statement over the eight tables (landing and lake), case-blind as Athena."""
    from stedi_etl.commands.query import render, run_query, write_output
    from stedi_etl.errors import UsageError

    if fmt == "parquet" and not output:
        raise UsageError("--format parquet writes a file: add --output PATH")
    result = run_query(sql, lake, landing, endpoint_url=s3_endpoint_url, as_of=as_of)
    data = render(result.frame, fmt)  # type: ignore[arg-type]
    if output:
        write_output(data, output)
        click.echo(f"{plural(result.frame.height, 'row')} -> {output}", err=True)
    else:
        click.echo(data, nl=False)


@main.command()
@_lake_option()
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON on stdout.")
@click.option(
    "--register-glue",
    metavar="DATABASE",
    help="Create or update every table in this AWS Glue database: contract columns, fixed locations.",
)
@click.option(
    "--glue-endpoint-url",
    metavar="URL",
    envvar="STEDI_ETL_GLUE_ENDPOINT_URL",
    help="Glue-compatible endpoint; default: the AWS chain (AWS_ENDPOINT_URL_GLUE, AWS_ENDPOINT_URL).",
)
@_as_of_option
@_s3_endpoint_option
@_reports_errors
def catalog(
    lake: str,
    as_json: bool,
    register_glue: str | None,
    glue_endpoint_url: str | None,
    as_of: str | None,
    s3_endpoint_url: str | None,
) -> None:
    """Every table of the lake: zone, current version's location, columns, rows, when built, contract."""
    from stedi_etl.commands.catalog import build_catalog

    if register_glue:
        from stedi_etl.commands.glue import register_glue as register

        if as_of:
            _fail("--register-glue registers the tables' fixed locations: drop --as-of", 2)
        registered = register(
            lake, register_glue, endpoint_url=s3_endpoint_url, glue_endpoint_url=glue_endpoint_url
        )
        click.echo(json.dumps(registered.to_dict(), indent=2) if as_json else registered.summary())
        return
    result = build_catalog(lake, endpoint_url=s3_endpoint_url, as_of=as_of)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(result.summary())


@main.command()
@click.argument("tables", nargs=-1)
@_lake_option("Lake whose pointers name each table's current version.")
@_landing_option("for the landing tables' LOCATION")
@click.option(
    "--location",
    metavar="PREFIX",
    help="Where the data is published (s3://bucket/prefix), laid out as the lake; default: --lake/--landing.",
)
@click.option("--database", default="stedi", show_default=True, metavar="NAME", help="Glue database.")
@click.option("--json", "as_json", is_flag=True, help="Print each table's location and DDL as JSON.")
@_s3_endpoint_option
@_reports_errors
def ddl(
    tables: tuple[str, ...],
    lake: str | None,
    landing: str | None,
    location: str | None,
    database: str,
    as_json: bool,
    s3_endpoint_url: str | None,
) -> None:
    """Athena/Glue CREATE EXTERNAL TABLE statements for TABLES (default: all eight), from the contracts."""
    from stedi_etl.commands.ddl import generate_ddl

    result = generate_ddl(
        tables, lake=lake, landing=landing, location=location, database=database, endpoint_url=s3_endpoint_url
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(result.script(), nl=False)


@main.command()
@_landing_option("to profile")
@_lake_option("Lake whose landing to profile.")
@click.option(
    "--top", type=click.IntRange(0, 1000), default=5, show_default=True, help="Worst offenders shown."
)
@click.option(
    "--show-personal", is_flag=True, help="Show personal key values (emails) whole instead of masked."
)
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON on stdout.")
@_s3_endpoint_option
@_reports_errors
def profile(
    landing: str | None,
    lake: str,
    top: int,
    show_personal: bool,
    as_json: bool,
    s3_endpoint_url: str | None,
) -> None:
    """Data-quality profile of the landing data: duplicates by key, shared serial numbers, consent, nulls."""
    from stedi_etl.commands.profile import profile_landing

    result = profile_landing(
        landing, lake=lake, top=top, show_personal=show_personal, endpoint_url=s3_endpoint_url
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(result.summary())


@main.command()
@_lake_option()
@_landing_option("for the funnel and profile")
@click.option(
    "--output",
    "-o",
    default=DEFAULT_REPORT,
    show_default=True,
    metavar="PATH",
    help="The HTML file to write.",
)
@click.option(
    "--show-personal", is_flag=True, help="Show personal-data values in samples instead of masking."
)
@click.option("--json", "as_json", is_flag=True, help="Print what the report shows, in brief, as JSON.")
@_as_of_option
@_s3_endpoint_option
@_reports_errors
def report(
    lake: str,
    landing: str | None,
    output: str,
    show_personal: bool,
    as_json: bool,
    as_of: str | None,
    s3_endpoint_url: str | None,
) -> None:
    """Write the lake at a glance as one self-contained HTML file: funnel, lineage, contracts, samples."""
    from stedi_etl.render.report import write_report

    result = write_report(
        lake, output, landing=landing, show_personal=show_personal, endpoint_url=s3_endpoint_url, as_of=as_of
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(result.summary())
