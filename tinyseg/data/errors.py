"""Errors and counted warnings of the data layer.

Bad input either stops loading with a `DataFormatError` (a `ValueError` whose message names the
file, the problem and the fix) or, where the rest of the data is still usable (a mass polygon
clamped into the image, an empty mask skipped), is counted in a `WarningCounter`. The counter
emits one `DataWarning` per kind at the end of a load and the counts travel with the dataset
(`Dataset.warnings`), so a silent skip can never happen.

See: tests/data/test_data_badinput.py, tests/data/test_data_fuzz.py.
"""
from __future__ import annotations

import warnings
from collections import Counter

from ..errors import UserError


class DataFormatError(UserError):
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


def csv_records(text: str, source: str, required: tuple[str, ...] | list[str], delimiter: str = ",",
                hint: str = "") -> list[tuple[int, dict]]:
    """Rows of a CSV with a header as ``(line number, {column: stripped value})``, blank rows skipped.

    Args:
        text: the file's text.
        source: its name, for messages.
        required: columns the header must contain.
        delimiter: field separator.
        hint: appended to the missing-column message (what the file should be).

    Raises:
        DataFormatError: malformed CSV, an empty file, missing columns, or a ragged row.
    """
    import csv
    import io

    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as e:
        raise DataFormatError(f"{source}: malformed CSV ({e})") from e
    if not rows:
        raise DataFormatError(f"{source}: empty file; expected a CSV with a header row{hint}")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataFormatError(f"{source}: missing column(s) {missing}{hint}")
    out = []
    for i, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataFormatError(f"{source}, line {i}: {len(row)} fields, the header has {len(header)}")
        out.append((i, {h: cell.strip() for h, cell in zip(header, row)}))  # strip: paths can end in "\n"
    return out
