"""The landing data's quality profile the data scientists asked for: duplicates by each dataset's key with the
worst offenders, customers per serial number (the fulfillment bug), consent counts, null rates, and
readings that belong to no customer.

Keys come from the contracts (their primaryKey columns); the serial number is the column the customer and
step trainer contracts share. Everything is computed with Polars expressions over the landing frames.

Personal values appear only as the repeated keys of the worst offenders. By default each is shown as a
stable short digest (``***#3f9a1c2b``): the local part of an email is a person's name, so none of it is
shown, while repeats of one customer still read as one; ``show_personal`` shows the values as they are.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from stedi_etl.contracts import MASK, Contract
from stedi_etl.model import explain, transforms

if TYPE_CHECKING:
    import polars as pl

    from stedi_etl.landing.read import LandingRead

DEFAULT_TOP = 5
CONSENT_COLUMN = re.compile(r"^shareWith\w+AsOfDate$")  # the customer's consent dates, by their naming


@dataclass(frozen=True)
class Offender:
    key: tuple[str, ...]  # the key's values as shown (personal ones masked unless asked otherwise)
    count: int


@dataclass(frozen=True)
class Duplicates:
    key: tuple[str, ...]
    distinct_keys: int
    repeated_keys: int  # keys held by more than one row
    extra_rows: int  # rows beyond the first of each key
    max_repeats: int
    worst: tuple[Offender, ...]


@dataclass(frozen=True)
class ColumnNulls:
    column: str
    nulls: int
    rate: float


@dataclass(frozen=True)
class DatasetProfile:
    dataset: str
    rows: int
    quarantined: int
    duplicates: Duplicates
    nulls: tuple[ColumnNulls, ...]


@dataclass(frozen=True)
class SerialSharing:
    """How many customers (distinct emails) share each serial number."""

    column: str
    distinct_serials: int
    customers: int
    shared_serials: int  # serials held by more than one customer
    max_customers: int
    worst: tuple[Offender, ...]


@dataclass(frozen=True)
class Consent:
    column: str
    records: int
    customers: int  # distinct emails with the consent on at least one record


@dataclass(frozen=True)
class Orphans:
    """Readings that point at no customer: accelerometer by user, step trainer by serial number."""

    dataset: str
    column: str
    readings: int
    distinct_values: int


@dataclass(frozen=True)
class Profile:
    landing: str
    datasets: tuple[DatasetProfile, ...]
    serial_numbers: SerialSharing
    consent: tuple[Consent, ...]
    orphans: tuple[Orphans, ...]
    personal_shown: bool
    # Customers whose latest record withdraws the research consent an earlier one gave (model/explain.py).
    consent_withdrawn: int = 0
    # Readings whose user matches a consenting customer's email only once trimmed or case-folded.
    near_miss_readings: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"profile of {self.landing}"]
        for d in self.datasets:
            dup = d.duplicates
            lines += [
                "",
                f"{d.dataset}: {d.rows} rows ({d.quarantined} quarantined)",
                f"  duplicates by ({', '.join(dup.key)}): {dup.repeated_keys} keys repeated, "
                f"{dup.extra_rows} extra rows, up to {dup.max_repeats} rows per key; "
                f"{dup.distinct_keys} distinct keys",
            ]
            lines += [f"    {o.count}x  {', '.join(o.key)}" for o in dup.worst]
            nulls = [f"{n.column} {n.rate:.1%}" for n in d.nulls if n.nulls]
            lines.append(f"  nulls: {', '.join(nulls) if nulls else 'none'}")
        s = self.serial_numbers
        lines += [
            "",
            f"{s.column}: {s.distinct_serials} distinct among {s.customers} customers; "
            f"{s.shared_serials} shared by more than one customer, up to {s.max_customers}",
        ]
        lines += [f"    {o.count} customers  {', '.join(o.key)}" for o in s.worst]
        lines += ["", "consent (records, distinct customers):"]
        lines += [f"  {c.column}: {c.records}, {c.customers}" for c in self.consent]
        lines.append(f"  customers whose later record withdraws research consent: {self.consent_withdrawn}")
        lines.append(
            f"  readings whose user matches a consenting email only once trimmed or case-folded: "
            f"{self.near_miss_readings}"
        )
        lines += ["", "readings of no customer:"]
        lines += [
            f"  {o.dataset}: {o.readings} readings, {o.distinct_values} distinct {o.column}"
            for o in self.orphans
        ]
        if not self.personal_shown:
            lines += ["", f"personal values masked ({MASK}); --show-personal shows them"]
        return "\n".join(lines)


def profile_landing(
    landing: str | None,
    *,
    lake: str | None = None,
    top: int = DEFAULT_TOP,
    show_personal: bool = False,
    endpoint_url: str | None = None,
) -> Profile:
    """Read the three landing datasets under ``landing`` as a run would and profile them; without
    ``landing``, the landing ``lake`` was built from (the bundled sample where it has none)."""
    from stedi_etl.contracts import datasets as dataset_names
    from stedi_etl.lake.storage import open_store
    from stedi_etl.lake.tables import Lake, choose_landing
    from stedi_etl.landing.read import read_landing, require_landing

    the_lake = Lake.of(lake, endpoint_url) if lake and not landing else None
    store = open_store(choose_landing(the_lake, landing).uri, endpoint_url=endpoint_url)
    listings = require_landing(store, dataset_names())
    reads = {d: read_landing(store, d, listings[d]) for d in dataset_names()}
    return profile_reads(store.location, reads, top=top, show_personal=show_personal)


def profile_reads(
    landing: str, reads: Mapping[str, LandingRead], *, top: int = DEFAULT_TOP, show_personal: bool = False
) -> Profile:
    """The profile of landing data already read (one ``read_landing`` per dataset, by dataset name)."""
    from stedi_etl.contracts import datasets as dataset_names
    from stedi_etl.landing.read import landing_contract

    contracts = {d: landing_contract(d) for d in dataset_names()}
    datasets = tuple(
        DatasetProfile(
            d,
            rows=reads[d].rows,
            quarantined=reads[d].quarantined,
            duplicates=duplicates(reads[d].frame, contracts[d], top, show_personal),
            nulls=null_rates(reads[d].frame),
        )
        for d in dataset_names()
    )
    # The flow's three datasets: customers, their phones' readings, their devices' readings.
    customer_set, reading_set, step_set = dataset_names()
    customers, accelerometer, step_trainer = (reads[d].frame for d in (customer_set, reading_set, step_set))
    customer, reading, step = (contracts[d] for d in dataset_names())
    email, user = customer.key_columns[0], reading.key_columns[0]
    serial = shared_column(customer, step)
    return Profile(
        landing=landing,
        datasets=datasets,
        serial_numbers=serial_sharing(customers, email, serial, top),
        consent=consent_counts(customers, customer, email),
        consent_withdrawn=sum(
            count for _, count, _ in explain.consent_withdrawn(customers.lazy(), options={})
        ),
        near_miss_readings=sum(
            count
            for _, count, _ in explain.near_miss_users(
                accelerometer.lazy(), transforms.customer_trusted(customers.lazy()), options={}
            )
        ),
        orphans=(
            orphans(reading_set, accelerometer, user, customers, email),
            orphans(step_set, step_trainer, serial, customers, serial),
        ),
        personal_shown=show_personal,
    )


def shared_column(first: Contract, second: Contract) -> str:
    """The one column two contracts share: the key that links their datasets."""
    shared = [c for c in first.column_names if c in second.column_names]
    if len(shared) != 1:
        raise AssertionError(f"{first.name} and {second.name} share {shared}, not one column")
    return shared[0]


def duplicates(frame: pl.DataFrame, contract: Contract, top: int, show_personal: bool) -> Duplicates:
    """Rows per value of the contract's key, and the keys held by the most rows."""
    import polars as pl

    key = list(contract.key_columns)
    counts = frame.lazy().group_by(key).agg(pl.len().alias("count"))
    summary, worst = pl.collect_all(
        [
            counts.select(
                pl.len().alias("distinct"),
                (pl.col("count") > 1).sum().alias("repeated"),
                (pl.col("count") - 1).sum().alias("extra"),
                pl.col("count").max().alias("max"),
            ),
            counts.filter(pl.col("count") > 1)
            .sort(["count", *key], descending=[True] + [False] * len(key))
            .head(top),
        ]
    )
    row = summary.row(0, named=True)
    return Duplicates(
        key=tuple(key),
        distinct_keys=row["distinct"],
        repeated_keys=row["repeated"] or 0,
        extra_rows=row["extra"] or 0,
        max_repeats=row["max"] or 0,
        worst=tuple(
            Offender(
                tuple(shown(values[k], contract, k, show_personal) for k in key),
                values["count"],
            )
            for values in worst.iter_rows(named=True)
        ),
    )


def shown(value: Any, contract: Contract, column: str, show_personal: bool) -> str:
    """A key value as printed: a personal value as a stable short digest (``***#3f9a1c2b``), which names
    nobody (an email's local part is a name) yet tells repeats of one value apart from another's."""
    text = "null" if value is None else str(value)
    if show_personal or value is None or not contract.column(column).personal:
        return text
    return masked_id(text)


def masked_id(value: str) -> str:
    """A personal value as the masked report and profile show it: the same value, the same 8 hex digits."""
    digest = hashlib.sha256(b"stedi-etl masked value\0" + value.encode()).hexdigest()[:8]
    return f"{MASK}#{digest}"


def null_rates(frame: pl.DataFrame) -> tuple[ColumnNulls, ...]:
    counts = frame.null_count().row(0, named=True) if frame.width else {}
    height = frame.height
    return tuple(
        ColumnNulls(column, nulls, round(nulls / height, 4) if height else 0.0)
        for column, nulls in counts.items()
    )


def serial_sharing(customers: pl.DataFrame, email: str, serial: str, top: int) -> SerialSharing:
    """Distinct customers per serial number: the fulfillment website gave many customers the same one."""
    import polars as pl

    per_serial = customers.lazy().group_by(serial).agg(pl.col(email).n_unique().alias("customers"))
    summary, worst = pl.collect_all(
        [
            per_serial.select(
                pl.len().alias("serials"),
                (pl.col("customers") > 1).sum().alias("shared"),
                pl.col("customers").max().alias("max"),
            ),
            per_serial.filter(pl.col("customers") > 1)
            .sort(["customers", serial], descending=[True, False])
            .head(top),
        ]
    )
    row = summary.row(0, named=True)
    return SerialSharing(
        column=serial,
        distinct_serials=row["serials"],
        customers=customers.get_column(email).n_unique(),
        shared_serials=row["shared"] or 0,
        max_customers=row["max"] or 0,
        worst=tuple(Offender((str(s),), n) for s, n in worst.iter_rows()),
    )


def consent_counts(customers: pl.DataFrame, contract: Contract, email: str) -> tuple[Consent, ...]:
    """Records and distinct customers with each consent date set."""
    import polars as pl

    columns = [c for c in contract.column_names if CONSENT_COLUMN.match(c)]
    if not columns:
        return ()
    counts = customers.select(
        *(pl.col(c).is_not_null().sum().alias(f"{c}.records") for c in columns),
        *(pl.col(email).filter(pl.col(c).is_not_null()).n_unique().alias(f"{c}.customers") for c in columns),
    ).row(0, named=True)
    return tuple(Consent(c, counts[f"{c}.records"], counts[f"{c}.customers"]) for c in columns)


def orphans(
    dataset: str, readings: pl.DataFrame, column: str, customers: pl.DataFrame, customer_column: str
) -> Orphans:
    """Readings whose ``column`` matches no customer's ``customer_column``."""
    unmatched = readings.join(
        customers.select(customer_column).unique(), left_on=column, right_on=customer_column, how="anti"
    )
    return Orphans(dataset, column, unmatched.height, unmatched.get_column(column).n_unique())
