"""Errors and counted warnings of the data layer.

Bad input either stops loading with a `DataFormatError` (a `ValueError` whose message names the
file, the problem and the fix) or, where the rest of the data is still usable (a mass polygon
clamped into the image, an empty mask skipped), is counted in a `WarningCounter`. The counter
emits one `DataWarning` per kind at the end of a load and the counts travel with the dataset
(`Dataset.warnings`), so a silent skip can never happen. [DESIGN §10]
"""
from __future__ import annotations

import warnings
from collections import Counter


class DataFormatError(ValueError):
    """A data file is malformed: the message names the file, what is wrong and how to fix it."""


class DataWarning(UserWarning):
    """Something in the data was repaired or skipped; the count is in `Dataset.warnings`."""


class WarningCounter:
    """Counts data problems by kind and reports each kind once.

    Example:
        >>> w = WarningCounter()
        >>> w.add("points_clamped", "20586908.xml: 3 points outside the image were clamped")
        >>> w.counts["points_clamped"]
        1
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def add(self, kind: str, message: str, n: int = 1) -> None:
        """Count `n` occurrences of `kind`; the first message is kept as the example."""
        self.counts[kind] += n
        self.examples.setdefault(kind, message)

    def emit(self, source: str) -> dict[str, int]:
        """Issue one `DataWarning` per kind (with the first example) and return the counts."""
        for kind, n in sorted(self.counts.items()):
            warnings.warn(f"{source}: {n} x {kind} (first: {self.examples[kind]})", DataWarning,
                          stacklevel=3)
        return dict(self.counts)
