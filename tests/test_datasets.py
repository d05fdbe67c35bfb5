"""The bundled data sets."""
import sys
from pathlib import Path

import numpy as np
import pytest

import fastem.datasets
from fastem.datasets import FAITHFUL_COLUMNS, load_faithful

CSV = Path(fastem.datasets.__file__).with_name("faithful.csv")


def test_faithful_shape_dtype_and_columns():
    X = load_faithful()
    assert isinstance(X, np.ndarray)
    assert X.shape == (272, 2)
    assert X.dtype == np.float64
    assert FAITHFUL_COLUMNS == ("eruptions", "waiting")
    assert np.isfinite(X).all()


def test_faithful_values():
    X = load_faithful()
    np.testing.assert_array_equal(X[0], [3.6, 79.0])
    reference = np.loadtxt(CSV, delimiter=",", skiprows=1)
    np.testing.assert_allclose(X.mean(axis=0), reference.mean(axis=0), rtol=1e-14)
    np.testing.assert_array_equal(X, reference)


def test_faithful_returns_a_new_array_each_call():
    X = load_faithful()
    X[:] = 0.0
    assert load_faithful()[0, 1] == 79.0


def test_faithful_as_frame():
    pd = pytest.importorskip("pandas")
    df = load_faithful(as_frame=True)
    assert isinstance(df, pd.DataFrame)
    assert tuple(df.columns) == FAITHFUL_COLUMNS
    np.testing.assert_array_equal(df.to_numpy(), load_faithful())


def test_faithful_as_frame_without_pandas(monkeypatch):
    # None in sys.modules makes `import pandas` raise ImportError.
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="requires pandas"):
        load_faithful(as_frame=True)
