"""Bootstrap replicate weights for complex survey designs (numeric kernel).

The Rao-Wu rescaled bootstrap ("subbootstrap", R ``survey``'s
``as.svrepdesign(type = "subbootstrap")``): in each replicate and in each
stratum ``h`` with ``n_h`` primary sampling units (PSUs), ``n_h - 1`` PSUs are
drawn with replacement; a PSU drawn ``m`` times gets the weight multiplier
``m n_h / (n_h - 1)`` (zero when not drawn), and every row of the PSU
inherits it. A replicate weight is the sampling weight times the multiplier.
The variance of an estimate is the variance of its replicates,
``sum_r (theta_r - mean theta)^2 / (R - 1)`` (R: ``scale = 1 / (R - 1)``).

Without clusters every row is its own PSU, so rows are resampled within
strata. Later sampling stages are carried along with their PSU (as R does).

Examples
--------
>>> import numpy as np
>>> f = subbootstrap_factors([np.random.SeedSequence(1)], np.array([0, 0, 1, 2, 3]), np.array([0, 0, 1, 1]))
>>> f.shape
(1, 5)
>>> bool(np.all(f[0] % 2 == 0))  # two PSUs per stratum: one draw, multiplier 0 or 2
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["subbootstrap_factors"]


def subbootstrap_factors(seeds, psu_of_row: np.ndarray, stratum_of_psu: np.ndarray) -> np.ndarray:
    """Rao-Wu (``n_h - 1``) bootstrap multipliers of the sampling weights, one replicate per seed.

    Parameters
    ----------
    seeds : sequence of int or numpy.random.SeedSequence
        One seed per replicate; replicate ``i`` depends on ``seeds[i]`` only, so
        it is the same whichever worker or chunk computes it.
    psu_of_row : (n,) int array
        Code ``0 .. n_psu - 1`` of each row's primary sampling unit.
    stratum_of_psu : (n_psu,) int array
        Code of the stratum each PSU was drawn in. Every stratum needs at
        least two PSUs (checked by the caller).

    Returns
    -------
    (len(seeds), n) array
        Multipliers ``m n_h / (n_h - 1)`` per row.
    """
    psu_of_row = np.asarray(psu_of_row)
    stratum_of_psu = np.asarray(stratum_of_psu)
    n_psu = stratum_of_psu.size
    groups = [np.flatnonzero(stratum_of_psu == s) for s in np.unique(stratum_of_psu)]
    out = np.empty((len(seeds), n_psu))
    for i, s in enumerate(seeds):
        rng = np.random.default_rng(s)
        f = np.zeros(n_psu)
        for g in groups:
            nh = g.size
            drawn = np.bincount(rng.integers(0, nh, size=nh - 1), minlength=nh)
            f[g] = drawn * (nh / (nh - 1.0))
        out[i] = f
    return out[:, psu_of_row]
