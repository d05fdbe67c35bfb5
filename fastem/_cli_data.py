"""Reading the data files the command line takes: .npy, .csv (with or
without a header row, see fastem._cli_csv), .h5/.hdf5 (--dataset), .zarr
and .parquet. Large .npy, HDF5 and Zarr inputs are not loaded: they are
handed to the estimator, which streams them.

The columns of an index that pandas wrote with a frame (a Parquet file's
pandas metadata names them; a CSV file's is the first column, of an empty
name) are dropped: they number the rows and are not features. --columns
then chooses the features, and --weights a column of row weights."""
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fastem._cli_csv import read_csv

FORMATS = (".npy", ".csv", ".h5", ".hdf5", ".zarr", ".parquet")


def _optional(module, extra):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"reading this file needs {module.split('.')[0]}: "
                          f"pip install 'fastem[{extra}]'") from None


@dataclass(frozen=True)
class Data:
    """A data file opened for the command line."""

    X: object            # what the estimator gets: an array, a .npy path, a dataset
    path: str
    shape: tuple         # the file's rows and columns (less an index)
    columns: list | None = None  # the names of X's columns: a CSV header's, a Parquet file's
    note: str = ""       # how it was read, e.g. "header: a, b"
    used: list | None = None  # the columns X holds, as the report names them; None: all
    weights: str = ""    # the column of row weights, which X does not hold
    dropped: str = ""    # the index dropped, e.g. "the index column __index_level_0__"

    @property
    def n_features(self):
        """The number of X's columns."""
        return self.shape[1] if self.used is None else len(self.used)

    def report(self):
        """'read 272 rows x 3 columns from X.csv (header: a, n, b; columns: a, b;
        weights: n)'"""
        rows, columns = self.shape
        parts = [self.note,
                 self.used is not None and f"columns: {', '.join(self.used)}",
                 self.weights and f"weights: {self.weights}",
                 self.dropped and f"dropped {self.dropped}"]
        note = "; ".join(part for part in parts if part)
        note = f" ({note})" if note else ""
        return f"read {rows} rows x {columns} columns from {self.path}{note}"


def open_data(path, dataset=None, gaps=False, header=None):
    """The data file ``path`` as the command line's options describe it.

    ``dataset``: the dataset of an HDF5 file; ``gaps``: missing CSV cells
    are NaN rather than an error (NaN is a missing value in any format);
    ``header``: whether a CSV file's first line names its columns (None:
    guessed).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown data format {suffix or '(no extension)'!r}; "
                         f"expected one of {', '.join(FORMATS)}")
    # options another format would silently ignore
    if dataset is not None and suffix not in (".h5", ".hdf5"):
        raise ValueError(f"--dataset {dataset}: only HDF5 files hold datasets, not "
                         f"{suffix} files such as {path}")
    if header is not None and suffix != ".csv":
        raise ValueError(f"--{'' if header else 'no-'}header: only CSV files have "
                         f"header lines, not {suffix} files such as {path}")
    if not Path(path).exists():
        raise FileNotFoundError(f"no such file: {path}")
    if suffix == ".npy":
        return _streamed(path, str(path))
    if suffix == ".csv":
        return _csv(path, gaps, header)
    if suffix in (".h5", ".hdf5"):
        X = _hdf5_dataset(path, dataset)
        return _streamed(path, X, note=f"dataset {X.name.lstrip('/')}")
    if suffix == ".zarr":
        zarr = _optional("zarr", "io")
        try:
            X = zarr.open_array(store=str(path), mode="r")
        except Exception as exc:  # zarr raises several types for a bad store
            raise ValueError(f"{path}: not a readable Zarr array ({exc})") from None
        return _streamed(path, X)
    return _parquet(path)


def _csv(path, gaps, header):
    table = read_csv(path, gaps, header)
    X, names, dropped = table.X, table.names, ""
    # pandas' to_csv writes its index first, under an empty name
    if names and names[0] == "" and len(names) > 1:
        X, names = X[:, 1:], names[1:]
        dropped = "the unnamed first column, an index"
    note = f"header: {', '.join(names)}" if names else "no header"
    return Data(X, str(path), X.shape, names, note, dropped=dropped)


def _streamed(path, X, note=""):
    """A file the estimator streams, not loaded here: only its shape is read."""
    from fastem._sources import as_source
    return Data(X, str(path), as_source(X, allow_nan=True).shape, note=note)


def _hdf5_dataset(path, dataset):
    h5py = _optional("h5py", "io")
    f = h5py.File(path, "r")
    names = []
    f.visititems(lambda name, obj: names.append(name)
                 if isinstance(obj, h5py.Dataset) else None)
    if dataset is None:
        if len(names) != 1:
            raise ValueError(f"{path} holds {len(names)} datasets "
                             f"({', '.join(names[:5])}); choose one with --dataset")
        dataset = names[0]
    if dataset not in names:
        raise ValueError(f"{path} has no dataset {dataset!r}; it has "
                         f"{', '.join(names) or 'none'}")
    return f[dataset]


def _parquet(path):
    pq = _optional("pyarrow.parquet", "io")
    table = pq.read_table(path)
    index = _pandas_index(table.schema)
    columns, names = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name in index:
            continue
        values = column.to_numpy()
        if values.dtype.kind not in "fiub":
            raise ValueError(f"{path}: column {name!r} is not numeric ({values.dtype})")
        columns.append(values.astype(np.float64))
        names.append(name)
    if not columns:
        raise ValueError(f"{path}: no columns")
    X = np.column_stack(columns)
    index = [name for name in table.column_names if name in index]
    dropped = f"the index column{'s' * (len(index) > 1)} {', '.join(index)}" if index else ""
    # (the report names a Parquet file's columns; a CSV header's are in its note)
    return Data(X, str(path), X.shape, names, used=names, dropped=dropped)


def _pandas_index(schema):
    """The names of the columns holding the index of the pandas frame the
    file was written from (none for a range index, which pandas keeps in the
    metadata only, or for a file not written by pandas)."""
    import json

    try:
        index = json.loads(schema.metadata[b"pandas"])["index_columns"]
    except (TypeError, KeyError, ValueError):
        return []
    return [name for name in index if isinstance(name, str)]


def choose_columns(data, columns=None, weights=None):
    """(data, weights) for the options --columns COLUMNS and --weights SPEC:
    data holding the features only, and the row weights (None without
    --weights).

    COLUMNS: comma-separated names or 0-based positions of DATA's columns;
    default: all of them but a weights column. SPEC: a file of weights
    (.npy, streamed; .csv or .parquet of one column), or a column of DATA
    (a CSV or Parquet file) by name or position, which is never a feature.
    """
    row_weights, weights_column = _weights(data, weights)
    width = data.shape[1]
    if columns is None:
        if weights_column is not None and width < 2:
            raise ValueError(f"--weights {weights}: {data.path} has no column left for "
                             "features")
        chosen = [j for j in range(width) if j != weights_column]
    else:
        specs = [spec.strip() for spec in columns.split(",")]
        if not all(specs):
            raise ValueError(f"--columns {columns}: expected names or 0-based positions "
                             "separated by commas, such as a,b or 0,2")
        chosen = [_column_index(data, spec, f"--columns {columns}: no column {spec}")
                  for spec in specs]
        if weights_column in chosen:
            raise ValueError(f"--columns {columns}: {_label(data, weights_column)} holds "
                             "the --weights, which are not a feature")
    if chosen == list(range(width)):
        return data, row_weights
    return _features(data, chosen, weights_column), row_weights


def _features(data, chosen, weights_column):
    """data holding the columns ``chosen`` only, its report naming them."""
    return replace(data, X=_take_columns(data, chosen),
                   columns=None if data.columns is None else [data.columns[j] for j in chosen],
                   used=[_label(data, j) for j in chosen],
                   weights="" if weights_column is None else _label(data, weights_column))


def _weights(data, spec):
    """(weights, column): the row weights of --weights SPEC, and their
    column in data (None when they come from a file)."""
    if spec is None:
        return None, None
    if Path(spec).exists():
        suffix = Path(spec).suffix.lower()
        if suffix == ".npy":
            return str(spec), None
        if suffix in (".csv", ".parquet"):
            weights = open_data(spec).X
            if weights.shape[1] != 1:
                raise ValueError(f"{spec}: a weights file has one column, found "
                                 f"{weights.shape[1]}")
            return weights[:, 0], None
        raise ValueError(f"{spec}: weights are read from .npy, .csv or .parquet files")
    if not isinstance(data.X, np.ndarray):
        raise ValueError(f"--weights {spec}: no such file; a weights column can be "
                         f"taken from CSV or Parquet data, not from {data.path}")
    column = _column_index(data, spec, f"--weights {spec}: not a file, nor a column of "
                                       f"{data.path}")
    return data.X[:, column].copy(), column


def _column_index(data, spec, unknown):
    """The position of DATA's column ``spec``, a name or a 0-based position;
    ``unknown``: the start of the error otherwise, which lists the columns."""
    names = data.columns or []
    if spec in names:
        return names.index(spec)
    if spec.isdigit() and int(spec) < data.shape[1]:
        return int(spec)
    known = f"its columns are {', '.join(names)}" if names else \
        f"it has {data.shape[1]} columns (0-based positions)"
    raise ValueError(f"{unknown}; {known}")


def _label(data, column):
    return data.columns[column] if data.columns else str(column)


def _take_columns(data, columns):
    if isinstance(data.X, np.ndarray):
        return data.X[:, columns]
    # a streamed file stays streamed: its rows are read a block at a time,
    # and the columns taken from each block
    from fastem._sources import Streamed
    X = np.load(data.X, mmap_mode="r") if isinstance(data.X, str) else data.X
    return Streamed(_Columns(X, columns), name=data.path)


class _Columns:
    """Some columns of a streamed array, taken from each block of rows."""

    def __init__(self, X, columns):
        self.X, self.columns = X, columns
        self.shape = (X.shape[0], len(columns))
        self.dtype = X.dtype

    def __getitem__(self, rows):
        return np.asarray(self.X[rows])[:, self.columns]
