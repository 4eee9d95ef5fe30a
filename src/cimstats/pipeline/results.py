"""Loading a saved result of any kind: :func:`load_result`.

Every fitted result saves itself with ``result.save(folder)`` (see
:mod:`cimstats.models._result`). Reading one back needs the class of each kind
that can be saved; they are imported here, at the top of the stages, so that
the lower stages need not know about the ones above them.
"""

from __future__ import annotations

import os

from cimstats.mechanisms import results as _mechanism_results  # noqa: F401  (registers "mechanisms")
from cimstats.models._result import read_saved_result
from cimstats.models.glmm import gee as _gee  # noqa: F401  (registers "gee")
from cimstats.models.glmm import results as _glmm_results  # noqa: F401  (registers "glmm")
from cimstats.models.impute import pooled as _pooled  # noqa: F401  (registers "pooled")
from cimstats.models.mediation import results as _mediation_results  # noqa: F401  (registers "mediation")
from cimstats.models import bootstrap as _bootstrap  # noqa: F401  (registers "parametric_bootstrap", "bootstrap_lrt")
from cimstats.models.mixed import results as _mixed_results  # noqa: F401  (registers "lmm")
from cimstats.models import power as _power  # noqa: F401  (registers "power")
from cimstats.models.sem import invariance as _invariance  # noqa: F401  (registers "invariance")
from cimstats.models.sem import results as _sem_results  # noqa: F401  (registers "sem")
from cimstats.models.survey import results as _survey_results  # noqa: F401  (registers "glm")

__all__ = ["load_result"]


def load_result(folder: str | os.PathLike):
    """Read a fitted result saved with ``result.save(folder)``.

    Parameters
    ----------
    folder : path
        The folder given to ``save`` (or the ``result.json`` inside it).

    Returns
    -------
    The result, of the same class as the one saved (an ``LmmResult``,
    ``GlmmResult``, ``SEMResult``, ``MediationResult``...). Its ``tidy``,
    ``glance``, ``summary``, ``to_table_spec`` and figures are identical to the
    original's; what needs the original data (predictions, refits,
    bootstraps) raises ``ResultNotAvailableError`` with the remedy.

    Raises
    ------
    cimstats.models._result.SavedResultError
        When the folder holds no saved result, the file is damaged, or it was
        written with a newer layout.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd, cimstats
    >>> rng = np.random.default_rng(3)
    >>> d = pd.DataFrame({"g": np.repeat(np.arange(20), 5), "x": rng.normal(size=100)})
    >>> d["y"] = 0.5 * d["x"] + rng.normal(size=20)[d["g"]] + rng.normal(size=100)
    >>> fit = cimstats.lmm("y ~ x + (1 | g)", d)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = fit.save(folder)
    ...     again = cimstats.load_result(folder)
    >>> again.tidy().equals(fit.tidy())
    True
    """
    return read_saved_result(folder)
