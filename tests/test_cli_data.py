"""The command line's CSV reader: pyarrow's, and the standard library's when
pyarrow is not installed, read every file alike and name the line and
column of every problem."""
import re
import sys

import numpy as np
import pytest

from fastem import _cli_csv
from fastem._cli_csv import read_csv

READERS = ["pyarrow", "csv module"]
nan = np.nan


@pytest.fixture(params=READERS)
def reader(request, monkeypatch):
    """read_csv with pyarrow, which must then read a valid file alone, or
    as if pyarrow were not installed."""
    if request.param == "pyarrow":
        pytest.importorskip("pyarrow.csv")

        def unexpected(*args):
            raise AssertionError("pyarrow did not read a valid file")
        monkeypatch.setattr(_cli_csv, "_read_with_csv_module", unexpected)
    else:
        monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow fails
    return read_csv


def _csv(tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize("text, options, X, names", [
    ("1,2\n3,5\n", {}, [[1, 2], [3, 5]], None),
    ("a,b\n1,2\n", {}, [[1, 2]], ["a", "b"]),
    ("\ufeffa,b\n1,2\n", {}, [[1, 2]], ["a", "b"]),
    ("\ufeff1,2\n3,5\n", {}, [[1, 2], [3, 5]], None),
    ("1,2,\n3,5,\n", {}, [[1, 2], [3, 5]], None),
    ("a,b,\n1,2,\n", {}, [[1, 2]], ["a", "b"]),
    ('"a","b"\r\n"1","2"\r\n', {}, [[1, 2]], ["a", "b"]),
    ('"x\ny",b\n1,2\n', {}, [[1, 2]], ["x\ny", "b"]),
    ("10,20\n1,2\n", {"header": True}, [[1, 2]], ["10", "20"]),
    ("a,b\n1,2\n", {"header": True}, [[1, 2]], ["a", "b"]),
    ("1,2\n3,5\n", {"header": False}, [[1, 2], [3, 5]], None),
    ("a,b\n1,2\n\n3,5\n", {}, [[1, 2], [3, 5]], ["a", "b"]),
    ("a\n1\n\n2\n", {}, [[1], [2]], ["a"]),
    ("a , b\n1 , 2\n", {}, [[1, 2]], ["a", "b"]),
    ("a,b\n1e3,-2.5E-1\n", {}, [[1000, -0.25]], ["a", "b"]),
    ("a,NA\n1,2\n", {}, [[1, 2]], ["a", "NA"]),
    ("1,NA\n,5\nnan,N/A\n", {"gaps": True}, [[1, nan], [nan, 5], [nan, nan]], None),
    ("a,b\n1,\n", {"gaps": True}, [[1, nan]], ["a", "b"]),
], ids=["no header", "header", "BOM and header", "BOM", "trailing commas",
        "trailing commas and header", "quoted, CRLF", "line end in a name", "--header",
        "--header on text", "--no-header", "blank line", "one column", "spaces", "exponents",
        "NA as a name", "missing values", "empty cell"])
def test_reads_every_row(text, options, X, names, reader, tmp_path):
    table = reader(_csv(tmp_path, text), **options)
    np.testing.assert_array_equal(table.X, np.array(X, dtype=float))
    assert table.names == names


@pytest.mark.parametrize("text, options, message", [
    ("a,b\n1,x\n", {}, "line 2, column 2 (b): 'x' is not a number"),
    ("a,b\n1,2\n3,\n", {}, "line 3, column 2 (b): a missing value"),
    ("1,NA\n3,5\n", {}, "line 1, column 2: a missing value"),
    ("1,nan\n3,5\n", {}, "line 1, column 2: a missing value"),
    ("a,b\n1,2\n3,4,\n", {"gaps": True}, "line 3: 3 cells, but line 1 has 2"),
    ("a,b\n1,2\n3\n", {}, "line 3: 1 cells, but line 1 has 2"),
    ('"a\nb",c\n1,x\n', {}, "line 3, column 2 (c): 'x' is not a number"),
    ('"a","b"\n"1","2"\n\n"3","x"\n', {}, "line 4, column 2 (b): 'x' is not a number"),
    ("a,b\n1,2\n", {"header": False}, "line 1, column 1: 'a' is not a number"),
    ("a,b\n", {}, ": no data rows"),
    ("", {}, ": no data rows"),
    (b"a,b\n1,\xff\n", {}, ": not UTF-8 text"),
], ids=["text", "empty cell", "NA on line 1", "NaN", "extra cell", "short line",
        "line end in a name", "quoted", "--no-header on a header", "header only", "empty",
        "not UTF-8"])
@pytest.mark.parametrize("with_pyarrow", [True, False], ids=READERS)
def test_an_error_names_its_line_and_column(text, options, message, with_pyarrow,
                                            tmp_path, monkeypatch):
    if with_pyarrow:
        pytest.importorskip("pyarrow.csv")
    else:
        monkeypatch.setitem(sys.modules, "pyarrow", None)
    path = _csv(tmp_path, text)
    with pytest.raises(ValueError, match=re.escape(f"{path}{'' if message[0] == ':' else ', '}"
                                                   f"{message}")):
        read_csv(path, **options)


def test_missing_values_are_an_error_unless_gaps_says_otherwise(tmp_path):
    path = _csv(tmp_path, "a,b\n1,NA\n")
    with pytest.raises(ValueError, match="allowed only with --missing em"):
        read_csv(path)
    np.testing.assert_array_equal(read_csv(path, gaps=True).X, [[1, nan]])


@pytest.mark.parametrize("header", [True, False])
def test_a_written_array_reads_back_exactly(header, reader, tmp_path):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 4)) * 10.0 ** rng.integers(-8, 8, size=(300, 4))
    X[rng.uniform(size=X.shape) < 0.1] = nan
    lines = ["w,x,y,z"] if header else []
    lines += [",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in X]
    path = _csv(tmp_path, "\n".join(lines) + "\n")
    table = reader(path, gaps=True)  # the header guessed
    np.testing.assert_array_equal(table.X, X)
    assert table.names == (["w", "x", "y", "z"] if header else None)
