"""Put raw JSON files into the landing layout (the project's "create the S3 directories and copy the data").

Each file's dataset comes from its folders or its name, case-blind, with "-", "_" and "." alike:
- a folder named after a dataset (``customer/``, ``step_trainer/``, ``step-trainer/``, ``steptrainer/``), the
  file keeping its path below that folder (below its ``landing/`` folder where it has one);
- else a file name starting with a dataset's name as a whole word (``customer-1691348231425.json``,
  ``step_trainer-1655296678763.json``), the file keeping its name. ``customers.json`` or
  ``my-customer.json`` do not count: a dataset name inside another word, or after one, is not a dataset.

Every file is placed before anything is uploaded; one that cannot be placed (no dataset, two datasets, not
JSON, a trusted or curated folder, two files for one target) stops the command with nothing uploaded. A
file already in the landing zone with the same size and checksum is skipped, so landing again is cheap.
Hidden files ("." or "_" first, which the landing reader skips too) are not uploaded.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Literal

from stedi_etl.contracts import datasets as dataset_names
from stedi_etl.errors import UsageError
from stedi_etl.lake.storage import is_hidden, open_store
from stedi_etl.landing.read import landing_dir
from stedi_etl.wording import plural

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
ZONES_NOT_LANDING = ("trusted", "curated")
SHOWN_PROBLEMS = 5  # the error stays one readable line however many files are wrong


def _spellings() -> dict[tuple[str, ...], str]:
    """A dataset's spellings as words (split at "-", "_", "." and spaces): its name's words, and those
    words run together (step_trainer: step-trainer, step_trainer, steptrainer)."""
    found: dict[tuple[str, ...], str] = {}
    for dataset in dataset_names():
        words = tuple(dataset.split("_"))
        found[words] = dataset
        found[("".join(words),)] = dataset
    return found


_SEPARATORS = re.compile(r"[-_.\s]+")


@dataclass(frozen=True)
class LandedFile:
    """One source file and where it went (or already was)."""

    source: str
    target: str
    dataset: str
    bytes: int
    status: Literal["uploaded", "skipped"]


@dataclass(frozen=True)
class LandResult:
    source: str
    landing: str
    files: tuple[LandedFile, ...]
    ignored: tuple[str, ...]
    seconds: float

    @property
    def uploaded(self) -> tuple[LandedFile, ...]:
        return tuple(f for f in self.files if f.status == "uploaded")

    @property
    def skipped(self) -> tuple[LandedFile, ...]:
        return tuple(f for f in self.files if f.status == "skipped")

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["uploaded"] = len(self.uploaded)
        result["skipped"] = len(self.skipped)
        return result

    def summary(self) -> str:
        lines = [f"land {self.source} -> {self.landing}"]
        for dataset in dataset_names():
            mine = [f for f in self.files if f.dataset == dataset]
            if not mine:
                continue
            counts = Counter(f.status for f in mine)
            sent = sum(f.bytes for f in mine if f.status == "uploaded")
            lines.append(
                f"  {dataset:<14}{counts['uploaded']:>5} uploaded{counts['skipped']:>5} already there"
                f"{sent:>14,} bytes sent"
            )
        if self.ignored:
            shown = ", ".join(self.ignored[:SHOWN_PROBLEMS])
            more = ", ..." if len(self.ignored) > SHOWN_PROBLEMS else ""
            lines.append(f"  ignored {plural(len(self.ignored), 'hidden file')}: {shown}{more}")
        lines.append(
            f"ok: {len(self.uploaded)} uploaded, {len(self.skipped)} skipped (same size and checksum), "
            f"{self.seconds:.2f}s"
        )
        return "\n".join(lines)


def _words(name: str) -> tuple[str, ...]:
    return tuple(w for w in _SEPARATORS.split(name.lower()) if w)


def dataset_of_folder(name: str) -> str | None:
    """The dataset a folder is named after, if it is (``step-trainer`` and ``steptrainer`` included)."""
    return _spellings().get(_words(name))


def dataset_of_file(name: str) -> str | None:
    """The dataset whose name a file name starts with as whole words (``customer-1691348231425.json``)."""
    words = _words(name)
    for spelling, dataset in _spellings().items():
        if words[: len(spelling)] == spelling:
            return dataset
    return None


def place(relative: str) -> tuple[str, str]:
    """(dataset, path under ``<dataset>/landing/``) for a file at ``relative`` below the source folder.

    Raises ValueError saying why a file cannot be placed.
    """
    parts = [p for p in relative.split("/") if p]
    name = parts[-1]
    if not name.lower().removesuffix(".gz").endswith(JSON_SUFFIXES):
        raise ValueError(f"not a JSON file (expected {', '.join(JSON_SUFFIXES)}, optionally .gz)")
    folders = [(i, d) for i, part in enumerate(parts[:-1]) if (d := dataset_of_folder(part))]
    named = dataset_of_file(name)
    if len({d for _, d in folders}) > 1:
        raise ValueError(f"its folders name two datasets ({' and '.join(sorted({d for _, d in folders}))})")
    if folders:
        index, dataset = folders[-1]
        if named and named != dataset:
            raise ValueError(f"it is in a {dataset} folder but named like {named}")
        below = parts[index + 1 :]
        if len(below) > 1 and below[0].lower() == "landing":
            below = below[1:]
        elif len(below) > 1 and below[0].lower() in ZONES_NOT_LANDING:
            raise ValueError(f"it is in the {below[0]} zone, not raw landing data")
        return dataset, "/".join(below)
    if named:
        return named, name
    raise ValueError(f"neither a folder nor the name says which dataset ({', '.join(dataset_names())}) it is")


def land_files(source_dir: str, landing: str, *, endpoint_url: str | None = None) -> LandResult:
    """Upload every JSON file under ``source_dir`` into ``landing``'s ``<dataset>/landing/`` folders.

    Both may be local folders or s3://bucket/prefix. Raises UsageError, having uploaded nothing, when the
    source holds no files or a file that cannot be placed.
    """
    started = time.perf_counter()
    source = open_store(source_dir, endpoint_url=endpoint_url)
    target = open_store(landing, endpoint_url=endpoint_url)
    listed = source.files(source.path())
    if not listed:
        raise UsageError(f"no files to land under {source_dir}")

    planned: list[tuple[str, str, str, int]] = []  # (source path, dataset, target path, size)
    ignored: list[str] = []
    problems: list[str] = []
    for path, size in listed.items():
        # A source that is one file is relative to its folder.
        relative = source.relative(path) or path.rsplit("/", 1)[-1]
        if is_hidden(relative):
            ignored.append(source.url(path))
            continue
        try:
            dataset, below = place(relative)
        except ValueError as why:
            problems.append(f"{source.url(path)}: {why}")
            continue
        planned.append((path, dataset, f"{landing_dir(target, dataset)}/{below}", size))
    taken = Counter(t for _, _, t, _ in planned)
    problems.extend(
        f"{source.url(p)}: another file goes to {target.url(t)} too" for p, _, t, _ in planned if taken[t] > 1
    )
    if problems:
        shown = "; ".join(problems[:SHOWN_PROBLEMS])
        more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        raise UsageError(
            f"cannot place {len(problems)} of {plural(len(listed), 'file')}, so nothing was uploaded: "
            f"{shown}{more}"
        )
    if not planned:
        raise UsageError(f"no files to land under {source_dir}: every file is hidden")

    landed = []
    for path, dataset, destination, size in planned:
        data = source.read_bytes(path)
        if target.same_content(destination, data):
            status: Literal["uploaded", "skipped"] = "skipped"
        else:
            target.write_bytes(destination, data)
            status = "uploaded"
        landed.append(LandedFile(source.url(path), target.url(destination), dataset, size, status))
    return LandResult(
        source_dir, landing, tuple(landed), tuple(ignored), round(time.perf_counter() - started, 4)
    )
