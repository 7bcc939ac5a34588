"""Sample STEDI landing data with the defects real uploads have, each in a known and counted place.

``generate(out, seed=N)`` writes customer, accelerometer and step trainer landing files shaped like the
public STEDI releases (First.Last@test.com emails, UUID serial numbers, epoch-millisecond times, several
accelerometer readings per instant, step trainer readings at the owner's accelerometer instants) and plants
the defects the landing reader must survive. The result says what a correct reader and pipeline must
report: records per dataset, quarantined records by reason, exact duplicates, and the row count of every
table, all derived from what was generated rather than from reading it back.

Everything comes from ``random.Random(seed)`` and a fixed base time, so a seed always gives the same bytes.
Every defective record is an extra record: no good record is lost to a defect, which keeps the expected
tables a function of the good records alone.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, get_args

from stedi_etl.contracts import datasets as dataset_names
from stedi_etl.contracts import load_contract
from stedi_etl.errors import UsageError
from stedi_etl.lake.storage import Store, is_hidden, open_store
from stedi_etl.landing.read import Reason, landing_contract, landing_dir
from stedi_etl.synth.oracle import expected_tables, frame_of
from stedi_etl.wording import plural

# 2022-06-18, when the STEDI releases were recorded; a constant so no output depends on the clock.
BASE_MS = 1_655_564_000_000
DAY_MS = 86_400_000

REASONS: tuple[str, ...] = get_args(Reason)

# A customer row in the contract's column order, so the generator never restates the columns.
CUSTOMER_KEYS = load_contract("customer_landing").column_names
EMAIL, SERIAL, RESEARCH = (
    CUSTOMER_KEYS.index(k) for k in ("email", "serialNumber", "shareWithResearchAsOfDate")
)

FIRST_NAMES = (
    "Santosh", "Ben", "Craig", "Ashley", "Frank", "Trevor", "Christina", "Larry", "Angie", "Sarah",
    "Jacob", "Lyn", "Spencer", "Danny", "Chris", "Eric", "Bobby", "Liz", "Steron", "Jeff", "Kathy",
    "Mohammad", "Marcus", "Neeraj", "Alex", "Senthil", "Rick", "Edward", "Gail", "John", "Jane", "Manoj",
    "Max", "Holly", "Sean", "Anna", "David", "Suresh", "Ian", "Raul", "Priya", "Linda", "Olivia", "Omar",
    "Rosa", "Tomas", "Wei", "Yuki", "Zoe", "Kofi",
)  # fmt: skip
LAST_NAMES = (
    "Clayton", "Khatib", "Wu", "Staples", "Doshi", "Lincoln", "Mitra", "Davis", "Hansen", "Jackson",
    "Lewis", "Aristotle", "Ahmed", "Huang", "Smith", "Anandh", "Abram", "Habschied", "Meyer", "Stark",
    "Gonzales", "Taylor", "Baker", "Lopez", "Bell", "Sanchez", "Kumar", "Li", "Jones", "Hall", "Young",
    "Wang", "Chen", "Mendoza", "Patel", "Rossi", "Novak", "Okafor", "Silva", "Tanaka", "Fischer",
    "Moreau", "Nilsen", "Ivanova", "Haddad", "Kowalski", "Murphy", "Nguyen", "Park", "Quinn",
)  # fmt: skip


@dataclass(frozen=True)
class Defect:
    """One planted defect: a record (with its line and record number) or a property of a whole file."""

    dataset: str
    file: str
    kind: str
    line: int | None = None
    record: int | None = None
    reason: str | None = None  # the quarantine reason it must get; None: it must still become a row

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "file": self.file,
            "kind": self.kind,
            "line": self.line,
            "record": self.record,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DatasetCounts:
    """What a reader of one dataset must account for."""

    dataset: str
    files: tuple[str, ...]
    records: int  # every record attempt, good or broken: rows + quarantined
    rows: int
    quarantined: dict[str, int]  # reason -> records
    duplicates: int  # exact copies of an earlier good record; they are rows, not quarantined

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def line(self, width: int) -> str:
        """One summary line: files, records, rows, exact duplicates and what goes to the quarantine."""
        reasons = ", ".join(f"{n} {r}" for r, n in self.quarantined.items() if n)
        return (
            f"  {self.dataset:<14}{plural(len(self.files), 'file'):>{width}} "
            f"{self.records:>{width}} records: {self.rows} rows ({self.duplicates} exact duplicates), "
            f"{self.quarantined_total} to quarantine" + (f" ({reasons})" if reasons else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "records": self.records,
            "rows": self.rows,
            "quarantined": dict(self.quarantined),
            "quarantined_total": self.quarantined_total,
            "duplicates": self.duplicates,
        }


@dataclass(frozen=True)
class GenerateResult:
    """The files written and every number a correct run over them must reproduce."""

    out: str
    seed: int
    customers: int
    readings_per_customer: int
    files: tuple[str, ...]
    datasets: dict[str, DatasetCounts]
    people: dict[str, int]
    expected_tables: dict[str, int]
    defects: tuple[Defect, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "seed": self.seed,
            "customers": self.customers,
            "readings_per_customer": self.readings_per_customer,
            "files": list(self.files),
            "datasets": {name: counts.to_dict() for name, counts in self.datasets.items()},
            "people": dict(self.people),
            "expected_tables": dict(self.expected_tables),
            "defects": [d.to_dict() for d in self.defects],
        }

    def summary(self) -> str:
        """A short text: files, records and defects per dataset, and the table sizes to expect."""
        wrote = plural(len(self.files), "file")
        lines = [f"wrote {wrote} of STEDI landing data under {self.out} (seed {self.seed})"]
        lines.extend(counts.line(8) for counts in self.datasets.values())
        lines.append("defects:")
        # One line per file and kind: a re-sent upload is twenty duplicates, not twenty lines of output.
        grouped: dict[tuple[str, str], list[Defect]] = {}
        for d in self.defects:
            grouped.setdefault((d.file, d.kind), []).append(d)
        for (file, kind), found in grouped.items():
            text = f"  {file.rsplit('/', 1)[-1]}: {kind}"
            at = [str(d.line) for d in found if d.line is not None]
            if len(found) > 1:
                text += f" x{len(found)}"
            if at:
                shown = ", ".join(at[:4]) + (", ..." if len(at) > 4 else "")
                text += f" (line{'s' * (len(at) > 1)} {shown})"
            if found[0].reason:
                text += f" -> {found[0].reason}"
            lines.append(text)
        p = self.people
        lines.append(
            f"people: {p['customers']} customers, {p['consenting']} consenting "
            f"({p['consent_absent']} without the key, {p['consent_null']} null), {p['with_readings']} with "
            f"readings, {p['non_customer_users']} non-customer phones, {p['unknown_devices']} unknown devices"
        )
        lines.append("expected tables: " + ", ".join(f"{t} {n}" for t, n in self.expected_tables.items()))
        return "\n".join(lines)


# --- files --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One record attempt as written: its text, and its typed row when it must become one."""

    text: str
    row: tuple[Any, ...] | None = None
    kind: str | None = None  # a defect or quirk worth listing; None for an ordinary record
    reason: str | None = None


@dataclass
class _File:
    """One landing file: its records in order and how they are laid out in bytes."""

    name: str
    entries: list[_Entry] = field(default_factory=list)
    array: bool = False  # one JSON array instead of one record per line
    newline: str = "\n"
    trailing_commas: bool = False
    bom: bool = False
    final_newline: bool = True
    quirks: tuple[str, ...] = ()

    def render(self) -> bytes:
        texts = [e.text for e in self.entries]
        nl = self.newline
        if self.array:
            body = "[" + nl + ("," + nl).join(texts) + nl + "]" + (nl if self.final_newline else "")
        else:
            body = nl.join(t + "," if self.trailing_commas else t for t in texts)
            if texts and self.final_newline:
                body += nl
        data = body.encode("utf-8")
        return b"\xef\xbb\xbf" + data if self.bom else data

    def line_of(self, index: int) -> int:
        # In an array the opening bracket has a line of its own.
        return index + 2 if self.array else index + 1

    def insert(self, rng: random.Random, entry: _Entry, *, not_last: bool = False) -> None:
        """Put ``entry`` at a random place after the first record (a first ``[`` would read as an array).

        A broken record is only ever followed by an object: a reader resynchronises on the next "{", so
        junk right after junk could count as one record, and the expected counts would depend on that rule.
        """
        high = len(self.entries) - (1 if not_last and len(self.entries) > 1 else 0)

        def fits(at: int) -> bool:
            before = self.entries[at - 1] if at > 0 else None
            after = self.entries[at] if at < len(self.entries) else None
            if entry.reason == "invalid_json" and after is not None and not after.text.startswith("{"):
                return False
            return not (before and before.reason == "invalid_json" and not entry.text.startswith("{"))

        places = [at for at in range(min(1, high), high + 1) if fits(at)] or [len(self.entries)]
        self.entries.insert(rng.choice(places), entry)


def _compact(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


# --- people and readings ------------------------------------------------------------------------------------


@dataclass
class _Customer:
    """A customer as the website exports them, with the readings of their phone."""

    record: dict[str, Any]
    text: str
    active: bool
    readings: list[dict[str, Any]] = field(default_factory=list)
    instants: list[int] = field(default_factory=list)

    @property
    def email(self) -> str:
        return str(self.record["email"])

    @property
    def serial(self) -> str:
        return str(self.record["serialNumber"])

    @property
    def consenting(self) -> bool:
        return self.record.get("shareWithResearchAsOfDate") is not None

    def row(self) -> tuple[Any, ...]:
        return tuple(self.record.get(key) for key in CUSTOMER_KEYS)


def _serial(rng: random.Random) -> str:
    # UUID-shaped like the devices' serials, but from the seeded generator (uuid4 would differ per run).
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class _Names:
    """First.Last@test.com emails, unique across everyone generated (customers and non-customers)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.taken: set[str] = set()

    def draw(self) -> tuple[str, str]:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        email, suffix = f"{first}.{last}@test.com", 1
        while email in self.taken:
            suffix += 1
            email = f"{first}.{last}{suffix}@test.com"
        self.taken.add(email)
        return f"{first} {last}", email


def _reading(user: str, timestamp: int, xyz: tuple[float, float, float]) -> dict[str, Any]:
    return {"user": user, "timestamp": timestamp, "x": xyz[0], "y": xyz[1], "z": xyz[2]}


def _step(time: int, serial: str, distance: Any) -> dict[str, Any]:
    return {"sensorReadingTime": time, "serialNumber": serial, "distanceFromObject": distance}


def _readings_of(rng: random.Random, user: str, start: int, count: int) -> tuple[list[dict], list[int]]:
    """``count`` readings at instants a few seconds apart, two to four per instant, none repeated."""
    readings: list[dict[str, Any]] = []
    instants: list[int] = []
    moment = start
    while len(readings) < count:
        per_instant = min(count - len(readings), rng.randint(2, 4))
        # Distinct axes within an instant, so the only exact duplicates are the planted ones.
        for code in rng.sample(range(27), per_instant):
            xyz = (float(code // 9 - 1), float(code // 3 % 3 - 1), float(code % 3 - 1))
            readings.append(_reading(user, moment, xyz))
        instants.append(moment)
        moment += rng.randrange(2_000, 4_000)
    return readings, instants


def _make_customers(rng: random.Random, names: _Names, count: int, per_customer: int) -> list[_Customer]:
    customers = []
    registered = BASE_MS
    for _ in range(count):
        registered += rng.randrange(1_000, 60_000)
        name, email = names.draw()
        year = rng.randrange(1930, 2006)
        if rng.random() < 0.02:
            year = rng.randrange(900, 1000)  # the website stores unpadded years ("993-01-01")
        record: dict[str, Any] = {
            "customerName": name,
            "email": email,
            "phone": f"801555{rng.randrange(10_000):04d}",
            "birthDay": f"{year}-01-01",
            "serialNumber": _serial(rng),
            "registrationDate": registered,
            "lastUpdateDate": registered,
        }
        consent = rng.random()
        if consent < 0.5:
            record["shareWithResearchAsOfDate"] = registered
        elif consent < 0.75:
            record["shareWithResearchAsOfDate"] = None  # sent as an explicit null
        # else: the key is absent, as in most non-consenting records of the starter data
        for key in ("shareWithPublicAsOfDate", "shareWithFriendsAsOfDate"):
            if rng.random() < 0.6:
                record[key] = registered
        customer = _Customer(record, "", active=rng.random() < 0.6)
        if customer.active:
            start = registered + rng.randrange(60_000, 3_600_000)
            customer.readings, customer.instants = _readings_of(rng, email, start, per_customer)
            if customer.consenting and rng.random() < 0.15:
                # Consent given partway through: --consent-cutoff drops the readings before it.
                consent_at = customer.instants[len(customer.instants) // 2]
                customer.record["shareWithResearchAsOfDate"] = consent_at
                customer.record["lastUpdateDate"] = consent_at
        customers.append(customer)
    _share_an_instant(rng, customers)
    return customers


def _share_an_instant(rng: random.Random, customers: list[_Customer]) -> None:
    """Move one consenting customer's last instant onto another's, so two phones report the same instant.

    That is where the rubric's timestamp-only join and the same-customer join part ways; without it the
    --ml-join option would change nothing on the sample.
    """
    consenting = [c for c in customers if c.active and c.consenting]
    if len(consenting) < 2:
        return
    first, second = rng.sample(consenting, 2)
    shared = rng.choice(first.instants)
    if shared in second.instants:
        return
    moved = second.instants[-1]
    for reading in second.readings:
        if reading["timestamp"] == moved:
            reading["timestamp"] = shared
    second.instants[-1] = shared


def _customer_text(record: dict[str, Any], numeric_strings: bool, integer_phone: bool) -> str:
    shown = dict(record)
    if numeric_strings:
        for key in ("registrationDate", "lastUpdateDate"):
            shown[key] = str(shown[key])
    if integer_phone:
        shown["phone"] = int(shown["phone"])
    return json.dumps(shown)


def _reading_text(reading: dict[str, Any], *, time_key: str = "timestamp", numeric: bool = False) -> str:
    shown = {"user": reading["user"], time_key: reading["timestamp"]}
    shown.update(x=reading["x"], y=reading["y"], z=reading["z"])
    if numeric:
        shown[time_key] = str(shown[time_key])
        shown["x"] = str(shown["x"])
    return _compact(shown)


def _reading_row(reading: dict[str, Any]) -> tuple[Any, ...]:
    return (reading["user"], reading["timestamp"], reading["x"], reading["y"], reading["z"])


def _step_row(step: dict[str, Any]) -> tuple[Any, ...]:
    return (step["sensorReadingTime"], step["serialNumber"], step["distanceFromObject"])


def _thirds(items: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    a, b = (len(items) + 2) // 3, (2 * len(items) + 2) // 3
    return items[:a], items[a:b], items[b:]


# --- the three datasets -------------------------------------------------------------------------------------


def _customer_files(rng: random.Random, names: _Names, customers: list[_Customer]) -> list[_File]:
    count = len(customers)
    plain = _File("customer-1655564000000.json", final_newline=False, quirks=("no_final_newline",))
    array = _File("customer-1655564100000.json", array=True, quirks=("json_array",))
    empty = _File("customer-1655564200000.json", quirks=("empty_file",))
    half = (count + 1) // 2
    for index, customer in enumerate(customers):
        numeric = index < half and rng.random() < 0.1
        integer_phone = index < half and not numeric and rng.random() < 0.03
        customer.text = _customer_text(customer.record, numeric, integer_phone)
        kind = "numeric_strings" if numeric else "phone_as_number" if integer_phone else None
        (plain if index < half else array).entries.append(_Entry(customer.text, customer.row(), kind))

    # The website re-registers customers: same email and device, a later update, a second record.
    candidates = [c for c in customers if c.consenting and c.active] or customers
    for customer in rng.sample(candidates, min(len(candidates), max(1, count // 150))):
        again = dict(customer.record, lastUpdateDate=int(customer.record["lastUpdateDate"]) + DAY_MS)
        array.insert(
            rng, _Entry(json.dumps(again), tuple(again.get(k) for k in CUSTOMER_KEYS), "reregistered")
        )
    for customer in rng.sample(customers, min(count, max(1, count // 50))):
        target = rng.choice((plain, array))
        target.insert(rng, _Entry(customer.text, customer.row(), "duplicate"))

    def broken(**changes: Any) -> dict[str, Any]:
        name, email = names.draw()
        record = {
            "customerName": name,
            "email": email,
            "phone": "8015551212",
            "birthDay": "1980-01-01",
            "serialNumber": _serial(rng),
            "registrationDate": BASE_MS,
            "lastUpdateDate": BASE_MS,
            "shareWithResearchAsOfDate": BASE_MS,
        }
        record.update(changes)
        return {k: v for k, v in record.items() if v is not _ABSENT}

    plain.insert(
        rng, _Entry("<html><body><h1>502 Bad Gateway</h1></body></html>", None, "junk_line", "invalid_json")
    )
    plain.insert(rng, _Entry(json.dumps(broken(email=_ABSENT)), None, "no_email", "missing_required"))
    array.insert(rng, _Entry("null", None, "null_element", "not_an_object"))
    bad_date = json.dumps(broken(registrationDate="2022-06-18T14:52:56Z"))
    array.insert(rng, _Entry(bad_date, None, "date_as_text", "bad_value"))
    seconds = json.dumps(broken(registrationDate=BASE_MS // 1000))
    array.insert(rng, _Entry(seconds, None, "date_in_seconds", "check_failed"))
    return [plain, array, empty]


_ABSENT = object()  # marks a key a broken record leaves out


def _accelerometer_files(
    rng: random.Random, names: _Names, customers: list[_Customer], per_customer: int
) -> tuple[list[_File], int]:
    files = [
        _File("accelerometer-1655564000000.json"),
        _File(
            "accelerometer-1655564100000.json",
            newline="\r\n",
            quirks=("crlf_line_endings", "timeStamp_key"),
        ),
        _File("accelerometer-1655564200000.json", bom=True, quirks=("utf8_bom",)),
        _File("accelerometer-1655564300000.json", final_newline=False, quirks=("no_final_newline",)),
    ]
    plain, crlf, bom, resent = files
    time_key = {id(crlf): "timeStamp"}

    def add(target: _File, reading: dict[str, Any]) -> None:
        numeric = target is bom and rng.random() < 0.1
        text = _reading_text(reading, time_key=time_key.get(id(target), "timestamp"), numeric=numeric)
        target.entries.append(_Entry(text, _reading_row(reading), "numeric_strings" if numeric else None))

    # Phones of people with no customer record open each file, so no file starts with a planted defect.
    non_customers = []
    for target in (plain, crlf, bom):
        _name, email = names.draw()
        readings, _instants = _readings_of(
            rng, email, BASE_MS + rng.randrange(DAY_MS), max(2, per_customer // 2)
        )
        non_customers.append(readings)
        for reading in readings:
            add(target, reading)
    active = [c for c in customers if c.active]
    for target, group in zip((plain, crlf, bom), _thirds(active), strict=True):
        for customer in group:
            for reading in customer.readings:
                add(target, reading)

    # An upload sent twice: one phone's readings arrive again, byte for byte.
    sources = [c.readings for c in active if c.consenting] or non_customers
    for reading in rng.choice(sources):
        resent.entries.append(_Entry(_reading_text(reading), _reading_row(reading), "duplicate"))

    someone = customers[0].email
    torn = _reading_text(_reading(someone, BASE_MS + 1234, (1.0, 0.0, -1.0)), time_key="timeStamp")
    crlf.insert(
        rng, _Entry(torn[: torn.index("Stamp") + 13], None, "torn_record", "invalid_json"), not_last=True
    )
    bom.insert(rng, _Entry("[1, 2]", None, "array_line", "not_an_object"))
    wrong = _compact({"user": someone, "timestamp": BASE_MS + 2345, "x": "abc", "y": 0.0, "z": 1.0})
    bom.insert(rng, _Entry(wrong, None, "x_not_a_number", "bad_value"))
    seconds = _reading_text(_reading(someone, BASE_MS // 1000, (0.0, 1.0, 0.0)))
    bom.insert(rng, _Entry(seconds, None, "timestamp_in_seconds", "check_failed"))
    no_user = _compact({"timestamp": BASE_MS + 3456, "x": 0.0, "y": 0.0, "z": -1.0})
    resent.insert(rng, _Entry(no_user, None, "no_user", "missing_required"))
    return files, len(non_customers)


def _step_files(rng: random.Random, customers: list[_Customer]) -> tuple[list[_File], int]:
    files = [
        _File(
            "step_trainer-1655564000000.json",
            trailing_commas=True,
            final_newline=False,
            quirks=("trailing_commas", "no_final_newline"),
        ),
        _File("step_trainer-1655564100000.json"),
        _File("step_trainer-1655564200000.json"),
    ]
    commas, mixed, other = files

    def add(target: _File, step: dict[str, Any], kind: str | None = None) -> None:
        numeric = target is mixed and kind is None and rng.random() < 0.1
        shown = dict(step, distanceFromObject=str(step["distanceFromObject"])) if numeric else step
        target.entries.append(
            _Entry(_compact(shown), _step_row(step), "numeric_strings" if numeric else kind)
        )

    # Devices nobody registered open the last file.
    unknown = [_serial(rng) for _ in range(2)]
    for serial in unknown:
        moment = BASE_MS + rng.randrange(DAY_MS)
        for _ in range(3):
            add(other, _step(moment, serial, rng.randrange(200, 271)))
            moment += rng.randrange(2_000, 4_000)

    active = [c for c in customers if c.active]
    at_instants: list[dict[str, Any]] = []
    for target, group in zip(
        (commas, mixed), (active[: (len(active) + 1) // 2], active[(len(active) + 1) // 2 :]), strict=True
    ):
        for customer in group:
            for moment in customer.instants:
                step = _step(moment, customer.serial, rng.randrange(200, 271))
                add(target, step)
                if customer.consenting:
                    at_instants.append(step)
    for customer in customers:
        # Readings with no accelerometer reading at that instant: after the phone stopped, or from a device
        # whose owner never used the app.
        if customer.active and rng.random() < 0.5:
            add(
                other,
                _step(
                    customer.instants[-1] + rng.randrange(1_000, 1_500),
                    customer.serial,
                    rng.randrange(200, 271),
                ),
            )
        elif not customer.active and rng.random() < 0.3:
            moment = int(customer.record["registrationDate"]) + rng.randrange(60_000, 600_000)
            for _ in range(2):
                add(other, _step(moment, customer.serial, rng.randrange(200, 271)))
                moment += rng.randrange(2_000, 4_000)

    pool = [e.row for f in (commas, mixed) for e in f.entries] or [e.row for e in other.entries]
    for row in rng.sample(pool, min(len(pool), 2)):
        other.insert(rng, _Entry(_compact(_step(row[0], row[1], row[2])), row, "duplicate"))
    if at_instants:
        # A device reporting two distances for one instant (stedi-2022 has five such pairs).
        step = rng.choice(at_instants)
        again = dict(step, distanceFromObject=int(step["distanceFromObject"]) + 1)
        other.insert(rng, _Entry(_compact(again), _step_row(again), "conflicting_distance"))

    serial = customers[0].serial
    mixed.insert(
        rng,
        _Entry(
            _compact({"sensorReadingTime": BASE_MS + 4567, "distanceFromObject": 230}),
            None,
            "no_serial",
            "missing_required",
        ),
    )
    mixed.insert(
        rng,
        _Entry(_compact(_step(BASE_MS + 5678, serial, "n/a")), None, "distance_not_a_number", "bad_value"),
    )
    mixed.insert(
        rng, _Entry(_compact(_step(BASE_MS + 6789, serial, -1)), None, "negative_distance", "check_failed")
    )
    other.insert(rng, _Entry("ERROR 504 gateway timeout", None, "junk_line", "invalid_json"))
    other.insert(rng, _Entry("42", None, "number_line", "not_an_object"))
    return files, len(unknown)


# --- the entry point ----------------------------------------------------------------------------------------


def output_store(out: str, *, force: bool, endpoint_url: str | None = None) -> Store:
    """The store to generate into, refused when it already holds files unless ``force``: another seed or
    size written over earlier output would silently change every count that was expected of it."""
    store = open_store(out, endpoint_url=endpoint_url)
    if store.is_file(store.path()):
        raise UsageError(f"{out} is a file, not a folder")
    held = len(store.files(store.path()))
    if held and not force:
        raise UsageError(
            f"{out} is not empty ({held} file{'s' * (held != 1)}): choose a new folder, or pass --force "
            "to write over it"
        )
    return store


def generate(
    out: str,
    *,
    seed: int = 0,
    customers: int = 300,
    readings_per_customer: int = 20,
    endpoint_url: str | None = None,
    force: bool = False,
) -> GenerateResult:
    """Write sample landing data under ``out`` (a folder or s3://...) and say what a run must find in it.

    ``endpoint_url`` points s3:// at an S3-compatible server; by default the AWS chain decides. A folder
    that already holds files is refused unless ``force``.
    """
    if customers < 1 or readings_per_customer < 1:
        raise UsageError("generate needs at least one customer and one reading per customer")
    store = output_store(out, force=force, endpoint_url=endpoint_url)
    rng = random.Random(seed)
    names = _Names(rng)
    people = _make_customers(rng, names, customers, readings_per_customer)
    by_dataset = {"customer": _customer_files(rng, names, people)}
    by_dataset["accelerometer"], non_customer_users = _accelerometer_files(
        rng, names, people, readings_per_customer
    )
    by_dataset["step_trainer"], unknown_devices = _step_files(rng, people)

    written: dict[str, list[str]] = {}
    for dataset, files in by_dataset.items():
        directory = landing_dir(store, dataset)
        ours = {f"{directory}/{f.name}" for f in files}
        # Regenerating over our own files is fine; mixing with someone else's would corrupt every count.
        listed = [p for p in store.files(directory) if not is_hidden(p[len(directory) :])]
        strangers = sorted(set(listed) - ours)
        if strangers:
            raise UsageError(
                f"{store.url(directory)} holds files generate did not write: {store.url(strangers[0])}"
            )
    defects: list[Defect] = []
    counts: dict[str, DatasetCounts] = {}
    for dataset, files in by_dataset.items():
        directory = landing_dir(store, dataset)
        uris = []
        reasons: Counter[str] = Counter()
        records = duplicates = 0
        for f in files:
            path = f"{directory}/{f.name}"
            store.write_bytes(path, f.render())
            uri = store.url(path)
            uris.append(uri)
            defects.extend(Defect(dataset, uri, quirk) for quirk in f.quirks)
            for index, entry in enumerate(f.entries):
                records += 1
                duplicates += entry.kind == "duplicate"
                if entry.reason:
                    reasons[entry.reason] += 1
                if entry.kind:
                    defects.append(
                        Defect(dataset, uri, entry.kind, f.line_of(index), index + 1, entry.reason)
                    )
        quarantined = {reason: reasons[reason] for reason in REASONS if reasons[reason]}
        rows = records - sum(quarantined.values())
        counts[dataset] = DatasetCounts(dataset, tuple(uris), records, rows, quarantined, duplicates)
        written[dataset] = uris

    good = {
        d: [e.row for f in files for e in f.entries if e.row is not None] for d, files in by_dataset.items()
    }
    consenting = [c for c in people if c.consenting]
    before_consent = {
        _reading_row(r)
        for c in consenting
        for r in c.readings
        if r["timestamp"] < c.record["shareWithResearchAsOfDate"]
    }
    summary = {
        "customers": customers,
        "consenting": len(consenting),
        "consent_absent": sum("shareWithResearchAsOfDate" not in c.record for c in people),
        "consent_null": sum(
            "shareWithResearchAsOfDate" in c.record and c.record["shareWithResearchAsOfDate"] is None
            for c in people
        ),
        "with_readings": sum(c.active for c in people),
        "consenting_with_readings": sum(c.active for c in consenting),
        "readings_before_consent": len(before_consent),
        "non_customer_users": non_customer_users,
        "unknown_devices": unknown_devices,
    }
    return GenerateResult(
        out=store.url(store.root),
        seed=seed,
        customers=customers,
        readings_per_customer=readings_per_customer,
        files=tuple(uri for d in dataset_names() for uri in written[d]),
        datasets=counts,
        people=summary,
        expected_tables=expected_tables(
            *(frame_of(good[d], landing_contract(d).column_names) for d in dataset_names())
        ),
        defects=tuple(defects),
    )
