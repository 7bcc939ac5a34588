"""Progress of long work as the runner reports it: a task starts with its total (bytes to read, tables to
build), advances and finishes. How it is shown is render/progress.py's business; ``NO_METER`` shows
nothing and is the default."""

from __future__ import annotations

from typing import Protocol


class Meter(Protocol):
    def start(self, task: str, total: int, unit: str) -> None:
        """A task begins: ``total`` units of work (``unit`` "B" counts bytes, shown as kB, MB, ...)."""

    def advance(self, task: str, amount: int = 1) -> None:
        """``amount`` more units of ``task`` are done."""

    def finish(self, task: str) -> None:
        """``task`` is over (done or abandoned)."""

    def note(self, message: str) -> None:
        """A line of progress text, written so that it does not tear the bars."""


class _NoMeter:
    def start(self, task: str, total: int, unit: str) -> None:
        pass

    def advance(self, task: str, amount: int = 1) -> None:
        pass

    def finish(self, task: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass


NO_METER: Meter = _NoMeter()
