"""Small data sets bundled with fastem, for examples, demos and tests."""
from importlib import resources

import numpy as np

__all__ = ["FAITHFUL_COLUMNS", "load_faithful"]

FAITHFUL_COLUMNS = ("eruptions", "waiting")


def load_faithful(as_frame=False):
    """Load the Old Faithful geyser data.

    272 eruptions of the Old Faithful geyser in Yellowstone National Park,
    Wyoming, USA, each described by two measurements:

    ``eruptions``
        Eruption duration, in minutes.
    ``waiting``
        Waiting time to the next eruption, in minutes.

    The values are those of R's ``datasets::faithful``. The two clearly
    separated clusters (short eruptions followed by short waits, long
    eruptions followed by long waits) make it the classic first example for
    Gaussian mixture models.

    Parameters
    ----------
    as_frame : bool, default=False
        If True, return a ``pandas.DataFrame`` with columns named as in
        :data:`FAITHFUL_COLUMNS`. pandas is not a dependency of fastem and is
        only imported in this case.

    Returns
    -------
    data : ndarray of shape (272, 2) or pandas.DataFrame
        One row per eruption, columns ``eruptions`` and ``waiting`` in that
        order, as float64. A new object on every call.

    Raises
    ------
    ImportError
        If ``as_frame=True`` and pandas is not installed.

    References
    ----------
    .. [1] W. Härdle, *Smoothing Techniques with Implementation in S*.
       New York: Springer, 1991.
    .. [2] A. Azzalini and A. W. Bowman, "A look at some data on the Old
       Faithful geyser", *Applied Statistics*, 39(3), pp. 357-365, 1990.

    Examples
    --------
    >>> from fastem.datasets import load_faithful
    >>> X = load_faithful()
    >>> X.shape
    (272, 2)
    >>> X[0]
    array([ 3.6, 79. ])
    """
    if as_frame:
        # Fail before reading anything, with the remedy in the message.
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError(
                "load_faithful(as_frame=True) requires pandas, which is not "
                "installed; install it (pip install pandas) or call "
                "load_faithful() to get a NumPy array"
            ) from exc

    source = resources.files(__name__).joinpath("faithful.csv")
    with source.open("r", encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        if tuple(header) != FAITHFUL_COLUMNS:
            raise ValueError(
                f"faithful.csv has unexpected columns {header}, expected "
                f"{list(FAITHFUL_COLUMNS)}"
            )
        data = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)

    if as_frame:
        return pd.DataFrame(data, columns=list(FAITHFUL_COLUMNS))
    return data
