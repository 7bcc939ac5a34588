"""Progress on a terminal: ``TerminalMeter`` draws each task the runner reports to its ``Meter``
(run/progress.py) as a tqdm bar on stderr (amount, rate, time left). The CLI uses it only when stderr is a
terminal, or when asked with --progress, so pipes and cron logs get nothing extra.
"""

from __future__ import annotations

import shutil
from typing import Any


class TerminalMeter:
    """Each task a tqdm bar on stderr; bars of tasks that overlap (a read within the build) stack."""

    def __init__(self) -> None:
        import sys

        self.bars: dict[str, Any] = {}
        # A stream of its own on stderr's descriptor: through sys.stderr, tqdm's bars did not reach a
        # pseudo-terminal at all (seen with tqdm 4.70 on Python 3.11), while the same writes on a new
        # stream did. Notes go through it too, so lines and bars stay in order.
        sys.stderr.flush()
        self.stream = open(sys.stderr.fileno(), "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115

    def start(self, task: str, total: int, unit: str) -> None:
        from tqdm import tqdm

        self.finish(task)
        scaled = unit == "B"
        self.bars[task] = tqdm(
            total=total,
            desc=task,
            unit=unit,
            unit_scale=scaled,
            unit_divisor=1024 if scaled else 1000,
            position=len(self.bars),
            leave=not self.bars,  # the outermost task's bar stays as a record; inner ones are cleared
            # A terminal that reports no size (a bare pseudo-terminal) would get a bar of no width.
            ncols=shutil.get_terminal_size((100, 24)).columns,
            mininterval=0.2,
            file=self.stream,
        )

    def advance(self, task: str, amount: int = 1) -> None:
        bar = self.bars.get(task)
        if bar is not None:
            bar.update(amount)

    def finish(self, task: str) -> None:
        bar = self.bars.pop(task, None)
        if bar is not None:
            bar.close()

    def note(self, message: str) -> None:
        from tqdm import tqdm

        tqdm.write(message, file=self.stream)
        self.stream.flush()

    def close(self) -> None:
        for task in list(self.bars):
            self.finish(task)
        self.stream.flush()
