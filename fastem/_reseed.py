"""collapse="reseed": components that collapsed or vanished start again.

A component collapses when its covariance is no longer positive definite
(it sits on fewer distinct points than it has dimensions, with too little
reg_covar), and vanishes when its weight falls to nothing. Either way the
EM fixed point it heads for is useless. Instead of failing, each such
component takes half of the heaviest healthy component: the two split its
weight and its covariance, and their means move half a standard deviation
apart along its longest axis (the split move of split-and-merge EM, Ueda
et al. 2000). Nothing here reads the data, so in-memory, streamed, Dask
and partial_fit fits reseed alike.
"""
from __future__ import annotations

import numpy as np

from fastem._covtypes._base import CollapseError

# a component with less than this share of the rows has vanished
VANISHED_WEIGHT = 1e-10


def vanished(weights):
    """Components whose weight fell below VANISHED_WEIGHT."""
    return [int(k) for k in np.flatnonzero(weights < VANISHED_WEIGHT)]


def split_heaviest(covtype, weights, means, covariances, bad):
    """New (weights, means, covariances) with each component of ``bad``
    made half of the heaviest component not in ``bad``; the given arrays
    are not modified."""
    weights, means, covariances = weights.copy(), means.copy(), covariances.copy()
    good = [k for k in range(len(weights)) if k not in bad]
    if not good:
        raise ValueError("every component collapsed: there is none left to split "
                         "(increase reg_covar or use fewer components)")
    n_features = means.shape[1]
    for k in bad:
        j = max(good, key=lambda g: weights[g])
        half_axis = covtype.spread_axis(covariances, j, n_features) / 2
        means[k] = means[j] + half_axis
        means[j] = means[j] - half_axis
        weights[k] = weights[j] = (weights[j] + weights[k]) / 2
        if covtype.per_component:
            covariances[k] = covariances[j]
        good.append(k)
    return weights, means, covariances


def factorise_or_reseed(covtype, weights, means, covariances, reg_covar):
    """(weights, means, covariances, prec_chol, reseeded components): the
    precision factors, after splitting components that vanished or whose
    covariance is not positive definite. A collapsed tied covariance, shared
    by all components, cannot be reseeded: that CollapseError is raised."""
    bad = vanished(weights)
    if bad:
        weights, means, covariances = split_heaviest(covtype, weights, means,
                                                     covariances, bad)
    try:
        prec_chol = covtype.precision_cholesky(covariances, reg_covar)
    except CollapseError as error:
        if error.components is None:
            raise
        weights, means, covariances = split_heaviest(covtype, weights, means,
                                                     covariances, error.components)
        bad += [k for k in error.components if k not in bad]
        prec_chol = covtype.precision_cholesky(covariances, reg_covar)
    return weights, means, covariances, prec_chol, bad
