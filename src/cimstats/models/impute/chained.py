"""Chained equations on a numeric state matrix (the engine behind :func:`cimstats.impute`).

Every variable is held as one float column: numbers as they are, categories
as codes ``0..K-1``. :func:`run_chains` takes these columns, which cells to
impute, the method of each variable, the passive rules and the cluster codes,
and returns the completed columns of every chain plus the chain statistics.
Nothing here knows about data frames or results.

Conditional models
------------------
Each incomplete variable is drawn from a model given all other variables
(categories as indicator columns; a passive score replaces nothing and is left
out of the models of its own items). Cells that stay missing (declared missing
codes the user chose not to impute) enter other variables' models through an
indicator column, with the value set to the observed mean.

With clusters, each conditional model also gets the cluster means of every
predictor and the cluster mean of the variable itself over the *other* members
of the cluster (computed from the current completed values): the
"cluster means" approach to two-level imputation (FCS-CM; Carpenter and
Kenward 2013, ch. 9; Grund, Luedtke and Robitzsch 2018). It reproduces a
random-intercept structure and cross-level relations without fitting a mixed
model per step; it is not mice's ``2l.norm``/``2l.pan`` (a random intercept
drawn by Gibbs sampling).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cimstats.models.impute import kernels

__all__ = ["Variable", "run_chains", "PASSIVE_RULES"]

#: passive rules a score may be defined by (recomputed from its items after every draw)
PASSIVE_RULES = ("mean", "sum", "min", "max")


@dataclass
class Variable:
    """One column of the state: values (codes for categories), cells to impute and how."""

    name: str
    kind: str  # "numeric" | "binary" | "nominal" | "ordinal" | "passive" | "none" (not a predictor)
    values: np.ndarray  # float, NaN where missing
    impute: np.ndarray  # bool: cells to impute
    method: str = ""  # pmm | norm | logreg | polyreg | polr | passive | "" (not imputed)
    n_levels: int = 0
    rule: str = ""
    sources: tuple = ()
    predictor: bool = True
    held: np.ndarray = field(default=None)  # bool: missing cells that stay missing

    def __post_init__(self):
        if self.held is None:
            self.held = np.isnan(self.values) & ~self.impute


def _passive(rule: str, cols: list[np.ndarray]) -> np.ndarray:
    M = np.column_stack(cols)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if rule == "mean":
                return np.nanmean(M, axis=1)
            if rule == "sum":
                out = np.nansum(M, axis=1)
                out[np.all(np.isnan(M), axis=1)] = np.nan
                return out
            if rule == "min":
                return np.nanmin(M, axis=1)
            return np.nanmax(M, axis=1)


class _State:
    """The current completed values and their predictor blocks (indicator columns, cluster means)."""

    def __init__(self, variables: list[Variable], cluster: np.ndarray | None):
        self.vars = variables
        self.index = {v.name: j for j, v in enumerate(variables)}
        self.n = len(variables[0].values) if variables else 0
        self.cluster = cluster
        if cluster is not None:
            self.n_cl = int(cluster.max()) + 1
            self.size = np.bincount(cluster, minlength=self.n_cl).astype(float)
        self.cur = [v.values.copy() for v in variables]
        self.blocks: list[np.ndarray | None] = [None] * len(variables)
        self.cmeans: list[np.ndarray | None] = [None] * len(variables)
        self.sums: list[np.ndarray | None] = [None] * len(variables)
        # variables a variable must not be predicted from (a passive score is not a predictor of its items)
        self.exclude = {j: set() for j in range(len(variables))}
        for j, v in enumerate(variables):
            if v.kind == "passive":
                for s in v.sources:
                    self.exclude[self.index[s]].add(j)

    def refresh(self, j: int) -> None:
        v = self.vars[j]
        if v.kind == "none" or not v.predictor:
            self.blocks[j] = None
            return
        x = self.cur[j]
        held = np.isnan(x)
        if v.kind in ("nominal", "ordinal"):
            codes = np.where(held, 0, x).astype(int)
            B = np.zeros((self.n, max(v.n_levels - 1, 0)))
            rows = np.nonzero((codes > 0) & ~held)[0]
            B[rows, codes[rows] - 1] = 1.0
        else:
            col = x.copy()
            if held.any():
                obs = col[~held]
                col[held] = obs.mean() if obs.size else 0.0
            B = col[:, None]
        if held.any():
            B = np.column_stack([B, held.astype(float)])
        self.blocks[j] = B
        if self.cluster is not None:
            S = np.zeros((self.n_cl, B.shape[1]))
            for c in range(B.shape[1]):
                S[:, c] = np.bincount(self.cluster, weights=B[:, c], minlength=self.n_cl)
            self.sums[j] = S
            self.cmeans[j] = (S / self.size[:, None])[self.cluster]

    def design(self, j: int) -> np.ndarray:
        parts = [np.ones((self.n, 1))]
        skip = self.exclude[j] | {j}
        for k, B in enumerate(self.blocks):
            if B is None or k in skip:
                continue
            parts.append(B)
            if self.cluster is not None:
                parts.append(self.cmeans[k])
        if self.cluster is not None and self.blocks[j] is not None:
            # the variable's own cluster mean over the other members of the cluster
            B, S = self.blocks[j], self.sums[j]
            size = self.size[self.cluster][:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                loo = (S[self.cluster] - B) / (size - 1)
            loo = np.where(size > 1, loo, np.nanmean(B, axis=0)[None, :])
            parts.append(loo)
        X = np.concatenate(parts, axis=1)
        # drop columns that are constant among all rows (beyond the intercept): they carry nothing
        sd = X[:, 1:].std(axis=0)
        return np.concatenate([X[:, :1], X[:, 1:][:, sd > 1e-12]], axis=1)


def _draw(v: Variable, y_obs, X_obs, X_mis, rng, donors):
    if v.method == "pmm":
        return kernels.pmm(y_obs, X_obs, X_mis, rng, donors=donors)
    if v.method == "norm":
        return kernels.norm(y_obs, X_obs, X_mis, rng)
    if v.method == "logreg":
        return kernels.logreg(y_obs, X_obs, X_mis, rng)
    if v.method == "polyreg":
        return kernels.polyreg(y_obs, X_obs, X_mis, rng, v.n_levels)
    if v.method == "polr":
        return kernels.polr(y_obs, X_obs, X_mis, rng, v.n_levels)
    raise ValueError(v.method)  # pragma: no cover - methods are checked before


def run_chains(variables: list[Variable], m: int, iterations: int, seed, *, cluster=None, donors: int = 5):
    """Run ``m`` independent chains of ``iterations`` sweeps each.

    Returns
    -------
    completed : list (one per chain) of dict name -> completed float column
    chains : (m, iterations, J, 2) array of the mean and sd of the imputed cells per sweep (NaN for
        variables without imputed cells)
    """
    seeds = np.random.SeedSequence(seed).spawn(m)
    J = len(variables)
    chains = np.full((m, iterations, J, 2), np.nan)
    completed = []
    order = [j for j, v in enumerate(variables) if v.method and v.method != "passive" and v.impute.any()]
    passive_of = {}
    for j, v in enumerate(variables):
        if v.kind == "passive":
            for s in v.sources:
                passive_of.setdefault(s, []).append(j)
    for c in range(m):
        rng = np.random.default_rng(seeds[c])
        st = _State(variables, cluster)
        # start: each imputed cell drawn from the variable's observed values (as mice does)
        for j in order:
            v = variables[j]
            observed = v.values[~np.isnan(v.values)]
            st.cur[j][v.impute] = rng.choice(observed, size=int(v.impute.sum()), replace=True)
        for j, v in enumerate(variables):
            if v.kind == "passive":
                _recompute(st, j)
        for j in range(J):
            st.refresh(j)
        for it in range(iterations):
            for j in order:
                v = variables[j]
                fit_rows = ~np.isnan(v.values)
                X = st.design(j)
                y = v.values[fit_rows]
                st.cur[j][v.impute] = _draw(v, y, X[fit_rows], X[v.impute], rng, donors)
                st.refresh(j)
                for p in passive_of.get(v.name, ()):
                    _recompute(st, p)
                    st.refresh(p)
            for j, v in enumerate(variables):
                if v.impute.any():
                    vals = st.cur[j][v.impute]
                    if v.kind in ("nominal", "ordinal", "binary"):
                        vals = vals + 1  # category numbers 1..K, as mice's chainMean of a factor
                    chains[c, it, j, 0] = vals.mean()
                    chains[c, it, j, 1] = vals.std(ddof=1) if vals.size > 1 else np.nan
        completed.append({v.name: st.cur[j] for j, v in enumerate(variables)})
    return completed, chains


def _recompute(st: _State, j: int) -> None:
    v = st.vars[j]
    cols = [st.cur[st.index[s]] for s in v.sources]
    new = _passive(v.rule, cols)
    st.cur[j][v.impute] = new[v.impute]
