"""Landing data at any scale of the public STEDI starter set, built with Polars expressions, not Python loops.

``generate_scaled(out, scale=N, seed=S)`` writes N times the starter set's shape: 956 customers per unit of
scale, about half consenting; each active customer's phone reports 30 instants a few seconds apart with two
or three accelerometer readings per instant (about 85 readings, 81k per unit of scale), and the customer's
Step Trainer reports one reading at each of those instants (28.7k per unit). As in real uploads, some
customers were registered twice, pairs of customers share a device serial number (the website's
fulfillment bug), a few uploads were sent twice (exact duplicate records) and a few customers never used the
app. Without ``clean``, each dataset also gets the defective records the sample generator plants (junk
lines, torn records, wrong types, times in seconds, ...) at a small rate, and the file layouts of real
releases (trailing commas, CRLF, a byte order mark, ``timeStamp``, a JSON array, no final newline).

Every random choice is a splitmix64 hash of (seed, stream, row number) computed in Polars with wrapping
UInt64 arithmetic, so a seed gives the same bytes on every run and machine, and scale 100 (8M readings,
about 1 GB) takes seconds. The result counts what a correct run must report, derived from the generated
frames (per customer), not by reading the files back.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stedi_etl.contracts import datasets as dataset_names
from stedi_etl.errors import UsageError
from stedi_etl.lake.storage import is_hidden
from stedi_etl.landing.read import landing_dir
from stedi_etl.synth.oracle import expected_tables
from stedi_etl.synth.sample import (
    BASE_MS,
    DAY_MS,
    FIRST_NAMES,
    LAST_NAMES,
    REASONS,
    DatasetCounts,
    output_store,
)
from stedi_etl.wording import plural

if TYPE_CHECKING:
    import polars as pl

# The public starter set, per unit of scale.
STARTER_CUSTOMERS = 956
INSTANTS_PER_CUSTOMER = 30
INSTANT_MS = 3_000  # instants are about this far apart; the jitter below keeps them strictly increasing
MAX_SCALE = 10_000.0

# Shares of customers (or records) with each property; consent and readings per instant follow the starter.
CONSENTING = 0.5
INACTIVE = 0.03  # registered, never used the app: no readings
REREGISTERED = 0.01
DUPLICATE_CUSTOMERS = 0.005
SHARED_SERIAL = 0.02
TWO_READINGS_INSTANT = 0.16  # the rest have three; the starter averages 2.84 readings per instant
RESENT_READINGS = 0.003
RESENT_STEPS = 0.001
DEFECT_RATE = 1e-4  # defective records of each kind per good record, at least one of each

RECORDS_PER_FILE = 10_000  # as in the starter's uploads
MAX_FILES = 100  # beyond this, files grow instead of multiplying
MIN_FILES = {"customer": 2, "accelerometer": 4, "step_trainer": 3}

# splitmix64 (Steele, Lea, Flood 2014): a bijective mix of a 64-bit counter, uniform enough for test data.
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_U64 = 2**64

# (kind, reason, text template); {email}, {serial} and {base} are filled per record.
DEFECTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "customer": (
        ("junk_line", "invalid_json", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        ("no_email", "missing_required", '{{"customerName":"No Email","serialNumber":"{serial}"}}'),
        ("null_element", "not_an_object", "null"),
        (
            "date_as_text",
            "bad_value",
            '{{"email":"{email}","serialNumber":"{serial}","registrationDate":"2022-06-18T14:52:56Z"}}',
        ),
        (
            "date_in_seconds",
            "check_failed",
            '{{"email":"{email}","serialNumber":"{serial}","registrationDate":{seconds}}}',
        ),
    ),
    "accelerometer": (
        ("torn_record", "invalid_json", '{{"user":"{email}","timestamp":16555'),
        ("array_line", "not_an_object", "[1, 2]"),
        ("x_not_a_number", "bad_value", '{{"user":"{email}","timestamp":{base},"x":"abc","y":0.0,"z":1.0}}'),
        (
            "timestamp_in_seconds",
            "check_failed",
            '{{"user":"{email}","timestamp":{seconds},"x":0.0,"y":1.0,"z":0.0}}',
        ),
        ("no_user", "missing_required", '{{"timestamp":{base},"x":0.0,"y":0.0,"z":-1.0}}'),
    ),
    "step_trainer": (
        ("junk_line", "invalid_json", "ERROR 504 gateway timeout"),
        ("number_line", "not_an_object", "42"),
        ("no_serial", "missing_required", '{{"sensorReadingTime":{base},"distanceFromObject":230}}'),
        (
            "distance_not_a_number",
            "bad_value",
            '{{"sensorReadingTime":{base},"serialNumber":"{serial}","distanceFromObject":"n/a"}}',
        ),
        (
            "negative_distance",
            "check_failed",
            '{{"sensorReadingTime":{base},"serialNumber":"{serial}","distanceFromObject":-1}}',
        ),
    ),
}


@dataclass(frozen=True)
class ScaledResult:
    """The files written and what a correct run over them must report."""

    out: str
    seed: int
    scale: float
    clean: bool
    files: tuple[str, ...]
    bytes: int
    datasets: dict[str, DatasetCounts]
    people: dict[str, int]
    expected_tables: dict[str, int]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "seed": self.seed,
            "scale": self.scale,
            "clean": self.clean,
            "files": list(self.files),
            "bytes": self.bytes,
            "datasets": {name: counts.to_dict() for name, counts in self.datasets.items()},
            "people": dict(self.people),
            "expected_tables": dict(self.expected_tables),
            "seconds": self.seconds,
        }

    def summary(self) -> str:
        kind = "clean" if self.clean else "with defects"
        lines = [
            f"wrote {plural(len(self.files), 'file')} ({self.bytes / 1e6:.1f} MB) of STEDI landing data at "
            "scale "
            f"{self.scale:g}, {kind}, under {self.out} (seed {self.seed}, {self.seconds:.1f}s)"
        ]
        lines.extend(counts.line(10) for counts in self.datasets.values())
        p = self.people
        lines.append(
            f"people: {p['customers']} customers, {p['consenting']} consenting, {p['with_readings']} with "
            f"readings, {p['reregistered']} registered twice, {p['sharing_a_serial']} sharing a serial number"
        )
        lines.append("expected tables: " + ", ".join(f"{t} {n}" for t, n in self.expected_tables.items()))
        return "\n".join(lines)


# --- randomness ---------------------------------------------------------------------------------------------


def _random(key: pl.Expr, seed: int, stream: int) -> pl.Expr:
    """A uniform UInt64 per row: splitmix64 of the row's ``key`` in the (seed, stream) sequence."""
    import polars as pl

    def u64(value: int) -> pl.Expr:
        return pl.lit(value % _U64, dtype=pl.UInt64)

    z = key.cast(pl.UInt64) * u64(_GOLDEN) + u64((seed % _U64) * _MIX1 + stream * _MIX2)
    z = (z.xor(z // u64(2**30))) * u64(_MIX1)
    z = (z.xor(z // u64(2**27))) * u64(_MIX2)
    return z.xor(z // u64(2**31))


def _below(key: pl.Expr, seed: int, stream: int, bound: int) -> pl.Expr:
    """A uniform integer in [0, bound) as Int64."""
    import polars as pl

    return (_random(key, seed, stream) % pl.lit(bound, dtype=pl.UInt64)).cast(pl.Int64)


def _chance(key: pl.Expr, seed: int, stream: int, probability: float) -> pl.Expr:
    import polars as pl

    top = pl.lit(2**53, dtype=pl.UInt64)
    return (_random(key, seed, stream) // pl.lit(2**11, dtype=pl.UInt64)) < top * probability


# --- the frames ---------------------------------------------------------------------------------------------


def _customers(count: int, seed: int) -> pl.DataFrame:
    """One row per customer: the landing columns plus what the readings need (active, start, parity)."""
    import polars as pl

    i = pl.col("i")
    firsts = pl.Series(FIRST_NAMES)
    lasts = pl.Series(LAST_NAMES)
    base = pl.DataFrame({"i": pl.int_range(count, dtype=pl.Int64, eager=True)})
    frame = base.with_columns(
        first=firsts.gather(base.select(_below(i, seed, 1, len(FIRST_NAMES))).to_series()),
        last=lasts.gather(base.select(_below(i, seed, 2, len(LAST_NAMES))).to_series()),
        registrationDate=pl.lit(BASE_MS) + i * 30_000 + _below(i, seed, 3, 30_000),
        year=pl.lit(1900) + _below(i, seed, 4, 106),
        consenting=_chance(i, seed, 5, CONSENTING),
        active=~_chance(i, seed, 6, INACTIVE),
        public=_chance(i, seed, 7, 0.6),
        friends=_chance(i, seed, 8, 0.6),
        shares_raw=_chance(i, seed, 9, SHARED_SERIAL),
        reregistered=_chance(i, seed, 10, REREGISTERED),
        duplicated=_chance(i, seed, 11, DUPLICATE_CUSTOMERS),
        serial_high=_random(i, seed, 12),
        serial_low=_random(i, seed, 13),
        start_half=_below(i, seed, 14, 1_800_000),
    )
    # UUID-shaped serials like the devices'; a Python pass over customers only (a thousandth of the rows).
    serials = [
        f"{h >> 32:08x}-{h >> 16 & 0xFFFF:04x}-4{h & 0xFFF:03x}-{8 | low >> 62:x}{low >> 48 & 0xFFF:03x}-"
        f"{low & 0xFFFFFFFFFFFF:012x}"
        for h, low in zip(frame["serial_high"], frame["serial_low"], strict=True)
    ]
    # A customer shares the previous customer's device unless that one shares too: sharing comes in pairs
    # of neighbours, which the readings' parity (below) keeps apart in time.
    shares = pl.col("shares_raw") & ~pl.col("shares_raw").shift(1, fill_value=True)
    registered = pl.col("registrationDate")
    return (
        frame.with_columns(own_serial=pl.Series(serials))
        .with_columns(
            sharing=shares,
            serialNumber=pl.when(shares).then(pl.col("own_serial").shift(1)).otherwise(pl.col("own_serial")),
            customerName=pl.concat_str("first", pl.lit(" "), "last"),
            email=pl.concat_str("first", pl.lit("."), "last", i.cast(pl.String), pl.lit("@test.com")),
            phone=pl.concat_str(pl.lit("801555"), _below(i, seed, 15, 10_000).cast(pl.String).str.zfill(4)),
            birthDay=pl.concat_str(pl.col("year").cast(pl.String), pl.lit("-01-01")),
            lastUpdateDate=registered,
            shareWithResearchAsOfDate=pl.when("consenting").then(registered),
            shareWithPublicAsOfDate=pl.when("public").then(registered),
            shareWithFriendsAsOfDate=pl.when("friends").then(registered),
            # Readings start up to an hour after registration, on even milliseconds; the customer's parity
            # is added to every instant, so neighbours sharing a device never report the same instant.
            start=(registered + 60_000) // 2 + pl.col("start_half"),
        )
        .with_columns(paired=pl.col("sharing") | pl.col("sharing").shift(-1, fill_value=False))
    )


def _customer_records(customers: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """The customer landing rows: every customer, a second record for re-registered ones, exact copies."""
    import polars as pl

    again = customers.filter("reregistered").with_columns(
        lastUpdateDate=pl.col("lastUpdateDate") + DAY_MS,
    )
    copies = customers.filter("duplicated")
    return pl.concat([customers, again, copies]).select(columns)


def _instants(customers: pl.DataFrame, seed: int) -> pl.DataFrame:
    """One row per (active customer, instant): the time, the device and how many readings it has."""
    import polars as pl

    active = customers.filter("active").select("i", "email", "serialNumber", "start")
    n = active.height * INSTANTS_PER_CUSTOMER
    row = pl.int_range(n, dtype=pl.Int64).alias("row")
    frame = pl.select(row).with_columns(
        owner=pl.col("row") // INSTANTS_PER_CUSTOMER, j=pl.col("row") % INSTANTS_PER_CUSTOMER
    )
    owner = frame["owner"]
    return frame.with_columns(
        i=active["i"].gather(owner),
        email=active["email"].gather(owner),
        serialNumber=active["serialNumber"].gather(owner),
        start=active["start"].gather(owner),
    ).with_columns(
        timestamp=(pl.col("start") + pl.col("j") * (INSTANT_MS // 2) + _below(pl.col("row"), seed, 20, 1_000))
        * 2
        + pl.col("i") % 2,
        readings=pl.when(_chance(pl.col("row"), seed, 21, TWO_READINGS_INSTANT)).then(2).otherwise(3),
        distanceFromObject=pl.lit(200) + _below(pl.col("row"), seed, 22, 71),
        first_code=_below(pl.col("row"), seed, 23, 27),
        code_step=pl.lit(1) + _below(pl.col("row"), seed, 24, 26),
    )


def _readings(instants: pl.DataFrame) -> pl.DataFrame:
    """Two or three accelerometer readings per instant, each a distinct axis combination in {-1, 0, 1}^3."""
    import polars as pl

    exploded = instants.select(
        "email", "timestamp", "first_code", "code_step", r=pl.int_ranges(0, pl.col("readings"))
    ).explode("r")
    code = (pl.col("first_code") + pl.col("r") * pl.col("code_step")) % 27
    return exploded.select(
        user="email",
        timestamp="timestamp",
        x=(code // 9 - 1).cast(pl.Float64),
        y=(code // 3 % 3 - 1).cast(pl.Float64),
        z=(code % 3 - 1).cast(pl.Float64),
    )


# --- files --------------------------------------------------------------------------------------------------


def _file_count(dataset: str, records: int) -> int:
    return max(MIN_FILES[dataset], min(MAX_FILES, math.ceil(records / RECORDS_PER_FILE)))


def _name(dataset: str, index: int) -> str:
    return f"{dataset}-{BASE_MS + index * 1_000}.json"


def _defect_lines(
    dataset: str, records: int, seed: int, email: str, serial: str
) -> list[tuple[str, str, str]]:
    """(kind, reason, text) of every defective record planted in a dataset."""
    each = max(1, round(records * DEFECT_RATE))
    fill = {"email": email, "serial": serial, "base": BASE_MS + seed % 1_000, "seconds": BASE_MS // 1000}
    return [
        (kind, reason, text.format(**fill)) for kind, reason, text in DEFECTS[dataset] for _ in range(each)
    ]


def _plant(data: bytes, lines: list[str], positions: list[int]) -> bytes:
    """Insert each line after the first line break at or after its byte position (past the first record)."""
    if not lines:
        return data
    first_break = data.find(b"\n") + 1
    pieces = []
    taken = 0
    for line, wanted in sorted(zip(lines, positions, strict=True), key=lambda pair: pair[1]):
        at = data.find(b"\n", max(wanted, first_break, taken))
        at = len(data) if at < 0 else at + 1
        pieces += [data[taken:at], line.encode() + b"\n"]
        taken = at
    pieces.append(data[taken:])
    return b"".join(pieces)


def _render(
    frame: pl.DataFrame, quirks: tuple[str, ...], defects: list[str], seed: int, stream: int
) -> bytes:
    """A file's bytes: NDJSON (or a JSON array) from Polars, then defects planted, then layout quirks."""
    import polars as pl

    buffer = io.BytesIO()
    if "timeStamp_key" in quirks:
        frame = frame.rename({"timestamp": "timeStamp"})
    if "json_array" in quirks:
        frame.write_json(buffer)
        return buffer.getvalue()
    frame.write_ndjson(buffer)
    data = buffer.getvalue()
    if defects:
        keys = pl.select(pl.int_range(len(defects), dtype=pl.Int64).alias("k"))
        offsets = keys.select(_below(pl.col("k"), seed, stream, max(1, len(data)))).to_series().to_list()
        data = _plant(data, defects, offsets)
    if "trailing_commas" in quirks:
        data = data.replace(b"}\n", b"},\n")
    if "crlf_line_endings" in quirks:
        data = data.replace(b"\n", b"\r\n")
    if "no_final_newline" in quirks:
        data = data.rstrip(b"\r\n")
    if "utf8_bom" in quirks:
        data = b"\xef\xbb\xbf" + data
    return data


def _quirks(dataset: str, index: int, files: int) -> tuple[str, ...]:
    """The layouts of real releases, each on one file of a dataset written with defects."""
    if dataset == "customer" and index == files - 1:
        return ("json_array",)
    if dataset == "accelerometer":
        return {
            1: ("crlf_line_endings", "timeStamp_key"),
            2: ("utf8_bom",),
            files - 1: ("no_final_newline",),
        }.get(index, ())
    if dataset == "step_trainer" and index == 0:
        return ("trailing_commas", "no_final_newline")
    return ()


# --- the entry point ----------------------------------------------------------------------------------------


def generate_scaled(
    out: str,
    *,
    scale: float,
    seed: int = 0,
    clean: bool = False,
    endpoint_url: str | None = None,
    force: bool = False,
) -> ScaledResult:
    """Write landing data ``scale`` times the public starter set under ``out`` (a folder or s3://...); a
    folder that already holds files is refused unless ``force``."""
    import polars as pl

    from stedi_etl.contracts import load_contract

    if not (math.isfinite(scale) and 0 < scale <= MAX_SCALE):
        raise UsageError(f"--scale must be a number above 0 and at most {MAX_SCALE:g}, not {scale}")
    store = output_store(out, force=force, endpoint_url=endpoint_url)
    started = time.perf_counter()
    count = max(1, round(STARTER_CUSTOMERS * scale))
    customers = _customers(count, seed)
    instants = _instants(customers, seed)
    readings = _readings(instants)

    columns = {d: list(load_contract(f"{d}_landing").column_names) for d in dataset_names()}
    steps = instants.select(
        pl.col("timestamp").alias("sensorReadingTime"), "serialNumber", "distanceFromObject"
    )
    row_key = pl.int_range(pl.len(), dtype=pl.Int64)
    frames = {
        "customer": _customer_records(customers, columns["customer"]),
        # A re-sent upload: the same readings again, byte for byte, in later files.
        "accelerometer": pl.concat(
            [readings, readings.filter(_chance(row_key, seed, 30, RESENT_READINGS))]
        ).select(columns["accelerometer"]),
        "step_trainer": pl.concat([steps, steps.filter(_chance(row_key, seed, 31, RESENT_STEPS))]).select(
            columns["step_trainer"]
        ),
    }
    duplicates = {
        "customer": int(customers["duplicated"].sum()),
        "accelerometer": frames["accelerometer"].height - readings.height,
        "step_trainer": frames["step_trainer"].height - steps.height,
    }

    plan = {d: _file_count(d, frame.height) for d, frame in frames.items()}
    for dataset, files in plan.items():
        directory = landing_dir(store, dataset)
        ours = {f"{directory}/{_name(dataset, index)}" for index in range(files)}
        listed = [p for p in store.files(directory) if not is_hidden(p[len(directory) :])]
        strangers = sorted(set(listed) - ours)
        if strangers:
            raise UsageError(
                f"{store.url(directory)} holds files generate did not write: {store.url(strangers[0])}"
            )

    someone = customers.row(0, named=True)
    counts: dict[str, DatasetCounts] = {}
    written: list[str] = []
    total_bytes = 0
    for stream, (dataset, frame) in enumerate(frames.items(), start=40):
        files = plan[dataset]
        defects = (
            []
            if clean
            else _defect_lines(dataset, frame.height, seed, someone["email"], someone["serialNumber"])
        )
        # Spread the defects over the files that are NDJSON (a JSON array has other resync rules).
        ndjson = [index for index in range(files) if "json_array" not in _quirks(dataset, index, files)]
        by_file: dict[int, list[str]] = {}
        for number, (_kind, _reason, text) in enumerate(defects):
            by_file.setdefault(ndjson[number % len(ndjson)], []).append(text)
        size = math.ceil(frame.height / files)
        uris = []
        for index in range(files):
            quirks = () if clean else _quirks(dataset, index, files)
            data = _render(
                frame.slice(index * size, size), quirks, by_file.get(index, []), seed, stream * 1_000 + index
            )
            path = f"{landing_dir(store, dataset)}/{_name(dataset, index)}"
            store.write_bytes(path, data)
            total_bytes += len(data)
            uris.append(store.url(path))
        reasons = {r: sum(1 for _k, reason, _t in defects if reason == r) for r in REASONS}
        quarantined = {r: n for r, n in reasons.items() if n}
        counts[dataset] = DatasetCounts(
            dataset, tuple(uris), frame.height + len(defects), frame.height, quarantined, duplicates[dataset]
        )
        written.extend(uris)

    people = {
        "customers": count,
        "consenting": int(customers["consenting"].sum()),
        "with_readings": int(customers["active"].sum()),
        "reregistered": int(customers["reregistered"].sum()),
        "sharing_a_serial": int(customers["paired"].sum()),
    }
    return ScaledResult(
        out=store.url(store.root),
        seed=seed,
        scale=scale,
        clean=clean,
        files=tuple(written),
        bytes=total_bytes,
        datasets=counts,
        people=people,
        expected_tables=expected_tables(*frames.values()),
        seconds=round(time.perf_counter() - started, 3),
    )
