"""Numeric CSV files for the command line.

pyarrow's CSV reader reads them when pyarrow is installed (``pip install
".[io]"``), the standard library's csv module otherwise. Both follow the
same rules, and the standard library's reader, which counts lines, also
reads every file pyarrow rejects: it either reads it the same way or names
the line and column of the first problem. The rules:

- a UTF-8 byte-order mark is skipped, and so are blank lines;
- the first line is a header with ``header=True``, data with
  ``header=False``; with ``header=None`` it is a header when one of its
  cells is neither a number nor a missing value;
- every line has as many cells as the first;
- a cell is a number, or a missing value (empty, NA, NaN, ..., see
  ``MISSING``), which is NaN with ``gaps=True`` and an error otherwise;
- a last column with no name and no values (every line ends with a comma)
  is not a column: it is dropped.

Line numbers count every line of the file, the header, blank lines and
line ends inside quoted cells included.
"""
import contextlib
import csv
from dataclasses import dataclass

import numpy as np

# Cells that are missing values, besides any that reads as NaN
MISSING = ("", "NA", "N/A", "n/a", "NaN", "nan", "NAN", "NULL", "null")


@dataclass(frozen=True)
class Table:
    """A CSV file's values and its header's names (None without one)."""

    X: np.ndarray
    names: list | None


def read_csv(path, gaps=False, header=None):
    """The numbers of a CSV file, as a Table; see the module doc for the rules.

    Parameters
    ----------
    path : str or Path
    gaps : bool
        Missing values are NaN rather than an error.
    header : bool or None
        Whether the first line names the columns; None: guessed from it.
    """
    first = _first_record(path)
    if header is None:
        header = any(not _is_value(cell) for cell in first)
    table = _read_with_pyarrow(path, first, header)
    if table is None or (not gaps and np.isnan(table.X).any()):
        table = _read_with_csv_module(path, header, gaps)
    if len(table.X) == 0:
        raise ValueError(f"{path}: no data rows")
    return table


def _value(cell):
    """A cell's number, NaN for a missing value; ValueError otherwise."""
    text = cell.strip()
    return np.nan if text in MISSING else float(text)


def _is_value(cell):
    try:
        _value(cell)
    except ValueError:
        return False
    return True


def _records(path):
    """(line, cells) of every record of the file that is not a blank line,
    ``line`` being the line where the record starts."""
    # utf-8-sig: a byte-order mark is not part of the first cell
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        end = 0  # the last line read
        try:
            for cells in reader:
                start, end = end + 1, reader.line_num
                if cells:  # (a blank line is a record of no cells)
                    yield start, cells
        except csv.Error as exc:
            raise ValueError(f"{path}, line {reader.line_num}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not UTF-8 text ({exc})") from None


def _first_record(path):
    with contextlib.closing(_records(path)) as records:
        for _, cells in records:
            return cells
    raise ValueError(f"{path}: no data rows")


def _drop_empty_last_column(table):
    X, names = table.X, table.names
    unnamed = names is None or names[-1] == ""
    if X.shape[1] > 1 and len(X) and unnamed and np.isnan(X[:, -1]).all():
        return Table(X[:, :-1], None if names is None else names[:-1])
    return table


def _read_with_pyarrow(path, first, header):
    """The Table pyarrow reads, or None when pyarrow is not installed or
    rejects the file (the csv module's reader then says where and why)."""
    try:
        import pyarrow as pa
        from pyarrow import csv as pa_csv
    except ImportError:
        return None
    # pyarrow reads the header itself (a quoted name may hold a line end);
    # the names it finds are the cells of the first record
    keys = first if header else [f"f{i}" for i in range(len(first))]
    read = pa_csv.ReadOptions(autogenerate_column_names=not header)
    convert = pa_csv.ConvertOptions(column_types=dict.fromkeys(keys, pa.float64()),
                                    null_values=MISSING)
    try:
        table = pa_csv.read_csv(path, read_options=read, convert_options=convert)
    except pa.ArrowInvalid:
        return None
    if table.num_columns != len(keys) or any(t != pa.float64() for t in table.schema.types):
        return None
    # (null cells become NaN)
    X = np.column_stack([column.to_numpy() for column in table.columns])
    names = [name.strip() for name in first] if header else None
    return _drop_empty_last_column(Table(X.reshape(-1, len(keys)), names))


def _read_with_csv_module(path, header, gaps):
    """The Table of the standard library's csv reader; a ValueError names
    the line and column of the first problem."""
    names, width, lines, rows = None, None, [], []
    with contextlib.closing(_records(path)) as records:
        for line, cells in records:
            if width is None:
                width, first_line = len(cells), line
                if header:
                    names = [cell.strip() for cell in cells]
                    continue
            if len(cells) != width:
                raise ValueError(f"{path}, line {line}: {len(cells)} cells, but line "
                                 f"{first_line} has {width}")
            rows.append([_cell(path, line, j, cell, names) for j, cell in enumerate(cells)])
            lines.append(line)
    X = np.array(rows, dtype=np.float64).reshape(-1, width or 0)
    table = _drop_empty_last_column(Table(X, names))
    if not gaps:
        missing = np.argwhere(np.isnan(table.X))
        if len(missing):
            row, column = missing[0]
            raise ValueError(f"{_where(path, lines[row], column, table.names)}: a missing "
                             "value (an empty cell, NA or NaN), allowed only with "
                             "--missing em")
    return table


def _cell(path, line, column, cell, names):
    try:
        return _value(cell)
    except ValueError:
        raise ValueError(f"{_where(path, line, column, names)}: {cell.strip()!r} is not "
                         "a number") from None


def _where(path, line, column, names):
    """'X.csv, line 3, column 2 (b)': 1-based, as an editor counts."""
    name = f" ({names[column]})" if names and names[column] else ""
    return f"{path}, line {line}, column {column + 1}{name}"
