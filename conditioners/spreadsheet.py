"""XLSX sheets read as text, streamed: memory follows the cells the sheet holds, not the
dimension it claims (a sheet claiming A1:XFD1048576 is not padded to 16,384 columns), and a
sheet past the configured rows or columns is refused naming the file."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

from demandops.core.errors import DataError
from demandops.core.limits import InputLimits


def sheet_rows(
    data: bytes, file: str, sheet: str | None, limits: InputLimits, text: Callable[[Any], str]
) -> list[list[str]]:
    """The rows of the sheet (default: the first) as text, trailing empty cells dropped."""
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise DataError(f"cannot read {file}: no sheet {sheet!r}; has {book.sheetnames[:20]}")
        found = book[sheet] if sheet else book.worksheets[0]
        found.reset_dimensions()  # stream the cells there are, not the claimed dimension
        return [_row(cells, file, n, limits, text) for n, cells in _capped(found, file, limits)]
    finally:
        book.close()


def _capped(sheet: Any, file: str, limits: InputLimits) -> Iterator[tuple[int, tuple[Any, ...]]]:
    for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
        if number > limits.xlsx_rows:
            raise DataError(f"cannot read {file}: more than {limits.xlsx_rows} rows (the limit)")
        yield number, cells


def _row(
    cells: tuple[Any, ...], file: str, number: int, limits: InputLimits, text: Callable[[Any], str]
) -> list[str]:
    """The row's values as text up to its last non-empty one; a value past the column limit
    refuses the file (empty cells past it are dropped)."""
    cap = limits.xlsx_columns
    if len(cells) > cap and any(v is not None and v != "" for v in cells[cap:]):
        raise DataError(
            f"cannot read {file}: row {number} has values past column {cap} (the limit)"
        )
    values = [text(v) for v in cells[:cap]]
    while values and values[-1] == "":
        values.pop()
    return values
