"""Parametric bootstrap of linear and generalised linear mixed models, and bootstrap likelihood-ratio tests.

As lme4's ``bootMer``: responses are simulated from the fitted model (new
random effects and new residuals each time), the model is refitted to each
simulated response, and the spread of the refitted estimates gives standard
errors and percentile intervals for the fixed effects and the random-effect
standard deviations and correlations. :func:`bootstrap_lrt` simulates under
the simpler of two nested models to give a likelihood-ratio test whose
reference distribution is not taken from the chi-square approximation
(which is conservative when a variance is tested against zero).

Replications run on the one execution layer (:mod:`cimstats._parallel`), so
``client=``, ``checkpoint=`` and ``progress=`` work as for every repeated-fit
job, with identical results on any number of workers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from cimstats._parallel import job_fingerprint, replicate, resolve_seed
from cimstats.errors import CimstatsError, ModelSpecificationError
from cimstats.models._result import FittedResult, OptimizerSummary, ResultSummary, dropped_frame
from cimstats.render.numbers import NumberFormat
from cimstats.render.spec import Cell, Row, TableSpec

from cimstats.models.glmm.fit import glmm
from cimstats.models.mixed.simulate import _lmm_refit, lmm_bootstrap_chunk, lmm_lrt_chunk, lmm_state as _lmm_state

__all__ = ["parametric_bootstrap", "bootstrap_lrt", "BootstrapResult", "BootstrapTestResult"]


def glmm_bootstrap_chunk(st: dict, seeds):
    """Simulate and refit a GLMM (with the fitting verb) for each seed."""
    rows = []
    data = st["data"].copy()
    for s in seeds:
        rng = np.random.default_rng(s)
        eta = st["eta_fixed"].copy()
        for Z, codes, nl, S in zip(st["Z"], st["codes"], st["nlevels"], st["S"]):
            u = rng.multivariate_normal(np.zeros(Z.shape[1]), S, size=nl, method="cholesky")
            eta += np.einsum("ij,ij->i", Z, u[codes])
        if st["family"] == "binomial":
            mu = 1 / (1 + np.exp(-eta))
            y = rng.binomial(st["trials"].astype(int), mu) / st["trials"]
        else:
            y = rng.poisson(np.exp(eta)).astype(float)
        data[st["response"]] = y
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kw = {"weights": st["trials"]} if st["family"] == "binomial" and st["has_trials"] else {}
                fit = glmm(st["formula"], data, family=st["family"], nagq=st["nagq"], **kw)
            rows.append(list(np.asarray(fit.params, float)) + list(fit.varcorr()["sdcor"].to_numpy(float))
                        + [float(fit.optimizer.converged)])
        except CimstatsError:
            rows.append([np.nan] * (st["width"] - 1) + [0.0])
    return np.array(rows, dtype=float)


# --------------------------------------------------------------------------- kernels and state from fits
def _sdcor_labels(fit) -> list[str]:
    vc = fit.varcorr()
    labels = []
    for r in vc.itertuples():
        if r.group == "Residual":
            labels.append("sd(Residual)")
        elif r.term2 is None or (isinstance(r.term2, float) and np.isnan(r.term2)) or r.term2 == "":
            labels.append(f"sd({r.term1} | {r.group})")
        else:
            labels.append(f"cor({r.term1}, {r.term2} | {r.group})")
    return labels


def _is_lmm(fit) -> bool:
    return getattr(fit, "kind", "") == "lmm" or type(fit).__name__ == "LmmResult"


def _is_glmm(fit) -> bool:
    return getattr(fit, "kind", "") == "glmm" or type(fit).__name__ == "GlmmResult"


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class BootstrapResult(FittedResult):
    """Parametric-bootstrap estimates of a mixed model: one column of draws per parameter.

    Attributes
    ----------
    model : str
        The model's formula and kind.
    estimates : pandas.Series
        The fitted model's estimates (fixed effects, then random-effect SDs and correlations).
    draws : pandas.DataFrame
        One row per simulated data set, one column per parameter, and
        ``converged`` (whether that refit's optimiser converged).
    """

    kind = "parametric_bootstrap"

    model: str
    estimates: pd.Series = field(repr=False)
    draws: pd.DataFrame = field(repr=False)
    seed: str = ""
    source_dropped: pd.DataFrame = field(default_factory=lambda: dropped_frame({}), repr=False)

    def _usable(self) -> pd.DataFrame:
        d = self.draws
        return d.loc[d["converged"] == 1, list(self.estimates.index)].dropna()

    def tidy(self, *, level: float = 0.95) -> pd.DataFrame:
        """One row per parameter: term, estimate (the fitted value), std_error (SD of the draws),
        statistic and p_value (NaN: percentile intervals, no test), ci_lower and ci_upper
        (percentile interval at ``level`` over the converged refits), n_used."""
        u = self._usable()
        a = (1 - level) / 2
        lo = u.quantile(a) if len(u) else pd.Series(np.nan, index=u.columns)
        hi = u.quantile(1 - a) if len(u) else pd.Series(np.nan, index=u.columns)
        terms = list(self.estimates.index)
        return pd.DataFrame({
            "term": terms, "estimate": self.estimates.to_numpy(float),
            "std_error": u.std(ddof=1).reindex(terms).to_numpy(float), "statistic": np.nan, "p_value": np.nan,
            "ci_lower": lo.reindex(terms).to_numpy(float), "ci_upper": hi.reindex(terms).to_numpy(float),
            "n_used": np.full(len(terms), len(u), dtype="int64"),
        })

    def glance(self) -> pd.DataFrame:
        return pd.DataFrame([{"model": self.model, "nsim": len(self.draws), "n_used": len(self._usable()),
                              "n_not_converged": int((self.draws["converged"] != 1).sum()), "seed": self.seed,
                              "method": "parametric bootstrap (percentile)"}])

    def vcov(self) -> pd.DataFrame:
        """Covariance of the bootstrap draws (converged refits)."""
        return self._usable().cov()

    @property
    def dropped(self) -> pd.DataFrame:
        """The rows the bootstrapped model set aside for missing values."""
        return self.source_dropped

    @property
    def optimizer(self) -> OptimizerSummary:
        n = len(self.draws)
        bad = int((self.draws["converged"] != 1).sum())
        return OptimizerSummary(method="parametric bootstrap", start=(), final=(), iterations=n, evaluations=n,
                                gradient_norm=float("nan"), converged=bad == 0,
                                message="every refit converged" if bad == 0 else
                                f"{bad} of {n} refits did not converge and were left out of the intervals")

    def to_table_spec(self, *, title: str | None = None, number=None, number_format=None, level: float = 0.95):
        fmt = number_format or NumberFormat()
        t = self.tidy(level=level)
        header = ((Cell("Parameter"), Cell("Estimate", kind="estimate"), Cell("Bootstrap SE", kind="estimate"),
                   Cell(f"{level:.0%} percentile interval", kind="ci")),)
        body = tuple(Row((Cell(r.term), Cell(fmt.estimate(r.estimate), kind="estimate", value=float(r.estimate)),
                          Cell(fmt.estimate(r.std_error), kind="estimate", value=float(r.std_error)),
                          Cell(fmt.ci(r.ci_lower, r.ci_upper), kind="ci"))) for r in t.itertuples())
        g = self.glance().iloc[0]
        return TableSpec(title=title or "Parametric bootstrap", header=header, body=body, number=number,
                         notes=(f"{g['n_used']} of {g['nsim']} simulated data sets refitted with a converged "
                                f"optimiser; model {self.model}.",))

    def summary(self) -> ResultSummary:
        return ResultSummary(title="Parametric bootstrap of a mixed model", lines=(f"Model: {self.model}",
                             f"Seed: {self.seed}"), tables=(self.to_table_spec(),),
                             notes=(self.optimizer.message.capitalize() + ".",))

    def _state(self) -> dict:
        return {"model": self.model, "estimates": self.estimates.to_frame("estimate"), "draws": self.draws,
                "seed": self.seed, "dropped": self.source_dropped}

    @classmethod
    def _from_state(cls, state):
        est = state["estimates"]["estimate"]
        est.name = None
        return cls(model=state["model"], estimates=est, draws=state["draws"], seed=state["seed"],
                   source_dropped=state["dropped"])


@dataclass(frozen=True)
class BootstrapTestResult(FittedResult):
    """A likelihood-ratio test of two nested mixed models with a parametric-bootstrap p-value."""

    kind = "bootstrap_lrt"

    null: str
    alternative: str
    lrt: float
    df: int
    statistics: pd.DataFrame = field(repr=False)
    seed: str = ""

    def _usable(self) -> np.ndarray:
        s = self.statistics
        return s.loc[s["converged"] == 1, "lrt"].dropna().to_numpy(float)

    @property
    def p_value(self) -> float:
        """(1 + number of simulated statistics at least as large as the observed one) / (1 + number used)."""
        u = self._usable()
        return float((1 + np.sum(u >= self.lrt - 1e-10)) / (1 + len(u)))

    def tidy(self, *, level: float = 0.95) -> pd.DataFrame:
        """One row: the observed LRT (estimate and statistic), its bootstrap p-value, the chi-square
        p-value for comparison (p_chisq) and the upper ``level`` quantile of the simulated statistics
        (ci_upper: the critical value; ci_lower is 0)."""
        u = self._usable()
        crit = float(np.quantile(u, level)) if len(u) else float("nan")
        return pd.DataFrame({"term": [f"{self.alternative} vs {self.null}"], "estimate": [self.lrt],
                             "std_error": [np.nan], "statistic": [self.lrt], "p_value": [self.p_value],
                             "ci_lower": [0.0], "ci_upper": [crit], "df": [self.df],
                             "p_chisq": [float(stats.chi2.sf(self.lrt, self.df)) if self.df > 0 else np.nan],
                             "n_used": [len(u)]})

    def glance(self) -> pd.DataFrame:
        return pd.DataFrame([{"null": self.null, "alternative": self.alternative, "lrt": self.lrt, "df": self.df,
                              "p_value": self.p_value, "nsim": len(self.statistics), "n_used": len(self._usable()),
                              "seed": self.seed}])

    def vcov(self) -> pd.DataFrame:
        """A 1 x 1 table holding the variance of the simulated statistics."""
        name = self.tidy()["term"].iloc[0]
        return pd.DataFrame([[float(np.var(self._usable(), ddof=1))]], index=[name], columns=[name])

    @property
    def dropped(self) -> pd.DataFrame:
        return dropped_frame({})

    @property
    def optimizer(self) -> OptimizerSummary:
        n = len(self.statistics)
        bad = n - len(self._usable())
        return OptimizerSummary(method="parametric bootstrap", start=(), final=(), iterations=n, evaluations=n,
                                gradient_norm=float("nan"), converged=bad == 0,
                                message="every refit converged" if bad == 0 else
                                f"{bad} of {n} simulated statistics were left out (a refit did not converge)")

    def to_table_spec(self, *, title: str | None = None, number=None, number_format=None):
        fmt = number_format or NumberFormat()
        t = self.tidy().iloc[0]
        header = ((Cell("Comparison"), Cell("LRT", kind="estimate"), Cell("df", kind="count"),
                   Cell("p (bootstrap)", kind="p_value"), Cell("p (chi-square)", kind="p_value")),)
        body = (Row((Cell(t["term"]), Cell(fmt.estimate(t["estimate"]), kind="estimate", value=float(t["estimate"])),
                     Cell(str(int(t["df"])), kind="count", value=int(t["df"])),
                     Cell(fmt.p(t["p_value"]), kind="p_value", value=float(t["p_value"])),
                     Cell(fmt.p(t["p_chisq"]), kind="p_value"))),)
        return TableSpec(title=title or "Parametric-bootstrap likelihood-ratio test", header=header, body=body,
                         number=number, notes=(f"{int(t['n_used'])} simulated data sets under the null model; "
                                               f"both models fitted by maximum likelihood.",))

    def summary(self) -> ResultSummary:
        return ResultSummary(title="Parametric-bootstrap likelihood-ratio test",
                             lines=(f"Null: {self.null}", f"Alternative: {self.alternative}", f"Seed: {self.seed}"),
                             tables=(self.to_table_spec(),), notes=(self.optimizer.message.capitalize() + ".",))

    def _state(self) -> dict:
        return {"null": self.null, "alternative": self.alternative, "lrt": self.lrt, "df": self.df,
                "statistics": self.statistics, "seed": self.seed}

    @classmethod
    def _from_state(cls, s):
        return cls(null=s["null"], alternative=s["alternative"], lrt=float(s["lrt"]), df=int(s["df"]),
                   statistics=s["statistics"], seed=s["seed"])


# --------------------------------------------------------------------------- verbs
def parametric_bootstrap(fit, *, data=None, nsim: int = 1000, seed=None, client=None, checkpoint=None,
                         progress=None, chunk_size: int | None = None) -> BootstrapResult:
    """Parametric bootstrap of a fitted LMM or GLMM (as lme4's ``bootMer``).

    Parameters
    ----------
    fit : LmmResult or GlmmResult
    data : pandas.DataFrame, optional
        GLMMs only: the data the model was fitted to (each simulated response
        is refitted with :func:`cimstats.glmm`); the response must be one column.
    nsim : int
        Number of simulated data sets.
    seed : int, optional
        Makes the bootstrap repeatable; identical on any number of workers.
    client, checkpoint, progress, chunk_size
        Where and how to run (see :mod:`cimstats._parallel`).

    Returns
    -------
    BootstrapResult
        ``tidy(level=)`` gives bootstrap SEs and percentile intervals for the
        fixed effects and the random-effect SDs and correlations; ``draws``
        holds every refit.

    Examples
    --------
    >>> import numpy as np, pandas as pd, cimstats
    >>> from cimstats.models.bootstrap import parametric_bootstrap
    >>> rng = np.random.default_rng(2)
    >>> d = pd.DataFrame({"g": np.repeat(np.arange(15), 6), "x": rng.normal(size=90)})
    >>> d["y"] = 0.4 * d["x"] + rng.normal(size=15)[d["g"]] + rng.normal(size=90)
    >>> boot = parametric_bootstrap(cimstats.lmm("y ~ x + (1 | g)", d), nsim=40, seed=1, progress=False)
    >>> boot.tidy()["term"].tolist()
    ['(Intercept)', 'x', 'sd((Intercept) | g)', 'sd(Residual)']
    """
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 2:
        raise ModelSpecificationError(f"`nsim` is {nsim!r}; give a whole number of simulated data sets, at least 2.")
    entropy = resolve_seed(seed, checkpoint)
    names = list(fit.params.index) + _sdcor_labels(fit)
    estimates = pd.Series(list(np.asarray(fit.params, float)) + list(fit.varcorr()["sdcor"].to_numpy(float)),
                          index=names)
    if _is_lmm(fit):
        st = _lmm_state(fit)
        st["width"] = len(names) + 1
        task = lmm_bootstrap_chunk
    elif _is_glmm(fit):
        st = _glmm_state(fit, data)
        st["width"] = len(names) + 1
        task = glmm_bootstrap_chunk
    else:
        raise ModelSpecificationError(
            f"`fit` is a {type(fit).__name__}; the parametric bootstrap takes a model from cimstats.lmm or cimstats.glmm.")
    fp = job_fingerprint("parametric_bootstrap", fit.formula, names, estimates.to_numpy())
    draws = replicate(task, int(nsim), seed=entropy, data=st, chunk_size=chunk_size, client=client,
                      checkpoint=checkpoint, progress=progress, name="parametric bootstrap", fingerprint=fp)
    frame = pd.DataFrame(draws[:, :-1], columns=names)
    frame["converged"] = draws[:, -1].astype("int64")
    return BootstrapResult(model=f"{fit.formula} ({getattr(fit, 'kind', '') or type(fit).__name__})",
                           estimates=estimates, draws=frame, seed=str(entropy), source_dropped=_dropped_of(fit))


def _dropped_of(fit) -> pd.DataFrame:
    d = getattr(fit, "dropped", None)
    if isinstance(d, pd.DataFrame):
        return dropped_frame(d)
    return dropped_frame(getattr(fit, "dropped_by_column", {}) or {})


def _glmm_state(fit, data) -> dict:
    frame = getattr(fit, "_frame", None)
    if frame is None:
        raise ModelSpecificationError("This model was loaded from a saved folder; fit it again to bootstrap it.")
    if fit.family not in ("binomial", "poisson"):
        raise ModelSpecificationError(f"The parametric bootstrap of a GLMM supports binomial and poisson families; "
                                      f"this model is {fit.family}.")
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecificationError("Give `data=`, the DataFrame the GLMM was fitted to, so that each simulated "
                                      "response can be refitted.")
    response = frame.spec.response
    if response not in data.columns:
        raise ModelSpecificationError(
            f"The model's response {response!r} is not one column of `data`; the parametric bootstrap of a GLMM "
            f"needs a plain response column (write cbind() responses as a proportion with weights=).")
    used = data.loc[frame.rows].reset_index(drop=True)
    trials = np.asarray(getattr(fit, "_m", np.ones(len(used))), dtype=float)
    offset = np.asarray(getattr(fit, "_offset", 0.0) if getattr(fit, "_offset", None) is not None else 0.0)
    eta = frame.X @ np.asarray(fit.params, float) + offset
    return {"data": used, "formula": fit.formula, "family": fit.family, "nagq": int(getattr(fit, "nagq", 1)),
            "response": response, "eta_fixed": np.asarray(eta, float), "trials": trials,
            "has_trials": bool(np.any(trials != 1)), "Z": [b.Z for b in frame.random],
            "codes": [b.codes for b in frame.random], "nlevels": [b.nlevels for b in frame.random],
            "S": [np.asarray(S, float) for S in fit._covs()]}


def bootstrap_lrt(null, alternative, *, nsim: int = 1000, seed=None, client=None, checkpoint=None,
                  progress=None, chunk_size: int | None = None) -> BootstrapTestResult:
    """Likelihood-ratio test of two nested linear mixed models with a parametric-bootstrap p-value.

    Responses are simulated from ``null``; both models are refitted by
    maximum likelihood to each, and the p-value is the share of simulated
    statistics at least as large as the observed one (as pbkrtest's
    ``PBmodcomp``). Use it for a variance component, where the chi-square
    reference is conservative.

    Parameters
    ----------
    null, alternative : LmmResult
        Fitted to the same rows and response; ``null`` is the simpler model.
    nsim, seed, client, checkpoint, progress, chunk_size
        As :func:`parametric_bootstrap`.

    Returns
    -------
    BootstrapTestResult
    """
    for name, f in (("null", null), ("alternative", alternative)):
        if not _is_lmm(f):
            raise ModelSpecificationError(f"`{name}` is a {type(f).__name__}; the bootstrap LRT takes two models "
                                          f"from cimstats.lmm.")
    s0, s1 = _lmm_state(null), _lmm_state(alternative)
    if s0["X"].shape[0] != s1["X"].shape[0] or not np.allclose(null._frame.y, alternative._frame.y):
        raise ModelSpecificationError("The two models were not fitted to the same rows and response; fit both to "
                                      "the same data (drop missing values first) so that they are nested.")
    y = null._frame.y
    _, ev0, _, _, _ = _lmm_refit(s0, y, s0["theta"], False)
    _, ev1, _, _, _ = _lmm_refit(s1, y, s1["theta"], False)
    lrt = max(float(ev0["deviance"] - ev1["deviance"]), 0.0)
    k0 = len(null.params) + len(null.theta) + 1
    k1 = len(alternative.params) + len(alternative.theta) + 1
    if k1 <= k0:
        raise ModelSpecificationError(f"`alternative` has {k1} parameters and `null` {k0}; the alternative must be "
                                      f"the larger model.")
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 2:
        raise ModelSpecificationError(f"`nsim` is {nsim!r}; give a whole number of simulated data sets, at least 2.")
    st = dict(s0, alt=s1)
    entropy = resolve_seed(seed, checkpoint)
    fp = job_fingerprint("bootstrap_lrt", null.formula, alternative.formula, lrt)
    sims = replicate(lmm_lrt_chunk, int(nsim), seed=entropy, data=st, chunk_size=chunk_size, client=client,
                     checkpoint=checkpoint, progress=progress, name="bootstrap LRT", fingerprint=fp)
    table = pd.DataFrame({"lrt": sims[:, 0], "converged": sims[:, 1].astype("int64")})
    return BootstrapTestResult(null=null.formula, alternative=alternative.formula, lrt=lrt, df=k1 - k0,
                               statistics=table, seed=str(entropy))
