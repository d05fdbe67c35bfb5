"""Reading the data files the command line takes: .npy, .csv (with or
without a header row), .h5/.hdf5 (--dataset), .zarr and .parquet. Large
.npy, HDF5 and Zarr inputs are not loaded: they are handed to the estimator,
which streams them."""
from pathlib import Path

import numpy as np

FORMATS = (".npy", ".csv", ".h5", ".hdf5", ".zarr", ".parquet")


def _optional(module, extra):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"reading this file needs {module.split('.')[0]}: "
                          f"pip install 'fastem[{extra}]'") from None


def csv_header(path):
    """The column names of a CSV's first line, or None when it parses as
    numbers (no header)."""
    with open(path) as f:
        first = f.readline()
    fields = [field.strip() for field in first.split(",")]
    try:
        [float(field) for field in fields]
        return None
    except ValueError:
        return fields


def _number_or_gap(text):
    """A CSV cell as a float; an empty cell is a gap (NaN)."""
    text = text.strip()
    return float(text) if text else np.nan


def read_csv(path, gaps=False):
    """A numeric CSV; a first line that does not parse as numbers is a header.
    ``gaps``: empty cells are missing values (NaN) rather than errors."""
    header = 0 if csv_header(path) is None else 1
    try:
        X = np.loadtxt(path, delimiter=",", skiprows=header, ndmin=2, dtype=np.float64,
                       converters=_number_or_gap if gaps else None)
    except ValueError as exc:
        hint = ("; empty cells are missing values only with --missing em"
                if not gaps and "string ''" in str(exc) else "")
        raise ValueError(f"{path}: not a numeric CSV ({exc}){hint}") from None
    if X.size == 0:
        raise ValueError(f"{path}: no data rows")
    return X


def open_data(path, dataset=None, gaps=False):
    """What ``GaussianMixture.fit`` should get for the data file ``path``;
    ``gaps``: empty CSV cells are missing values (NaN is one in any format)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown data format {suffix or '(no extension)'!r}; "
                         f"expected one of {', '.join(FORMATS)}")
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if suffix == ".npy":
        return str(path)  # streamed
    if suffix == ".csv":
        return read_csv(path, gaps)
    if suffix in (".h5", ".hdf5"):
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
    if suffix == ".zarr":
        zarr = _optional("zarr", "io")
        try:
            return zarr.open_array(store=str(path), mode="r")
        except Exception as exc:  # zarr raises several types for a bad store
            raise ValueError(f"{path}: not a readable Zarr array ({exc})") from None
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
    return np.column_stack(columns)


def column_names(path):
    """The names of a CSV's (header) or Parquet file's columns, or None."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return csv_header(path)
    if suffix == ".parquet":
        return list(_optional("pyarrow.parquet", "io").read_schema(path).names)
    return None


def split_weights(path, X, spec):
    """(X, weights) for ``fastem fit --weights SPEC``: SPEC is a file of
    weights (.npy, streamed; .csv or .parquet of one column), or a column of
    DATA (a CSV or Parquet file) by name or 0-based position, which is then
    not a feature."""
    if Path(spec).exists():
        suffix = Path(spec).suffix.lower()
        if suffix == ".npy":
            return X, str(spec)
        if suffix in (".csv", ".parquet"):
            weights = open_data(spec)
            if weights.shape[1] != 1:
                raise ValueError(f"{spec}: a weights file has one column, found "
                                 f"{weights.shape[1]}")
            return X, weights[:, 0]
        raise ValueError(f"{spec}: weights are read from .npy, .csv or .parquet files")
    if not isinstance(X, np.ndarray):
        raise ValueError(f"--weights {spec}: no such file; a weights column can be "
                         f"taken from CSV or Parquet data, not from {path}")
    names = column_names(path) or []
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
