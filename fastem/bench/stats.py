"""Medians, spreads and ratios that tolerate missing or failed timings."""
import math

import numpy as np


def median(values) -> float:
    """Median of the finite values; NaN when there are none."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(values)) if values else float("nan")


def relative_iqr(values) -> float:
    """Interquartile range over median: the spread of the middle rounds,
    which one disturbed round cannot blow up the way it does max - min."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if len(values) < 2:
        return 0.0
    q1, mid, q3 = np.percentile(values, [25, 50, 75])
    return float((q3 - q1) / mid) if mid > 0 else float("nan")


def ratio(numerator, denominator) -> float:
    """numerator / denominator, NaN unless both are positive."""
    if not (denominator > 0 and numerator > 0):
        return float("nan")
    return numerator / denominator
