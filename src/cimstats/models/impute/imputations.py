"""Multiple imputation by chained equations: :func:`impute` and the :class:`Imputations` it returns."""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from cimstats.errors import ModelSpecificationError
from cimstats.models._result import POOLERS
from cimstats.models.impute.chained import PASSIVE_RULES, Variable, run_chains
from cimstats.models.impute.pooled import PooledResult, likelihood_ratio_test, pool
from cimstats.models.impute.chained import _passive
from cimstats.models.mixed._threads import _blas_single_thread
from cimstats.render.notebook import notebook_html

__all__ = ["impute", "Imputations"]

#: methods allowed per kind of variable (the first is the default)
METHODS = {"numeric": ("pmm", "norm"), "binary": ("logreg", "pmm"), "nominal": ("polyreg",),
           "ordinal": ("polr", "polyreg")}
#: most imputations made in one call
MAX_M = 1000
#: a text column with more distinct values than this is free text, not a category
MAX_TEXT_LEVELS = 20


class Imputations:
    """``m`` completed data sets, how they were made, and pooling of models fitted to them.

    Made by :func:`cimstats.impute` or read from imputations made elsewhere
    with :meth:`Imputations.from_long`.

    Attributes
    ----------
    m : int
        Number of completed data sets.
    data : DataFrame
        The incomplete data (missing cells as ``NaN``/``<NA>``).
    datasets : list of DataFrame
        The completed data sets (``complete(k)`` gives the k-th, 1-based as in mice).
    where : DataFrame of bool
        True for every imputed cell.
    missingness : DataFrame of str
        ``"observed"``, ``"system"`` (an empty cell) or ``"declared"`` (a
        declared missing code of a survey file) per cell; ``codes`` holds the
        codes of the declared cells (``Survey.missing``).
    chains : DataFrame
        Convergence trace: chain (1..m), iteration, variable, mean, sd of the
        imputed cells after each sweep (categories as numbers 1..K, as mice).
    methods : dict
        Imputation method of each variable (``""`` for none).
    seed : int or None
        The seed the chains were started from (repeats them exactly).
    """

    def __init__(self, data: pd.DataFrame, datasets: list[pd.DataFrame], where: pd.DataFrame, *,
                 missingness: pd.DataFrame | None = None, codes: pd.DataFrame | None = None,
                 chains: pd.DataFrame | None = None, methods: Mapping[str, str] | None = None,
                 seed: int | None = None, cluster: str | None = None, passive: Mapping | None = None,
                 iterations: int | None = None):
        self.data = data
        self.datasets = list(datasets)
        self.where = where
        if missingness is None:
            missingness = pd.DataFrame(np.where(data.isna().to_numpy(), "system", "observed"), index=data.index,
                                       columns=data.columns)
        self.missingness = missingness
        self.codes = codes if codes is not None else pd.DataFrame(index=data.index)
        self.chains = chains if chains is not None else pd.DataFrame(
            columns=["chain", "iteration", "variable", "mean", "sd"])
        self.methods = dict(methods or {})
        self.seed = seed
        self.cluster = cluster
        self.passive = dict(passive or {})
        self.iterations = iterations

    # ------------------------------------------------------------------ access
    @property
    def m(self) -> int:
        return len(self.datasets)

    def __len__(self) -> int:
        return self.m

    def __iter__(self):
        return iter(self.datasets)

    def __repr__(self) -> str:
        n_imp = int(self.where.to_numpy().sum())
        return (f"<Imputations: m = {self.m} completed data sets of {self.data.shape[0]} rows x "
                f"{self.data.shape[1]} variables, {n_imp} cells imputed>")

    def _repr_html_(self) -> str:
        return notebook_html(repr(self).strip("<>"), table=self.summary_table, more="imputations.summary_table")

    def complete(self, k: int) -> pd.DataFrame:
        """The k-th completed data set (k = 1..m, as ``mice::complete(imp, k)``); 0 gives the incomplete data."""
        if not isinstance(k, (int, np.integer)) or not 0 <= k <= self.m:
            raise ModelSpecificationError(f"`k` is {k!r}; expected a whole number from 1 to {self.m} (0 for the "
                                          "incomplete data).")
        return (self.data if k == 0 else self.datasets[k - 1]).copy()

    def long(self, *, include: bool = False, imp: str = ".imp", id: str = ".id") -> pd.DataFrame:
        """All completed data sets stacked (mice's ``complete(imp, "long")``): columns ``.imp``, ``.id``, variables.

        ``include=True`` adds the incomplete data as ``.imp`` 0.
        """
        frames = ([(0, self.data)] if include else []) + [(k + 1, d) for k, d in enumerate(self.datasets)]
        out = []
        for k, d in frames:
            f = d.reset_index(drop=True).copy()
            f.insert(0, id, np.arange(1, len(d) + 1))
            f.insert(0, imp, k)
            out.append(f)
        return pd.concat(out, ignore_index=True)

    @property
    def summary_table(self) -> pd.DataFrame:
        """Per variable: method, n_missing, n_imputed, n_declared (declared missing codes), n_kept_missing."""
        rows = []
        for c in self.data.columns:
            kind = self.missingness[c]
            imp = self.where[c]
            rows.append({"variable": str(c), "method": self.methods.get(c, ""),
                         "n_missing": int((kind != "observed").sum()), "n_imputed": int(imp.sum()),
                         "n_declared": int((kind == "declared").sum()),
                         "n_kept_missing": int(((kind != "observed") & ~imp).sum())})
        return pd.DataFrame(rows)

    def plot_chains(self, variables: Sequence[str] | None = None, *, title: str | None = None):
        """Convergence plot: mean and sd of the imputed values per sweep, one line per chain.

        Chains that mix (the lines cross and show no trend after the first
        sweeps) have converged; a trend calls for more ``iterations``.

        Parameters
        ----------
        variables : list of str, optional
            The imputed variables shown (all by default).
        title : str, optional

        Returns
        -------
        cimstats.render.figures.Figure
            Its ``data`` is the part of :attr:`chains` drawn.
        """
        from cimstats.render.figures._figure import COLOURS, Figure, new_figure  # deferred: figures load matplotlib

        ch = self.chains
        names = list(dict.fromkeys(ch["variable"])) if variables is None else [str(v) for v in variables]
        unknown = [v for v in names if v not in set(ch["variable"])]
        if unknown or not names:
            raise ModelSpecificationError(f"`variables` lists {unknown or 'nothing'}; the chains cover "
                                          f"{', '.join(dict.fromkeys(ch['variable'])) or 'no variable'}.")
        data = ch[ch["variable"].isin(names)].reset_index(drop=True)
        palette = list(COLOURS.values())[1:]
        heading = title or f"Convergence of {len(names)} imputed variable{'s' if len(names) > 1 else ''}"

        def draw():
            fig = new_figure(6.0, 1.6 * len(names) + 0.6)
            axes = fig.subplots(len(names), 2, squeeze=False)
            for row, name in enumerate(names):
                part = data[data["variable"] == name]
                for k, (chain, grp) in enumerate(part.groupby("chain", sort=True)):
                    for col, stat in enumerate(("mean", "sd")):
                        axes[row, col].plot(grp["iteration"], grp[stat], lw=0.8, color=palette[k % len(palette)])
                axes[row, 0].set_ylabel(name, fontsize=8)
                for col, stat in enumerate(("mean", "sd")):
                    axes[row, col].tick_params(labelsize=7)
                    if row == 0:
                        axes[row, col].set_title(stat, fontsize=9)
            for col in range(2):
                axes[-1, col].set_xlabel("iteration", fontsize=8)
            fig.suptitle(heading, fontsize=10)
            return fig

        alt = (f"Mean and standard deviation of the imputed values of {', '.join(names)} after each of "
               f"{int(data['iteration'].max())} sweeps, one line for each of {data['chain'].nunique()} chains.")
        return Figure(title=heading, alt_text=alt, data=data, kind="chains", _draw=draw)

    # ------------------------------------------------------------------ pooling
    def fit(self, verb: Callable, *args, dfcom: float | None = None, **kw) -> PooledResult:
        """Fit a model to every completed data set and pool the results with Rubin's rules.

        Parameters
        ----------
        verb : callable
            A model verb such as :func:`cimstats.lmm`, :func:`cimstats.glmm`,
            :func:`cimstats.sem`, :func:`cimstats.mediation`, ``cimstats.glm``,
            or any function whose result has ``tidy()`` (and ideally
            ``vcov()``), or a statsmodels result (``params``, ``cov_params()``).
        *args
            Passed on (the model: a formula or model syntax). Each completed
            data set is given as the verb's ``data`` argument, wherever that
            argument stands (``lmm(formula, data)``, ``sem(data, model)``); a
            function without a ``data`` argument gets it second, after the
            model, or first when no model is given.
        dfcom : float, optional
            Complete-data degrees of freedom; by default the model's residual
            df (as ``mice::pool``).
        **kw
            Passed on to ``verb``.

        Returns
        -------
        PooledResult
            ``tidy()`` columns term, estimate, std_error, df, statistic,
            p_value, ci_lower, ci_upper, riv, lambda, fmi, ubar, b.

        Notes
        -----
        Structural equation models (:func:`cimstats.sem`) also get pooled fit
        measures (``glance()``, ``fit_measures()``: chi-square pooled by D2,
        CFI, TLI, RMSEA, as semTools) and large-sample df. Mediation analyses
        (:func:`cimstats.mediation`) run their bootstrap on every completed
        set (with ``seed=s``, imputation k uses seed ``s + k - 1``) and the
        m x B resamples are stacked: the effects' intervals are percentile
        intervals of the stacked draws, the point estimates Rubin's means
        (``bootstrap_draws()`` gives the draws). A ``seed`` is advanced by one
        per completed set for every verb. Mechanism tests
        (:func:`cimstats.test_mechanisms`, e.g. through
        ``lambda data, **kw: test_mechanisms({"patients": data, "alters": alters}, plan, **kw)``)
        are pooled hypothesis by hypothesis into one mechanism table with
        ``fmi`` and ``m`` columns, as an analysis plan's ``imputation``
        section does.

        Examples
        --------
        >>> import numpy as np, pandas as pd, cimstats
        >>> rng = np.random.default_rng(2)
        >>> d = pd.DataFrame({"g": np.repeat(np.arange(30), 6), "x": rng.normal(size=180)})
        >>> d["y"] = 0.5 * d["x"] + rng.normal(size=30)[d["g"]] + rng.normal(size=180)
        >>> d.loc[rng.random(180) < 0.2, "x"] = np.nan
        >>> imp = cimstats.impute(d, m=5, cluster="g", seed=1, iterations=5)
        >>> pooled = imp.fit(cimstats.lmm, "y ~ x + (1 | g)")
        >>> list(pooled.tidy()["term"])
        ['(Intercept)', 'x']
        """
        if not callable(verb):
            raise ModelSpecificationError(f"`verb` is a {type(verb).__name__}; expected a model function such as "
                                          "cimstats.lmm.")
        seed = _bootstrap_seed(verb, kw)
        if seed is not None:
            # each completed set gets its own resamples (seed, seed + 1, ...), so the stacked draws are m x B
            # different resamples, repeatable from the one seed given
            fits = [self._call(verb, d, args, {**kw, "seed": seed + k}) for k, d in enumerate(self.datasets)]
        else:
            fits = [self._call(verb, d, args, kw) for d in self.datasets]
        own = POOLERS.get(getattr(fits[0], "kind", "")) if fits else None
        if own is not None:  # e.g. mechanism tables, pooled hypothesis by hypothesis
            return own(fits)
        name = getattr(verb, "__name__", type(verb).__name__)
        shown = ", ".join([repr(a) for a in args[:1]] + [f"{k}={v!r}" for k, v in kw.items()])
        return pool(fits, dfcom=dfcom, description=f"{name}({shown})")

    @staticmethod
    def _call(verb, data, args, kw):
        """Call ``verb`` with the completed data as its ``data`` argument, whatever place that argument has."""
        try:
            params = inspect.signature(verb).parameters
        except (TypeError, ValueError):
            params = {}
        named = inspect.Parameter.POSITIONAL_OR_KEYWORD
        if "data" in params and params["data"].kind in (named, inspect.Parameter.KEYWORD_ONLY) \
                and "data" not in kw:
            others = [p.name for p in params.values() if p.kind == named and p.name != "data"]
            if len(args) <= len(others):
                return verb(**dict(zip(others, args)), data=data, **kw)
        if args:
            return verb(args[0], data, *args[1:], **kw)
        return verb(data, **kw)

    def likelihood_ratio(self, verb: Callable, full, reduced, *, method: str = "D2", **kw) -> pd.DataFrame:
        """Pooled likelihood-ratio test of a model against a nested one, both fitted to every data set.

        ``verb(full, data, **kw)`` and ``verb(reduced, data, **kw)`` must report
        a log-likelihood (``glance()`` column ``loglik``); fit linear mixed
        models by ML (``reml=False``) for tests of fixed effects.

        Parameters
        ----------
        method : {"D2", "D3"}
            ``"D2"`` (default) combines the per-imputation likelihood-ratio
            statistics (Li, Meng, Raghunathan and Rubin 1991; ``mice::D2``);
            ``"D3"`` is Meng and Rubin's (1992) test (``mice::D3``), which also
            evaluates both models at their pooled estimates, and needs fits that
            allow that (statsmodels OLS and GLM). The ``test`` column of the
            result names the method used.

        See :func:`cimstats.models.impute.pooled.likelihood_ratio_test`.
        """
        f1 = [self._call(verb, d, (full,), kw) for d in self.datasets]
        f0 = [self._call(verb, d, (reduced,), kw) for d in self.datasets]
        return likelihood_ratio_test(f1, f0, method=method)

    # ------------------------------------------------------------------ from elsewhere
    @classmethod
    def from_long(cls, df: pd.DataFrame, imp: str = ".imp", id: str = ".id") -> "Imputations":
        """Imputations made elsewhere, stacked in long form (mice ``complete(imp, "long", include = TRUE)``, Stata ``mi`` flong).

        Parameters
        ----------
        df : DataFrame
            One row per case per imputation; the column ``imp`` numbers the
            imputations (1..m, with 0 the incomplete data, optional) and
            ``id`` the cases (the same ids in every imputation). Stata's
            ``mi`` flong uses ``_mi_m`` and ``_mi_id``.
        imp, id : str
            Names of those two columns.

        Returns
        -------
        Imputations
            With ``.imp`` 0 present, ``where`` marks its missing cells; without
            it, the cells that differ between imputations (a cell imputed with
            the same value every time cannot be told from an observed one).
        """
        if not isinstance(df, pd.DataFrame):
            raise ModelSpecificationError(f"`df` is a {type(df).__name__}; expected a DataFrame in long form.")
        for name, what in ((imp, "imp"), (id, "id")):
            if name not in df.columns:
                raise ModelSpecificationError(f"`{what}=` names the column {name!r}, which `df` lacks; columns: "
                                              f"{', '.join(map(str, df.columns[:12]))}.")
        if df[imp].isna().any() or df[id].isna().any():
            raise ModelSpecificationError(f"The columns {imp!r} and {id!r} must have no missing values.")
        numbers = sorted(pd.unique(df[imp]))
        completed_k = [k for k in numbers if k != 0]
        if len(completed_k) < 2:
            raise ModelSpecificationError(f"`df` holds {len(completed_k)} completed data set(s) in {imp!r}; pooling "
                                          "needs at least 2.")
        # Stata's own bookkeeping columns (``_mi_miss``) are not variables
        variables = [c for c in df.columns if c not in (imp, id) and not str(c).startswith("_mi_")]
        ids0 = None
        frames = {}
        for k in numbers:
            part = df[df[imp] == k]
            ids = part[id].to_numpy()
            if len(pd.unique(ids)) != len(ids):
                raise ModelSpecificationError(f"Imputation {k} repeats case ids in {id!r}; each case must appear "
                                              "once per imputation.")
            part = part.set_index(id).sort_index()[variables]
            if ids0 is None:
                ids0 = part.index
            elif not part.index.equals(ids0):
                raise ModelSpecificationError(f"Imputation {k} has other case ids than imputation {numbers[0]}; every "
                                              "imputation must hold the same cases.")
            frames[k] = part
        data_ids = ids0
        completed = [frames[k].reset_index(drop=True) for k in completed_k]
        if 0 in frames:
            data = frames[0].reset_index(drop=True)
            where = data.isna() & completed[0].notna()
        else:
            data = completed[0].copy()
            differ = np.zeros(data.shape, dtype=bool)
            for d in completed[1:]:
                a, b = data.astype(object).to_numpy(), d.astype(object).to_numpy()
                differ |= ~((a == b) | (pd.isna(a) & pd.isna(b)))
            where = pd.DataFrame(differ, columns=data.columns)
            for c in data.columns:
                data.loc[where[c].to_numpy(), c] = np.nan
        data.index = pd.RangeIndex(len(data))
        out = cls(data, completed, where, methods={c: "(made elsewhere)" for c in variables if where[c].any()})
        out.ids = pd.Index(data_ids, name=id)
        return out


# ====================================================================== impute()
def impute(data, m: int = 20, *, method: Mapping[str, str] | None = None, cluster: str | None = None,
           seed: int | None = None, iterations: int = 10, impute_codes: Any = "all",
           passive: Mapping[str, tuple] | None = None, donors: int = 5) -> Imputations:
    """Multiple imputation of missing values by chained equations (as R's mice).

    Each incomplete variable is imputed in turn from a model given all the
    other variables, and the cycle is repeated ``iterations`` times in each of
    ``m`` independent chains; the last state of each chain is one completed
    data set. Analyse each completed set and pool the results with
    :meth:`Imputations.fit` (Rubin's rules).

    Parameters
    ----------
    data : DataFrame or Survey
        The incomplete data. With a :class:`cimstats.Survey`, cells that held a
        declared missing code (SPSS user-missing values, Stata ``.a``-``.z``)
        are told apart from empty cells; ``impute_codes`` says which are imputed.
    m : int, default 20
        Number of completed data sets (at least 2).
    method : mapping of column to method, optional
        Overrides the default method of a column: ``"pmm"`` (predictive mean
        matching, the default for numbers, 5 donors as mice), ``"norm"``
        (Bayesian linear regression), ``"logreg"`` (default for two
        categories), ``"polyreg"`` (default for unordered categories: a
        multinomial logit), ``"polr"`` (default for ordered categories: a
        proportional-odds model), or ``""`` (not imputed; the column is carried
        unchanged and still predicts the others unless it is free text).
    cluster : str, optional
        Column identifying clusters (schools, practices, egos). Each conditional
        model then also gets the cluster means of its predictors and the
        variable's own mean over the other members of its cluster (the
        cluster-means approach to two-level imputation, not a random intercept
        drawn by Gibbs sampling as mice's ``2l.norm``). The cluster column is
        not imputed and must be complete.
    seed : int, optional
        Seed of the chains; the same seed gives the same imputations.
    iterations : int, default 10
        Sweeps through the variables in each chain.
    impute_codes : "all", None, sequence or mapping, default "all"
        Which declared missing codes of a Survey to impute: ``"all"``, ``None``
        (none: those cells stay missing in every completed set and enter other
        variables' models through a missing-indicator), a list of codes (for
        every variable), or a mapping column -> list of codes (or ``"all"``).
        Empty cells (system-missing) are always imputed.
    passive : mapping of column to (rule, items), optional
        Derived scores recomputed from the imputed items after every draw
        (passive imputation), e.g. ``{"score": ("mean", ["i1", "i2", "i3"])}``;
        rules: ``"mean"``, ``"sum"``, ``"min"``, ``"max"`` over the available
        items. The score is not used to impute its own items.
    donors : int, default 5
        Donors per missing value in predictive mean matching.

    Returns
    -------
    Imputations
        ``datasets`` (the m completed sets), ``where`` (cells imputed),
        ``chains`` (mean and sd of the imputed cells per sweep per chain, for
        convergence plots), ``missingness``, ``methods``, ``seed``.

    Raises
    ------
    ModelSpecificationError
        m < 2, a column that is entirely missing, a text column of free text,
        an unknown column or method, a passive rule that is not declarative.

    Notes
    -----
    Predictive mean matching: least-squares predictions for the observed
    cases and predictions from a posterior draw of the coefficients for the
    missing ones; each missing case takes the observed value of a donor drawn
    among the ``donors`` closest (type-1 matching, mice's default). The
    logistic, multinomial and proportional-odds models draw their coefficients
    from the approximate normal posterior (a small ridge penalty keeps
    separated data finite, where mice augments the data). Starting values are
    random draws from the observed values.

    References
    ----------
    van Buuren S, Groothuis-Oudshoorn K (2011). mice: Multivariate imputation
    by chained equations in R. *J Stat Softw* 45(3).

    Validated against: ``mice::pool`` on imputations stored from mice
    (tests/reference/mice.R); coverage by simulation (benchmarks/impute_quality.py).

    Examples
    --------
    >>> import numpy as np, pandas as pd, cimstats
    >>> rng = np.random.default_rng(1)
    >>> d = pd.DataFrame({"x": rng.normal(size=200)})
    >>> d["y"] = d["x"] + rng.normal(size=200)
    >>> d.loc[rng.random(200) < 0.3, "y"] = np.nan
    >>> imp = cimstats.impute(d, m=5, seed=1, iterations=5)
    >>> imp.m, int(imp.where["y"].sum()) == int(d["y"].isna().sum())
    (5, True)
    """
    frame, codes_rec = _unpack(data)
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 2:
        raise ModelSpecificationError(f"`m` is {m!r}; Rubin's rules need at least 2 imputations (20 or more is "
                                      "usual).")
    if m > MAX_M:
        raise ModelSpecificationError(f"`m` is {m}; at most {MAX_M} imputations are made in one call (100 is "
                                      "plenty for Monte Carlo error below any reporting precision).")
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or not 1 <= iterations <= 10_000:
        raise ModelSpecificationError(f"`iterations` is {iterations!r}; expected a whole number from 1 to 10000.")
    if isinstance(donors, bool) or not isinstance(donors, (int, np.integer)) or donors < 1:
        raise ModelSpecificationError(f"`donors` is {donors!r}; expected a whole number of at least 1.")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2 ** 63))
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ModelSpecificationError(f"`seed` is {seed!r}; expected a non-negative whole number.")
    method = dict(method or {})
    passive = dict(passive or {})
    cols = [str(c) for c in frame.columns]
    if len(set(cols)) != len(cols):
        raise ModelSpecificationError("`data` has duplicate column names; rename them before imputing.")
    frame = frame.copy()
    frame.columns = cols
    unknown = [c for c in method if c not in cols]
    if unknown:
        raise ModelSpecificationError(f"`method` names {unknown}, which are not columns of `data`; columns: "
                                      f"{', '.join(cols[:15])}.")
    if cluster is not None:
        if cluster not in cols:
            raise ModelSpecificationError(f"`cluster` is {cluster!r}, which is not a column of `data`.")
        if frame[cluster].isna().any():
            raise ModelSpecificationError(f"The cluster column {cluster!r} has {int(frame[cluster].isna().sum())} "
                                          "missing values; every row needs its cluster.")
    n = len(frame)
    if n < 2:
        raise ModelSpecificationError(f"`data` has {n} row(s); imputation needs data to learn from.")

    # which cells are missing, and of what kind
    declared = pd.DataFrame(False, index=frame.index, columns=cols)
    for c in codes_rec.columns:
        if c in declared.columns:
            declared[c] = codes_rec[c].notna().to_numpy()
    isna = frame.isna()
    missingness = pd.DataFrame(np.where(declared.to_numpy(), "declared", np.where(isna.to_numpy(), "system",
                                                                                    "observed")),
                               index=frame.index, columns=cols)
    chosen = _chosen_codes(impute_codes, codes_rec, cols)
    to_impute = isna.to_numpy() & ~declared.to_numpy()
    for j, c in enumerate(cols):
        if c in chosen:
            to_impute[:, j] |= chosen[c]

    # the passive scores
    _check_passive(passive, frame, cols, method, cluster)
    for name, (rule, items) in passive.items():
        if name not in frame.columns:
            frame[name] = np.nan
            cols.append(name)
            missingness[name] = "system"
            to_impute = np.column_stack([to_impute, np.zeros(n, dtype=bool)])

    variables, back = [], {}
    methods_used = {}
    for j, c in enumerate(cols):
        col = frame[c]
        imp_mask = to_impute[:, j].copy()
        if c == cluster:
            variables.append(Variable(c, "none", np.zeros(n), np.zeros(n, dtype=bool), "", predictor=False))
            methods_used[c] = ""
            continue
        if c in passive:
            continue  # built below, after its items
        kind, values, levels = _classify(c, col, method.get(c))
        chosen_method = method.get(c)
        if kind == "none" or chosen_method == "":
            variables.append(Variable(c, kind, values, np.zeros(n, dtype=bool), "",
                                      n_levels=len(levels or ()), predictor=kind != "none"))
            methods_used[c] = ""
            back[c] = (kind, levels)
            continue
        if imp_mask.any():
            if np.isnan(values).all():
                raise ModelSpecificationError(
                    f"Column {c!r} is missing in all {n} rows; there is nothing to impute it from; drop it or give "
                    f"method={{{c!r}: ''}} to carry it unchanged.")
            if len(np.unique(values[~np.isnan(values)])) < 2 and kind != "numeric":
                raise ModelSpecificationError(f"Column {c!r} has a single observed category; a model cannot impute "
                                              "it; drop it or give method={'" + c + "': ''}.")
        allowed = METHODS[kind]
        mth = chosen_method or allowed[0]
        if mth not in allowed:
            raise ModelSpecificationError(f"`method` gives {mth!r} for column {c!r}, a {kind} variable; expected one of "
                                          f"{', '.join(allowed)} or '' (not imputed).")
        variables.append(Variable(c, kind, values, imp_mask & np.isnan(values), mth if imp_mask.any() else "",
                                  n_levels=len(levels or ())))
        methods_used[c] = mth if imp_mask.any() else ""
        back[c] = (kind, levels)
    for name, (rule, items) in passive.items():
        j = cols.index(name)
        src = [next(v for v in variables if v.name == s) for s in items]
        any_imp = np.any(np.column_stack([v.impute for v in src]), axis=1)
        vals = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, copy=True)

        computed = _passive(rule, [v.values for v in src])
        fill = np.isnan(vals) & ~any_imp
        vals[fill] = computed[fill]
        frame[name] = vals  # the score wherever its items are observed
        missingness.loc[fill, name] = "observed"
        mask = any_imp
        variables.append(Variable(name, "passive", vals, mask, "passive", rule=rule, sources=tuple(items)))
        methods_used[name] = f"passive {rule} of {', '.join(items)}" if mask.any() else ""
        back[name] = ("numeric", None)

    cl = pd.factorize(frame[cluster])[0] if cluster is not None else None

    with _blas_single_thread():  # many small products: threaded BLAS only adds contention
        completed_cols, chains = run_chains(variables, int(m), int(iterations), seed, cluster=cl, donors=int(donors))

    # back to data frames
    datasets = []
    for state in completed_cols:
        d = frame.copy()
        for v in variables:
            if not v.impute.any():
                continue
            kind, levels = back[v.name]
            rows = v.impute
            d[v.name] = _restore(frame[v.name], state[v.name], rows, kind, levels)
        datasets.append(d)
    where = pd.DataFrame(False, index=frame.index, columns=cols)
    for v in variables:
        where[v.name] = v.impute
    rows = []
    for c in range(chains.shape[0]):
        for it in range(chains.shape[1]):
            for j, v in enumerate(variables):
                if v.impute.any():
                    rows.append((c + 1, it + 1, v.name, chains[c, it, j, 0], chains[c, it, j, 1]))
    chain_frame = pd.DataFrame(rows, columns=["chain", "iteration", "variable", "mean", "sd"])
    data_out = frame[cols]
    return Imputations(data_out, datasets, where, missingness=missingness[cols], codes=codes_rec,
                       chains=chain_frame, methods=methods_used, seed=int(seed), cluster=cluster,
                       passive=passive, iterations=int(iterations))


# ---------------------------------------------------------------------- helpers
def _bootstrap_seed(verb, kw) -> int | None:
    """The seed of the first completed set; set k gets ``seed + k - 1``, so resamples differ between sets.

    A ``seed`` given to :meth:`Imputations.fit` is advanced by one per completed set (verbs with a bootstrap,
    such as cimstats.mediation and cimstats.test_mechanisms, then stack m x B different resamples);
    cimstats.test_mechanisms called without one starts from its own default seed. Otherwise None.
    """
    seed = kw.get("seed")
    if seed is None and getattr(verb, "__module__", "") == "cimstats.mechanisms.evaluate" and \
            getattr(verb, "__name__", "") == "test_mechanisms":
        seed = inspect.signature(verb).parameters["seed"].default
    return int(seed) if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else None


def _unpack(data):
    if isinstance(data, pd.DataFrame):
        return data, pd.DataFrame(index=data.index)
    if hasattr(data, "data") and hasattr(data, "missing") and isinstance(getattr(data, "data"), pd.DataFrame):
        return data.data, data.missing
    raise ModelSpecificationError(f"`data` is a {type(data).__name__}; expected a pandas DataFrame or a "
                                  "cimstats Survey.")


def _chosen_codes(impute_codes, rec: pd.DataFrame, cols) -> dict:
    """Column -> bool mask of declared cells to impute."""
    out = {}
    if impute_codes is None or (isinstance(impute_codes, (list, tuple, set)) and not impute_codes):
        return out

    def mask_for(c, codes):
        r = rec[c]
        if isinstance(codes, str) and codes == "all":
            return r.notna().to_numpy()
        if isinstance(codes, (str, int, float)):
            codes = [codes]
        want = list(codes)
        return r.map(lambda v: v is not None and not (isinstance(v, float) and math.isnan(v)) and v in want) \
            .fillna(False).to_numpy(dtype=bool)

    if isinstance(impute_codes, str):
        if impute_codes != "all":
            raise ModelSpecificationError(f"`impute_codes` is {impute_codes!r}; expected 'all', None, a list of "
                                          "codes or a mapping column -> codes.")
        return {c: mask_for(c, "all") for c in rec.columns}
    if isinstance(impute_codes, Mapping):
        bad = [c for c in impute_codes if c not in cols]
        if bad:
            raise ModelSpecificationError(f"`impute_codes` names {bad}, which are not columns of `data`.")
        return {c: mask_for(c, v) for c, v in impute_codes.items() if c in rec.columns}
    if isinstance(impute_codes, Iterable):
        codes = list(impute_codes)
        return {c: mask_for(c, codes) for c in rec.columns}
    raise ModelSpecificationError(f"`impute_codes` is a {type(impute_codes).__name__}; expected 'all', None, a "
                                  "list of codes or a mapping column -> codes.")


def _check_passive(passive, frame, cols, method, cluster):
    for name, spec in passive.items():
        if not isinstance(name, str):
            raise ModelSpecificationError(f"`passive` key {name!r} is not a column name.")
        if not (isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str)
                and isinstance(spec[1], (list, tuple)) and spec[1]):
            raise ModelSpecificationError(
                f"`passive[{name!r}]` is {spec!r}; expected (rule, [items]) such as ('mean', ['i1', 'i2', 'i3']); "
                "rules are declared, never written as code.")
        rule, items = spec
        if rule not in PASSIVE_RULES:
            raise ModelSpecificationError(f"`passive[{name!r}]` uses the rule {rule!r}; expected one of "
                                          f"{', '.join(PASSIVE_RULES)}.")
        bad = [i for i in items if i not in cols or i == name or i in passive or i == cluster]
        if bad:
            raise ModelSpecificationError(f"`passive[{name!r}]` lists {bad} as items; items must be other columns of "
                                          "`data` that are not scores themselves.")
        for i in items:
            if not pd.api.types.is_numeric_dtype(frame[i]) or pd.api.types.is_bool_dtype(frame[i]):
                raise ModelSpecificationError(f"Item {i!r} of the passive score {name!r} is not numeric; a score is "
                                              "computed from numeric items.")
        if name in method:
            raise ModelSpecificationError(f"{name!r} is both in `passive` and `method`; a passive score is computed, "
                                          "not imputed by a model.")


def _classify(name: str, col: pd.Series, wanted: str | None):
    """(kind, float values or codes with NaN, levels or None)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = col.cat
        observed = [c for c in cat.categories if (col == c).any()]
        codes = col.map({c: i for i, c in enumerate(observed)}).astype(float).to_numpy()
        k = len(observed)
        kind = "binary" if k == 2 else ("ordinal" if cat.ordered else "nominal")
        return kind, codes, observed
    if pd.api.types.is_bool_dtype(col):
        vals = col.astype("float64").to_numpy() if col.dtype == bool else \
            pd.to_numeric(col.astype(object).map(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else np.nan)).to_numpy(dtype=float)
        return "binary", vals, [False, True]
    if pd.api.types.is_numeric_dtype(col):
        vals = col.to_numpy(dtype=float, na_value=np.nan)
        uniq = np.unique(vals[~np.isnan(vals)])
        if len(uniq) == 2 and wanted not in ("pmm", "norm"):
            return "binary", np.where(np.isnan(vals), np.nan, (vals == uniq[1]).astype(float)), list(uniq)
        return "numeric", vals, None
    if pd.api.types.is_datetime64_any_dtype(col):
        if wanted == "":
            return "none", np.zeros(len(col)), None
        raise ModelSpecificationError(f"Column {name!r} holds dates; cimstats does not impute dates; give "
                                      f"method={{{name!r}: ''}} to carry it unchanged, or convert it to a number.")
    # text
    obj = col.astype(object)
    present = obj[obj.notna()]
    levels = sorted(pd.unique(present).tolist(), key=str)
    if not all(isinstance(v, str) for v in levels):
        if wanted == "":
            return "none", np.zeros(len(col)), None
        kinds = sorted({type(v).__name__ for v in levels if not isinstance(v, str)})
        raise ModelSpecificationError(
            f"Column {name!r} holds {', '.join(kinds)} values, which are neither numbers nor text categories; "
            f"cimstats does not impute them; give method={{{name!r}: ''}} to carry the column unchanged, or "
            "convert it to numbers.")
    if len(levels) > MAX_TEXT_LEVELS:
        if wanted == "":
            return "none", np.zeros(len(col)), None
        raise ModelSpecificationError(
            f"Column {name!r} is text with {len(levels)} different values; it is not a category (at most "
            f"{MAX_TEXT_LEVELS} values) and cannot be imputed or used as a predictor; convert it to a pandas "
            f"Categorical, drop it, or give method={{{name!r}: ''}} to carry it unchanged.")
    codes = obj.map({v: float(i) for i, v in enumerate(levels)}).astype(float).to_numpy()
    return ("binary" if len(levels) == 2 else "nominal"), codes, levels


def _restore(original: pd.Series, state: np.ndarray, rows: np.ndarray, kind: str, levels):
    out = original.copy()
    if kind == "numeric" and levels is None:
        if pd.api.types.is_integer_dtype(original) or pd.api.types.is_float_dtype(original):
            new = original.to_numpy(dtype=float, na_value=np.nan).copy()
            new[rows] = state[rows]
            if pd.api.types.is_integer_dtype(original) and not np.isnan(new).any() \
                    and np.all(new == np.round(new)):
                return pd.Series(new.astype(np.int64), index=original.index, name=original.name).astype(original.dtype)
            out = pd.Series(new, index=original.index, name=original.name)
            return out.astype(original.dtype) if pd.api.types.is_float_dtype(original) else out
        new = pd.to_numeric(original, errors="coerce").to_numpy(dtype=float).copy()
        new[rows] = state[rows]
        return pd.Series(new, index=original.index, name=original.name)
    vals = [levels[int(c)] for c in state[rows]]
    if isinstance(original.dtype, pd.CategoricalDtype):
        out = original.copy()
        out.iloc[np.nonzero(rows)[0]] = vals
        return out
    if pd.api.types.is_bool_dtype(original):
        o = original.astype(object).copy()
        o.iloc[np.nonzero(rows)[0]] = [bool(v) for v in vals]
        return o.astype("boolean") if str(original.dtype) == "boolean" else o.astype(bool)
    if pd.api.types.is_numeric_dtype(original):
        new = original.to_numpy(dtype=float, na_value=np.nan).copy()
        new[rows] = np.asarray(vals, dtype=float)
        return pd.Series(new, index=original.index, name=original.name)
    o = original.copy()
    o.iloc[np.nonzero(rows)[0]] = vals
    return o
