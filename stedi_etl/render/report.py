"""`stedi-etl report`: the lake at a glance, as one self-contained HTML file.

The page holds the zone funnel (rows per table, landing -> trusted -> curated, and why rows left), the
lineage of the eight tables (drawn from ``pipeline.STEPS``), each table's contract result, columns and a
sample of rows, the quarantine by reason with a few examples, the landing data's duplicates profile with the
serial-number reuse chart, and the run history. Charts are inline SVG drawn here; there is no script, no
external style, font or image, and a Content-Security-Policy forbids the page any request, so it opens
offline and a value that slipped through escaping could still not call out.

Every value that comes from the data (landing data is hostile input) goes through ``html.escape``.
Personal-data columns (by their contract's classification) are masked in every sample, not only the
curated tables': the trusted tables and the quarantine hold emails and names too, and the report, unlike
``query``, is meant to be passed around. ``show_personal`` shows them.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stedi_etl.contracts import MASK
from stedi_etl.errors import UsageError

if TYPE_CHECKING:
    import polars as pl

    from stedi_etl.commands.catalog import Catalog
    from stedi_etl.commands.funnel import Funnel, Stage
    from stedi_etl.commands.profile import Profile
    from stedi_etl.commands.runs import RunSummary
    from stedi_etl.landing.read import LandingRead

DEFAULT_OUTPUT = "report.html"
SAMPLE_ROWS = 5
EXAMPLES_PER_REASON = 3
RAW_SHOWN = 300  # characters of a quarantined record's text the report shows
TOP_SERIALS = 10
RUNS_SHOWN = 20


@dataclass(frozen=True)
class TableView:
    """One lake table as the report shows it: contract result, columns and a sample of rows."""

    table: str
    zone: str
    rows: int | None
    contract: str  # passed, passed*, not published
    outcome: str  # the current version's run and, where it differs, what the latest run did
    latest_reason: str | None
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    columns: tuple[tuple[str, str, str], ...]  # name, logical type, classification
    sample: tuple[tuple[str | None, ...], ...]
    masked: tuple[str, ...]  # the columns whose values the sample masks


@dataclass(frozen=True)
class QuarantineExample:
    source: str
    line: int
    reason: str
    detail: str
    raw: str


@dataclass(frozen=True)
class QuarantineView:
    dataset: str
    records: int
    by_reason: dict[str, int]
    examples: tuple[QuarantineExample, ...]


@dataclass(frozen=True)
class LineageNode:
    table: str
    zone: str
    dataset: str
    depth: int  # the longest path from a landing table
    rows: int | None


@dataclass(frozen=True)
class Report:
    """Everything the page shows, gathered from the lake, its manifests and the landing data."""

    lake: str
    landing: str
    generated_at: str
    latest_run: dict[str, Any] | None  # run_id, status, ok, error, started_at, options
    funnel: Funnel
    lineage: tuple[LineageNode, ...]
    edges: tuple[tuple[str, str], ...]
    tables: tuple[TableView, ...]
    quarantines: tuple[QuarantineView, ...]
    profile: Profile
    runs: tuple[RunSummary, ...]
    personal_shown: bool


@dataclass(frozen=True)
class ReportResult:
    output: str
    bytes: int
    lake: str
    landing: str
    latest_run: str | None
    rows: dict[str, int | None]  # every table of the funnel, landing tables included
    quarantined: int
    adds_up: bool
    personal_shown: bool
    seconds: float
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"report {self.output} ({self.bytes / 1024:.0f} KiB, {self.seconds:.2f}s)"]
        lines.append(f"  lake {self.lake}; landing {self.landing}; latest run {self.latest_run or '-'}")
        lines.append(
            "  " + ", ".join(f"{t} {'-' if n is None else n}" for t, n in self.rows.items() if n is not None)
        )
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


# --- gathering --------------------------------------------------------------------------------


def build_report(
    lake: str,
    landing: str | None = None,
    *,
    show_personal: bool = False,
    endpoint_url: str | None = None,
    as_of: str | None = None,
) -> Report:
    """Gather the report of ``lake``; ``landing`` defaults to the landing the lake was built from."""
    from stedi_etl.commands.catalog import build_catalog
    from stedi_etl.commands.funnel import build_funnel
    from stedi_etl.commands.profile import profile_reads
    from stedi_etl.commands.runs import list_runs
    from stedi_etl.contracts import datasets as dataset_names
    from stedi_etl.lake.storage import open_store
    from stedi_etl.lake.tables import Lake
    from stedi_etl.landing.read import read_landing, require_landing

    # One Lake, held at one snapshot, for the catalog, the runs and the tables.
    the_lake = Lake.of(lake, endpoint_url, as_of=as_of).held()
    catalog = build_catalog(the_lake, require_tables=False)
    manifest = the_lake.latest_manifest()
    if landing is None:
        # A lake whose first run failed has published nothing, so records no landing: its run's, then.
        landing = the_lake.recorded_landing() or (manifest or {}).get("landing")
        if not landing:
            raise UsageError(f"{lake} records no landing it was built from: pass --landing URI")
    store = open_store(landing, endpoint_url=endpoint_url)
    listings = require_landing(store, dataset_names())
    reads = {d: read_landing(store, d, listings[d]) for d in dataset_names()}
    pointers = the_lake.tables()
    frames = {table: the_lake.read(table, pointer) for table, pointer in pointers.items()}  # one snapshot
    options = {table: dict(p.run.get("options") or {}) for table, p in pointers.items()}
    funnel = build_funnel(
        {d: r.frame for d, r in reads.items()},
        {d: r.quarantined for d, r in reads.items()},
        frames,
        {t.table: t.rows for t in catalog.tables},
        options,
    )
    landing_url = store.location
    return Report(
        lake=the_lake.uri,
        landing=landing_url,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        latest_run=_latest_run(manifest),
        funnel=funnel,
        lineage=_lineage(funnel),
        edges=_edges(),
        tables=_table_views(catalog, frames, manifest, show_personal),
        quarantines=tuple(_quarantine_view(d, reads[d], show_personal) for d in dataset_names()),
        profile=profile_reads(landing_url, reads, top=TOP_SERIALS, show_personal=show_personal),
        runs=list_runs(the_lake, last=RUNS_SHOWN).runs,
        personal_shown=show_personal,
    )


def write_report(
    lake: str,
    output: str = DEFAULT_OUTPUT,
    *,
    landing: str | None = None,
    show_personal: bool = False,
    endpoint_url: str | None = None,
    as_of: str | None = None,
) -> ReportResult:
    """Write the report of ``lake`` to the local file ``output``; what it shows, in brief."""
    started = time.perf_counter()
    report = build_report(lake, landing, show_personal=show_personal, endpoint_url=endpoint_url, as_of=as_of)
    page = render_html(report).encode()
    try:
        Path(output).write_bytes(page)
    except OSError as err:
        raise UsageError(f"cannot write {output}: {err.strerror or err}") from None
    rows = {s.table: s.rows for c in report.funnel.chains for s in c.stages}
    notes = () if report.funnel.adds_up else (_NOT_ADDING_UP,)
    return ReportResult(
        output=output,
        bytes=len(page),
        lake=report.lake,
        landing=report.landing,
        latest_run=(report.latest_run or {}).get("run_id"),
        rows=rows,
        quarantined=sum(q.records for q in report.quarantines),
        adds_up=report.funnel.adds_up,
        personal_shown=show_personal,
        seconds=round(time.perf_counter() - started, 3),
        notes=notes,
    )


_NOT_ADDING_UP = (
    "the funnel does not add up: the landing data is not what the lake's tables were built from "
    "(changed since the run, or another --landing)"
)


def _latest_run(manifest: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not manifest:
        return None
    keys = ("run_id", "status", "ok", "error", "started_at", "ended_at", "seconds", "options", "landing")
    return {k: manifest.get(k) for k in keys}


def _edges() -> tuple[tuple[str, str], ...]:
    from stedi_etl.run.runner import STEPS

    return tuple((source, step.table) for step in STEPS for source in step.inputs)


def _lineage(funnel: Funnel) -> tuple[LineageNode, ...]:
    """The DAG's tables, each placed at its longest distance from a landing table."""
    from stedi_etl.contracts import load_contract
    from stedi_etl.run.runner import STEPS

    depth: dict[str, int] = {}
    for step in STEPS:  # STEPS is in DAG order: every input is placed before the step that reads it
        for source in step.inputs:
            depth.setdefault(source, 0)
        depth[step.table] = 1 + max(depth[source] for source in step.inputs)
    nodes = []
    for table, level in depth.items():
        contract = load_contract(table)
        nodes.append(LineageNode(table, contract.zone, contract.dataset, level, funnel.stage(table).rows))
    return tuple(nodes)


def _check_lines(entries: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    from stedi_etl.checks.rules import CheckFailure

    lines = []
    for entry in entries:
        try:
            lines.append(CheckFailure(**{**entry, "samples": tuple(entry.get("samples") or ())}).line())
        except TypeError:  # a manifest of another stedi-etl version: show what it says
            lines.append(str(entry.get("description") or entry))
    return tuple(lines)


def _table_views(
    catalog: Catalog,
    frames: Mapping[str, pl.DataFrame],
    manifest: Mapping[str, Any] | None,
    show_personal: bool,
) -> tuple[TableView, ...]:
    from stedi_etl.contracts import table_contract

    in_run = {
        t.get("table"): t
        for t in [*((manifest or {}).get("tables") or []), *((manifest or {}).get("quarantines") or [])]
        if isinstance(t, dict)
    }
    views = []
    for entry in catalog.tables:
        contract = table_contract(entry.table)
        masked = () if show_personal else contract.personal_columns
        frame = frames.get(entry.table)
        sample: tuple[tuple[str | None, ...], ...] = ()
        if frame is not None:
            sample = tuple(
                tuple(
                    _cell(value, column in masked) for column, value in zip(frame.columns, row, strict=True)
                )
                for row in frame.head(SAMPLE_ROWS).iter_rows()
            )
        run = in_run.get(entry.table, {})
        views.append(
            TableView(
                table=entry.table,
                zone=entry.zone,
                rows=entry.rows,
                contract="passed*" if entry.contract_changed else entry.contract,
                outcome=entry.outcome,
                latest_reason=entry.latest_run.reason if entry.latest_run else None,
                errors=_check_lines(run.get("errors") or ()),
                warnings=_check_lines(run.get("warnings") or ()),
                columns=tuple((c.name, c.type, c.classification) for c in entry.columns),
                sample=sample,
                masked=masked,
            )
        )
    return tuple(views)


def _cell(value: Any, masked: bool) -> str | None:
    if value is None:
        return None
    return MASK if masked else str(value)


# A JSON key and its value (a string, possibly torn, or a number), in text that may not parse as JSON.
_KEYED_VALUE = re.compile(
    r'("(?P<key>(?:[^"\\]|\\.)*)"\s*:\s*)(?P<value>"(?:[^"\\]|\\.)*"?|-?[0-9][0-9.eE+-]*)'
)
_EMAIL = re.compile(r"[^\s\"'@,;:{}\[\]<>]+@[^\s\"'@,;:{}\[\]<>]+")


def mask_raw(raw: str, personal: Iterable[str]) -> str:
    """A quarantined record's text with personal values masked: the value of every key that names a
    personal column (in any case), then anything that looks like an email, wherever it stands."""
    keys = {name.lower() for name in personal}

    def masked(match: re.Match[str]) -> str:
        if match.group("key").lower() not in keys:
            return match.group(0)
        return f'{match.group(1)}"{MASK}"'

    return _EMAIL.sub(MASK, _KEYED_VALUE.sub(masked, raw))


def _quarantine_view(dataset: str, read: LandingRead, show_personal: bool) -> QuarantineView:
    import polars as pl

    from stedi_etl.landing.read import landing_contract

    personal = landing_contract(dataset).personal_columns
    quarantine = read.quarantine
    examples = quarantine.filter(pl.int_range(pl.len()).over("reason") < EXAMPLES_PER_REASON)
    shown = []
    for row in examples.iter_rows(named=True):
        raw = row["rawRecord"] if show_personal else mask_raw(row["rawRecord"], personal)
        if len(raw) > RAW_SHOWN:
            raw = raw[:RAW_SHOWN] + "…"
        shown.append(
            QuarantineExample(row["sourceFile"], row["lineNumber"], row["reason"], row["detail"], raw)
        )
    return QuarantineView(dataset, read.quarantined, read.quarantined_by_reason(), tuple(shown))


# --- rendering --------------------------------------------------------------------------------

ZONE_COLOURS = {"landing": "#64748b", "trusted": "#2563eb", "curated": "#15803d", "quarantine": "#b91c1c"}
LOSS_COLOURS = {
    "quarantined": "#b91c1c",
    "no_consent": "#f59e0b",
    "not_consenting_customer": "#f59e0b",
    "before_consent": "#fb923c",
    "no_readings": "#a8a29e",
    "no_curated_serial": "#a8a29e",
    "no_match": "#a8a29e",
    "duplicates": "#a855f7",
}
OTHER_LOSS = "#d4d4d4"
# The page may load nothing at all: no script, font, image or style from anywhere, not even from its folder.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def n(count: int | None) -> str:
    return "–" if count is None else f"{count:,}"


def pct(share: float | None) -> str:
    return "–" if share is None else f"{share:.1%}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def render_html(report: Report) -> str:
    """The whole page: one HTML document, everything inline."""
    run = report.latest_run or {}
    status = str(run.get("status") or "no run recorded")
    ok_class = "ok" if run.get("ok") else "bad"
    sections = [
        _headline(report),
        _section("Zone funnel", "funnel", _funnel(report)),
        _section("Lineage", "lineage", _lineage_svg(report)),
        _section("Quarantine", "quarantine", _quarantine(report)),
        _section("Landing data quality", "profile", _profile(report.profile)),
        _section("Tables, contracts and samples", "tables", _tables(report)),
        _section("Run history", "runs", _runs(report.runs)),
    ]
    masked_note = (
        "Personal values are shown whole (--show-personal)."
        if report.personal_shown
        else f"Personal-data values (by contract classification) are masked as {e(MASK)}."
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>STEDI lake report — {e(report.lake)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
  <h1>STEDI lake report</h1>
  <p class="meta">lake <code>{e(report.lake)}</code> · landing <code>{e(report.landing)}</code>
  · latest run <code>{e(run.get("run_id") or "-")}</code>
  <span class="badge {ok_class}" data-testid="run-status">{e(status)}</span>
  · generated {e(report.generated_at)}</p>
  {f'<p class="error">{e(run.get("error"))}</p>' if run.get("error") else ""}
  <p class="meta">{masked_note}</p>
</header>
<main>
{"".join(sections)}
</main>
</body>
</html>
"""


def _section(title: str, anchor: str, body: str) -> str:
    return f'<section id="{e(anchor)}"><h2>{e(title)}</h2>{body}</section>\n'


def _headline(report: Report) -> str:
    """The numbers a reader looks for first: each lake table's rows beside the landing rows it came from."""
    cards = []
    for chain in report.funnel.chains:
        landing = chain.stages[0]
        for stage in chain.stages[1:]:
            source = (
                f"of {n(stage.source_rows)} {e(stage.source or '')}"
                if stage.source != landing.table
                else f"of {n(landing.rows)} landing"
            )
            share = "" if stage.is_join else f" · {pct(stage.kept_share)} kept"
            if stage.is_join:
                share = f" · {n(stage.matched)} readings paired"
            cards.append(
                f'<div class="card" style="border-top-color:{ZONE_COLOURS.get(stage.zone, "#444")}">'
                f'<div class="card-table">{e(stage.table)}</div>'
                f'<div class="big" data-testid="headline-{e(stage.table)}" data-rows="{e(stage.rows)}">'
                f"{n(stage.rows)}</div>"
                f'<div class="card-sub">{source}{share}</div></div>'
            )
    quarantined = sum(q.records for q in report.quarantines)
    landing_cards = "".join(
        f'<div class="card landing" style="border-top-color:{ZONE_COLOURS["landing"]}">'
        f'<div class="card-table">{e(chain.stages[0].table)}</div>'
        f'<div class="big" data-testid="headline-{e(chain.stages[0].table)}" '
        f'data-rows="{e(chain.stages[0].rows)}">{n(chain.stages[0].rows)}</div>'
        f'<div class="card-sub">records received</div></div>'
        for chain in report.funnel.chains
    )
    quarantine_card = (
        f'<div class="card" style="border-top-color:{ZONE_COLOURS["quarantine"]}">'
        f'<div class="card-table">quarantined</div>'
        f'<div class="big" data-testid="headline-quarantined" data-rows="{quarantined}">'
        f"{n(quarantined)}</div>"
        f'<div class="card-sub">records that could not be read</div></div>'
    )
    warning = (
        ""
        if report.funnel.adds_up
        else f'<p class="error" data-testid="not-adding-up">{e(_NOT_ADDING_UP)}</p>'
    )
    return (
        '<section id="headline"><div class="cards" data-testid="headline">'
        f"{landing_cards}{quarantine_card}</div>"
        f'<div class="cards">{"".join(cards)}</div>{warning}</section>\n'
    )


def _funnel(report: Report) -> str:
    parts = [
        '<p class="lead">Rows per table, landing → trusted → curated. Each bar is split into the rows '
        "the next table kept and, by colour, the rows it left out and why; the numbers add up exactly.</p>"
    ]
    reasons: dict[str, str] = {}
    for chain in report.funnel.chains:
        parts.append(_chain_svg(chain.dataset, chain.stages))
        for stage in chain.stages:
            reasons.update({loss.reason: loss.label for loss in stage.losses if loss.rows})
    legend = " ".join(
        f'<span class="swatch" style="background:{LOSS_COLOURS.get(reason, OTHER_LOSS)}"></span>{e(label)}'
        for reason, label in reasons.items()
    )
    zones = " ".join(
        f'<span class="swatch" style="background:{colour}"></span>{e(zone)}'
        for zone, colour in ZONE_COLOURS.items()
        if zone != "quarantine"
    )
    parts.append(f'<p class="legend">rows kept: {zones} · rows left out: {legend or "none"}</p>')
    return "".join(parts)


BAR_X, BAR_WIDTH, BAR_HEIGHT, STAGE_GAP = 230, 520, 26, 52


def _chain_svg(dataset: str, stages: Sequence[Stage]) -> str:
    scale = max([s.rows or 0 for s in stages] + [s.pairs or 0 for s in stages] + [1])
    height = 34 + len(stages) * STAGE_GAP
    body = [f'<text x="0" y="18" class="chain-title">{e(dataset)}</text>']
    for index, stage in enumerate(stages):
        y = 30 + index * STAGE_GAP
        following = stages[index + 1] if index + 1 < len(stages) else None
        colour = ZONE_COLOURS.get(stage.zone, "#444")
        body.append(
            f'<text x="0" y="{y + 18}" class="stage-label">{e(stage.table)}</text>'
            f'<text x="{BAR_X - 8}" y="{y + 18}" class="zone-tag" text-anchor="end">{e(stage.zone)}</text>'
        )
        width = BAR_WIDTH * (stage.rows or 0) / scale
        body.append(
            f'<g data-testid="funnel-bar-{e(stage.table)}" data-rows="{e(stage.rows)}">'
            f"<title>{e(stage.table)}: {n(stage.rows)} rows</title>"
            f'<rect x="{BAR_X}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" fill="{colour}" rx="2"/>'
            "</g>"
        )
        if following is not None and following.source_rows is not None and following.losses:
            # The rows the next table left out, laid over the right end of this bar, one colour per reason.
            x = BAR_X + BAR_WIDTH * (following.matched or 0) / scale
            for loss in following.losses:
                if not loss.rows:
                    continue
                w = BAR_WIDTH * loss.rows / scale
                body.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{BAR_HEIGHT}" '
                    f'fill="{LOSS_COLOURS.get(loss.reason, OTHER_LOSS)}" '
                    f'data-testid="funnel-loss-{e(following.table)}-{e(loss.reason)}" '
                    f'data-rows="{loss.rows}">'
                    f"<title>{n(loss.rows)} {e(loss.label)}</title></rect>"
                )
                x += w
        share = "" if stage.source is None else f" ({pct(stage.kept_share)})"
        if stage.is_join:
            share = f" pairs (×{stage.kept_share or 0:.2f} per reading)"
        body.append(
            f'<text x="{BAR_X + width + 8:.1f}" y="{y + 18}"><tspan class="count" '
            f'data-testid="funnel-count-{e(stage.table)}">{n(stage.rows)}</tspan>'
            f'<tspan class="share" dx="6">{e(share)}</tspan></text>'
        )
        if following is not None:
            body.append(
                f'<text x="{BAR_X}" y="{y + BAR_HEIGHT + 17}" class="why" '
                f'data-testid="funnel-why-{e(following.table)}">{e(_why(following))}</text>'
            )
    return (
        f'<svg class="funnel" data-testid="funnel-{e(dataset)}" viewBox="0 0 960 {height}" '
        f'width="960" height="{height}" role="img" aria-label="{e(dataset)} funnel">{"".join(body)}</svg>'
    )


def _why(stage: Stage) -> str:
    """One line under a bar: what the next table kept of it and why the rest left."""
    if stage.source_rows is None or stage.rows is None:
        return f"↓ {stage.table}: not published"
    losses = " · ".join(f"{_minus(loss.rows)} {loss.label}" for loss in stage.losses)
    if stage.is_join:  # a longer line: only the reasons that count
        paired = f"↓ {n(stage.matched)} of {n(stage.source_rows)} readings paired → {n(stage.pairs)} pairs"
        lost = [f"−{n(loss.rows)} {loss.label}" for loss in stage.losses if loss.rows]
        lost += [f"−{n(loss.rows)} {loss.label} among the pairs" for loss in stage.pair_losses if loss.rows]
        return " · ".join([paired, *lost]) + ("" if stage.adds_up else " · does not add up")
    kept = f"↓ kept {n(stage.rows)} of {n(stage.source_rows)} ({pct(stage.kept_share)})"
    return kept + (f" · {losses}" if losses else "") + ("" if stage.adds_up else " · does not add up")


def _minus(rows: int) -> str:
    return f"−{n(rows)}" if rows else "0"


NODE_WIDTH, NODE_HEIGHT, COLUMN_STEP, ROW_STEP = 176, 50, 184, 78


def _lineage_svg(report: Report) -> str:
    """The DAG: one column per distance from the landing zone, one row per dataset."""
    from stedi_etl.contracts import datasets as dataset_names

    place = {
        node.table: (10 + node.depth * COLUMN_STEP, 14 + dataset_names().index(node.dataset) * ROW_STEP)
        for node in report.lineage
    }
    width = 20 + max(x for x, _ in place.values()) + NODE_WIDTH
    height = 28 + max(y for _, y in place.values()) + NODE_HEIGHT
    edges = []
    for source, target in report.edges:
        (x1, y1), (x2, y2) = place[source], place[target]
        start, end = (x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2), (x2, y2 + NODE_HEIGHT / 2)
        bend = (end[0] - start[0]) / 2
        edges.append(
            f'<path data-testid="lineage-edge-{e(source)}-{e(target)}" class="edge" marker-end="url(#arrow)" '
            f'd="M{start[0]},{start[1]} C{start[0] + bend},{start[1]} '
            f'{end[0] - bend},{end[1]} {end[0]},{end[1]}"/>'
        )
    nodes = []
    for node in report.lineage:
        x, y = place[node.table]
        nodes.append(
            f'<g data-testid="lineage-{e(node.table)}" data-rows="{e(node.rows)}">'
            f'<rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6" '
            f'fill="{ZONE_COLOURS.get(node.zone, "#444")}"/>'
            f'<text x="{x + 8}" y="{y + 20}" class="node-name">{e(node.table)}</text>'
            f'<text x="{x + 8}" y="{y + 39}" class="node-rows">{n(node.rows)} rows · {e(node.zone)}</text>'
            "</g>"
        )
    legend = " ".join(
        f'<span class="swatch" style="background:{colour}"></span>{e(zone)}'
        for zone, colour in ZONE_COLOURS.items()
        if zone != "quarantine"
    )
    return (
        f'<svg class="lineage" data-testid="lineage" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="lineage of the tables">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#475569"/></marker></defs>'
        f"{''.join(edges)}{''.join(nodes)}</svg>"
        f'<p class="legend">{legend} · arrows: each table is built from the tables pointing at it '
        "(read from the pipeline's steps)</p>"
    )


def _quarantine(report: Report) -> str:
    rows = []
    examples = []
    for view in report.quarantines:
        reasons = ", ".join(f"{n(count)} {e(reason)}" for reason, count in view.by_reason.items()) or "–"
        rows.append(
            f'<tr><td>{e(view.dataset)}</td><td class="num" data-testid="quarantined-{e(view.dataset)}">'
            f"{n(view.records)}</td><td>{reasons}</td></tr>"
        )
        for example in view.examples:
            examples.append(
                f"<tr><td>{e(view.dataset)}</td><td>{e(example.reason)}</td>"
                f"<td><code>{e(example.source)}</code>:{e(example.line)}</td><td>{e(example.detail)}</td>"
                f'<td><code class="raw">{e(example.raw)}</code></td></tr>'
            )
    table = (
        '<table data-testid="quarantine-table"><thead><tr><th>dataset</th><th class="num">records</th>'
        f"<th>by reason</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    if not examples:
        return table + '<p class="lead">No landing record was quarantined: every record became a row.</p>'
    return (
        table
        + f"<h3>Examples (up to {EXAMPLES_PER_REASON} per reason)</h3>"
        + '<table data-testid="quarantine-examples"><thead><tr><th>dataset</th><th>reason</th><th>where</th>'
        + f"<th>detail</th><th>record as received</th></tr></thead><tbody>{''.join(examples)}</tbody></table>"
    )


def _profile(profile: Profile) -> str:
    rows = []
    for d in profile.datasets:
        dup = d.duplicates
        worst = ", ".join(f"{e(' / '.join(o.key))} ×{o.count}" for o in dup.worst[:5]) or "–"
        rows.append(
            f"<tr><td>{e(d.dataset)}</td><td>{e(', '.join(dup.key))}</td><td class='num'>{n(d.rows)}</td>"
            f"<td class='num'>{n(dup.distinct_keys)}</td>"
            f"<td class='num' data-testid='repeated-{e(d.dataset)}'>{n(dup.repeated_keys)}</td>"
            f"<td class='num' data-testid='extra-{e(d.dataset)}'>{n(dup.extra_rows)}</td>"
            f"<td class='num'>{n(dup.max_repeats)}</td><td>{worst}</td></tr>"
        )
    duplicates = (
        '<h3>Duplicates by contract key</h3><table data-testid="duplicates-table"><thead><tr><th>dataset</th>'
        "<th>key</th><th class='num'>rows</th><th class='num'>distinct keys</th>"
        "<th class='num'>keys repeated</th><th class='num'>extra rows</th>"
        "<th class='num'>most rows per key</th>"
        f"<th>worst offenders</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    consent = "".join(
        f"<li>{e(c.column)}: {n(c.records)} records, {n(c.customers)} distinct customers</li>"
        for c in profile.consent
    ) + (
        f'<li data-testid="consent-withdrawn">research consent withdrawn by a later record: '
        f"{n(profile.consent_withdrawn)} customers</li>"
        f'<li data-testid="near-miss-readings">readings whose user matches a consenting email only once '
        f"trimmed or case-folded: {n(profile.near_miss_readings)}</li>"
    )
    orphans = "".join(
        f"<li>{e(o.dataset)}: {n(o.readings)} readings, {n(o.distinct_values)} distinct {e(o.column)}</li>"
        for o in profile.orphans
    )
    nulls = "".join(
        f"<li>{e(d.dataset)}: "
        + (", ".join(f"{e(c.column)} {c.rate:.1%}" for c in d.nulls if c.nulls) or "no nulls")
        + "</li>"
        for d in profile.datasets
    )
    return (
        duplicates
        + _serial_chart(profile)
        + '<div class="columns"><div><h3>Consent</h3><ul>'
        + consent
        + "</ul></div><div><h3>Readings of no customer</h3><ul>"
        + orphans
        + "</ul></div><div><h3>Nulls</h3><ul>"
        + nulls
        + "</ul></div></div>"
    )


SERIAL_X = 300  # room for a UUID serial number as the bar's label


def _serial_chart(profile: Profile) -> str:
    s = profile.serial_numbers
    lead = (
        f'<p class="lead" data-testid="serial-summary">{n(s.distinct_serials)} distinct {e(s.column)} among '
        f"{n(s.customers)} customers; {n(s.shared_serials)} shared by more than one customer"
        + (f", up to {n(s.max_customers)}" if s.shared_serials else "")
        + ".</p>"
    )
    if not s.worst:
        return (
            f"<h3>{e(s.column)} reuse</h3>"
            + lead
            + '<svg data-testid="serial-chart" viewBox="0 0 960 40" width="960" height="40" role="img" '
            'aria-label="serial number reuse"><rect x="230" y="8" width="520" height="22" fill="#15803d" '
            'data-testid="serial-bar-none" data-customers="1"/><text x="238" y="24" class="bar-text">every '
            "serial number belongs to one customer</text></svg>"
        )
    top = max(o.count for o in s.worst)
    height = 10 + len(s.worst) * 28
    bars = []
    for index, offender in enumerate(s.worst):
        y = 6 + index * 28
        width = 500 * offender.count / top
        serial = " / ".join(offender.key)
        bars.append(
            f'<text x="{SERIAL_X - 8}" y="{y + 16}" class="serial-label" text-anchor="end">{e(serial)}</text>'
            f'<rect x="{SERIAL_X}" y="{y}" width="{width:.1f}" height="22" fill="#dc2626" '
            f'data-testid="serial-bar" data-serial="{e(serial)}" data-customers="{offender.count}">'
            f"<title>{e(serial)}: {offender.count} customers</title></rect>"
            f'<text x="{SERIAL_X + width + 8:.1f}" y="{y + 16}" class="count">'
            f"{offender.count} customers</text>"
        )
    return (
        f"<h3>{e(s.column)} reuse: customers per serial number (top {len(s.worst)})</h3>"
        + lead
        + f'<svg data-testid="serial-chart" viewBox="0 0 960 {height}" width="960" height="{height}" '
        f'role="img" aria-label="serial number reuse">{"".join(bars)}</svg>'
    )


def _tables(report: Report) -> str:
    parts = []
    for view in report.tables:
        status_class = "ok" if view.contract.startswith("passed") and not view.errors else "bad"
        columns = " ".join(
            f"<span class='col{' personal' if cls == 'personal' else ''}'>{e(name)} <i>{e(kind)}</i></span>"
            for name, kind, cls in view.columns
        )
        checks = "".join(f'<li class="bad">error: {e(line)}</li>' for line in view.errors) + "".join(
            f'<li class="warn">warning: {e(line)}</li>' for line in view.warnings
        )
        reason = f'<p class="error">{e(view.latest_reason)}</p>' if view.latest_reason else ""
        header = "".join(f"<th>{e(name)}</th>" for name, _, _ in view.columns)
        body = "".join(
            "<tr>"
            + "".join(
                '<td class="null">null</td>' if value is None else f"<td>{e(value)}</td>" for value in row
            )
            + "</tr>"
            for row in view.sample
        )
        sample = (
            f'<table class="sample" data-testid="sample-{e(view.table)}"><thead><tr>{header}</tr></thead>'
            f"<tbody>{body}</tbody></table>"
            if view.sample
            else '<p class="lead">No rows to show.</p>'
        )
        masked = (
            f'<p class="meta">masked: {e(", ".join(view.masked))}</p>' if view.masked and view.sample else ""
        )
        zone_colour = ZONE_COLOURS.get(view.zone, "#444")
        parts.append(
            f'<article class="table-view" data-testid="table-{e(view.table)}">'
            f'<h3>{e(view.table)} <span class="zone" style="background:{zone_colour}">{e(view.zone)}</span> '
            f'<span class="badge {status_class}" data-testid="contract-{e(view.table)}">'
            f"contract {e(view.contract)}</span> "
            f'<span class="rows" data-testid="rows-{e(view.table)}" data-rows="{e(view.rows)}">'
            f"{n(view.rows)} rows</span></h3>"
            f'<p class="meta">{e(view.outcome)}</p>{reason}<ul class="checks">{checks}</ul>'
            f'<p class="columns-list">{columns}</p>{masked}<div class="scroll">{sample}</div></article>'
        )
    return "".join(parts)


def _runs(runs: Sequence[RunSummary]) -> str:
    if not runs:
        return '<p class="lead">No run manifest in this lake.</p>'
    rows = []
    for r in reversed(runs):  # newest first
        status_class = "ok" if r.status == "succeeded" else "bad"
        options = ", ".join(f"{e(k)}={e(v)}" for k, v in r.options.items())
        rows.append(
            f'<tr data-testid="run-{e(r.run_id)}"><td><code>{e(r.run_id)}</code></td>'
            f'<td><span class="badge {status_class}">{e(r.status)}</span></td>'
            f"<td>{e(r.started_at or '–')}</td>"
            f'<td class="num">{"–" if r.seconds is None else f"{r.seconds:.2f}"}</td>'
            f'<td data-testid="run-counts">{e(r.counts)}</td><td>{options}</td>'
            f"<td>{e(r.error or '')}</td></tr>"
        )
    return (
        '<table data-testid="runs-table"><thead><tr><th>run</th><th>status</th><th>started (UTC)</th>'
        "<th class='num'>seconds</th><th>tables and quarantines</th>"
        "<th>options</th><th>error</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


CSS = """
:root { color-scheme: light; --ink: #0f172a; --muted: #64748b; --line: #e2e8f0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  background: #f8fafc; }
header, main { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 20px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
  margin: 16px 0; }
.meta { color: var(--muted); margin: 2px 0; }
.lead { color: #334155; margin: 4px 0 10px; }
.error { color: #b91c1c; margin: 4px 0; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.badge.ok { background: #dcfce7; color: #166534; }
.badge.bad { background: #fee2e2; color: #991b1b; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 10px;
  margin-bottom: 10px; }
.card { border: 1px solid var(--line); border-top: 4px solid; border-radius: 6px; padding: 8px 12px; }
.card-table { font-size: 12px; color: var(--muted); }
.big { font-size: 30px; font-weight: 700; font-variant-numeric: tabular-nums; }
.card-sub { font-size: 12px; color: #334155; }
svg { max-width: 100%; height: auto; display: block; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.chain-title { font-size: 15px; font-weight: 700; fill: var(--ink); }
.stage-label { font-size: 13px; fill: var(--ink); }
.serial-label { font: 11px ui-monospace, SFMono-Regular, Menlo, monospace; fill: var(--ink); }
.zone-tag { font-size: 11px; fill: var(--muted); }
.count { font-size: 14px; font-weight: 700; fill: var(--ink); }
.share { font-size: 12px; fill: #334155; }
.why { font-size: 12px; fill: #475569; }
.bar-text { font-size: 12px; fill: #fff; }
.edge { fill: none; stroke: #475569; stroke-width: 1.5; }
.node-name { font-size: 11px; font-weight: 700; fill: #fff; }
.node-rows { font-size: 11px; fill: #f1f5f9; }
.legend { color: var(--muted); font-size: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 8px; border-radius: 2px; }
table { border-collapse: collapse; font-size: 12px; margin: 6px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f1f5f9; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sample td { white-space: nowrap; }
td.null { color: #94a3b8; font-style: italic; }
.raw { white-space: pre-wrap; word-break: break-all; }
.scroll { overflow-x: auto; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 12px; }
.table-view { border-top: 1px solid var(--line); padding-top: 4px; }
.zone { color: #fff; font-size: 11px; padding: 1px 6px; border-radius: 4px; }
.rows { font-weight: 400; color: #334155; }
.col { display: inline-block; margin-right: 10px; }
.col.personal { color: #b45309; }
.checks { margin: 2px 0; padding-left: 18px; }
.checks .bad { color: #b91c1c; }
.checks .warn { color: #b45309; }
"""
