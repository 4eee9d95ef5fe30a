"""Multiple imputation by chained equations and pooling with Rubin's rules.

:func:`impute` makes ``m`` completed data sets (as R's mice);
:class:`Imputations` holds them (or imputations made elsewhere, read with
:meth:`Imputations.from_long`) and fits a model to each with
:meth:`Imputations.fit`, which pools the results into a :class:`PooledResult`.
The numeric kernels are in :mod:`~cimstats.models.impute.kernels` and the
chained-equation engine in :mod:`~cimstats.models.impute.chained`.
"""

from cimstats.models.impute.imputations import Imputations, impute
from cimstats.models.impute.pooled import PooledResult, likelihood_ratio_test, pool

__all__ = ["impute", "Imputations", "PooledResult", "pool", "likelihood_ratio_test"]
