"""Reading the data files the command line takes: .npy, .csv (with or
without a header row, see fastem._cli_csv), .h5/.hdf5 (--dataset), .zarr
and .parquet. Large .npy, HDF5 and Zarr inputs are not loaded: they are
handed to the estimator, which streams them."""
from dataclasses import dataclass
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
    shape: tuple
    columns: list | None = None  # the names of a CSV header's or Parquet file's columns
    note: str = ""       # how it was read, e.g. "header: a, b"

    def report(self):
        """'read 272 rows x 2 columns from X.csv (header: a, b)'"""
        rows, columns = self.shape
        note = f" ({self.note})" if self.note else ""
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
        table = read_csv(path, gaps, header)
        note = f"header: {', '.join(table.names)}" if table.names else "no header"
        return Data(table.X, str(path), table.X.shape, table.names, note)
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
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        values = column.to_numpy()
        if values.dtype.kind not in "fiub":
            raise ValueError(f"{path}: column {name!r} is not numeric ({values.dtype})")
        columns.append(values.astype(np.float64))
    if not columns:
        raise ValueError(f"{path}: no columns")
    X = np.column_stack(columns)
    return Data(X, str(path), X.shape, list(table.column_names))


def split_weights(data, spec):
    """(X, weights) for ``fastem fit --weights SPEC`` of the Data ``data``:
    SPEC is a file of weights (.npy, streamed; .csv or .parquet of one
    column), or a column of DATA (a CSV or Parquet file) by name or 0-based
    position, which is then not a feature."""
    X, path = data.X, data.path
    if Path(spec).exists():
        suffix = Path(spec).suffix.lower()
        if suffix == ".npy":
            return X, str(spec)
        if suffix in (".csv", ".parquet"):
            weights = open_data(spec).X
            if weights.shape[1] != 1:
                raise ValueError(f"{spec}: a weights file has one column, found "
                                 f"{weights.shape[1]}")
            return X, weights[:, 0]
        raise ValueError(f"{spec}: weights are read from .npy, .csv or .parquet files")
    if not isinstance(X, np.ndarray):
        raise ValueError(f"--weights {spec}: no such file; a weights column can be "
                         f"taken from CSV or Parquet data, not from {path}")
    names = data.columns or []
    if spec in names:
        column = names.index(spec)
    elif spec.isdigit() and int(spec) < X.shape[1]:
        column = int(spec)
    else:
        known = f"its columns are {', '.join(names)}" if names else \
            f"it has {X.shape[1]} columns (0-based positions)"
        raise ValueError(f"--weights {spec}: not a file, nor a column of {path}; {known}")
    if X.shape[1] < 2:
        raise ValueError(f"--weights {spec}: {path} has no column left for features")
    return np.delete(X, column, axis=1), X[:, column].copy()
