"""A training run's progress on stderr: a tqdm bar with a heartbeat on a terminal, one line elsewhere.

`tinyseg.train.fit` makes one `Progress` per run and reports to it: `start` when training
begins (or resumes), `step` within an epoch, `epoch` with the epoch's scores, `status` for the
work around training (data preparation, the test evaluation) and `close` at the end.

See: tinyseg/train.py, tests/test_lesson_progress.py.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import numpy as np


def _columns(stream: Any) -> int:
    """The width of the terminal `stream` writes to; 0 where it reports none or is no terminal."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is an OSError
        return 0


class Progress:
    """A run's progress on stderr, from data preparation to the test evaluation; nothing when `quiet`.

    On a terminal: a tqdm bar over epochs with the step within the epoch, the last epoch's loss and
    validation Dice, redrawn every second even inside a long step (so a slow run never looks
    hung). Otherwise (a file, a pipe, a notebook): one line when the run ends.
    """

    def __init__(self, desc: str, total: int, quiet: bool) -> None:
        from tqdm.auto import tqdm

        self.desc, self.quiet, self.t0, self.epochs = desc, quiet, time.perf_counter(), 0
        self.scores: dict[str, str] = {}
        # A terminal that reports no size (0 × 0: a bare pseudo-terminal, some containers) would get
        # no bar at all from tqdm: draw it 80 columns wide there.
        width = {"dynamic_ncols": True} if _columns(sys.stderr) else {"ncols": 80, "nrows": 24}
        self.bar = None if quiet or not sys.stderr.isatty() else tqdm(
            total=total, desc=desc, unit="ep", **width)
        if self.bar is not None:
            self.done = threading.Event()
            self.heartbeat = threading.Thread(target=self._beat, daemon=True)
            self.heartbeat.start()

    def _beat(self) -> None:
        while not self.done.wait(1.0):
            self.bar.refresh()

    def start(self, epoch: int) -> None:
        """Training starts at `epoch` (> 0 on resume); the bar's clock and rate count from here."""
        if self.bar is not None:
            self.bar.reset()
            self.bar.n = self.bar.last_print_n = self.bar.initial = epoch
            self.bar.set_postfix(self.scores)

    def step(self, k: int, n: int) -> None:
        if self.bar is not None:  # drawn by the next refresh
            self.bar.set_postfix(self.scores | {"step": f"{k}/{n}"}, refresh=False)

    def epoch(self, row: dict[str, float]) -> None:
        self.epochs += 1
        self.scores = {"loss": f"{row['train_loss']:.4f}"}
        if np.isfinite(row["val_dice"]):
            self.scores["val_dice"] = f"{row['val_dice']:.4f}"
        if self.bar is not None:
            self.bar.set_postfix(self.scores, refresh=False)
            self.bar.update(1)

    def status(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(", ".join([*(f"{k}={v}" for k, v in self.scores.items()), text]))

    def close(self, finished: bool = True) -> None:
        if self.bar is not None:
            self.done.set()
            self.heartbeat.join()
            self.bar.set_postfix(self.scores, refresh=False)  # the bar stays on screen in its final state
            self.bar.close()
        elif finished and not self.quiet:
            scores = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.scores.items())
            print(f"{self.desc}: {self.epochs} epochs in {time.perf_counter() - self.t0:.1f} s"
                  + (f", {scores}" if scores else ""), file=sys.stderr, flush=True)
