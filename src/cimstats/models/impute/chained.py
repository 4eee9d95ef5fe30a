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
    """The current completed values and one matrix holding every predictor block (and cluster means).

    The layout of that matrix is fixed for the whole run (a category has K - 1 indicator columns, a
    variable with cells that stay missing one more), so a draw only rewrites its own columns.
    """

    def __init__(self, variables: list[Variable], cluster: np.ndarray | None):
        self.vars = variables
        self.index = {v.name: j for j, v in enumerate(variables)}
        self.n = len(variables[0].values) if variables else 0
        self.cluster = cluster
        if cluster is not None:
            self.n_cl = int(cluster.max()) + 1
            self.size = np.bincount(cluster, minlength=self.n_cl).astype(float)
        self.cur = [v.values.copy() for v in variables]
        # variables a variable must not be predicted from (a passive score is not a predictor of its items)
        self.exclude = {j: set() for j in range(len(variables))}
        for j, v in enumerate(variables):
            if v.kind == "passive":
                for s in v.sources:
                    self.exclude[self.index[s]].add(j)
        self.cols: list[np.ndarray | None] = []
        self.cm_cols: list[np.ndarray | None] = []
        width = 0
        for v in variables:
            if v.kind == "none" or not v.predictor:
                self.cols.append(None)
                self.cm_cols.append(None)
                continue
            w = max(v.n_levels - 1, 0) if v.kind in ("nominal", "ordinal") else 1
            w += int(v.held.any())
            self.cols.append(np.arange(width, width + w))
            width += w
            if cluster is not None:
                self.cm_cols.append(np.arange(width, width + w))
                width += w
            else:
                self.cm_cols.append(None)
        self.Z = np.zeros((self.n, width))
        self.live = np.zeros(width, dtype=bool)
        self.sums: list[np.ndarray | None] = [None] * len(variables)

    def refresh(self, j: int) -> None:
        v = self.vars[j]
        cols = self.cols[j]
        if cols is None:
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
        if v.held.any():
            B = np.column_stack([B, held.astype(float)])
        self.Z[:, cols] = B
        self.live[cols] = np.ptp(B, axis=0) > 1e-12
        if self.cluster is not None:
            S = np.zeros((self.n_cl, B.shape[1]))
            for c in range(B.shape[1]):
                S[:, c] = np.bincount(self.cluster, weights=B[:, c], minlength=self.n_cl)
            self.sums[j] = S
            cm = (S / self.size[:, None])[self.cluster]
            self.Z[:, self.cm_cols[j]] = cm
            self.live[self.cm_cols[j]] = np.ptp(cm, axis=0) > 1e-12

    def design(self, j: int, fit_rows: np.ndarray, new_rows: np.ndarray):
        """The design matrices (intercept first) of the rows a model is fitted to and of the rows it imputes."""
        skip = self.exclude[j] | {j}
        use = [c for k, c in enumerate(self.cols) if c is not None and k not in skip]
        if self.cluster is not None:
            use += [c for k, c in enumerate(self.cm_cols) if c is not None and k not in skip]
        idx = np.concatenate(use) if use else np.zeros(0, dtype=int)
        idx = np.sort(idx[self.live[idx]])
        out = []
        for rows in (fit_rows, new_rows):
            r = np.nonzero(rows)[0]
            parts = [np.ones((len(r), 1)), self.Z[np.ix_(r, idx)]]
            if self.cluster is not None and self.cols[j] is not None:
                # the variable's own cluster mean over the other members of the cluster
                B = self.Z[np.ix_(r, self.cols[j])]
                S = self.sums[j][self.cluster[r]]
                size = self.size[self.cluster[r]][:, None]
                with np.errstate(invalid="ignore", divide="ignore"):
                    loo = np.where(size > 1, (S - B) / np.maximum(size - 1, 1), 0.0)
                parts.append(loo)
            out.append(np.concatenate(parts, axis=1))
        return out[0], out[1]


def _draw(v: Variable, y_obs, X_obs, X_mis, rng, donors, warm: dict):
    """Draw the missing cells of ``v``; the iterative models start from their previous sweep's estimate."""
    if v.method == "pmm":
        return kernels.pmm(y_obs, X_obs, X_mis, rng, donors=donors)
    if v.method == "norm":
        return kernels.norm(y_obs, X_obs, X_mis, rng)
    if v.method == "logreg":
        out, warm[v.name] = kernels.logreg(y_obs, X_obs, X_mis, rng, start=warm.get(v.name))
    elif v.method == "polyreg":
        out, warm[v.name] = kernels.polyreg(y_obs, X_obs, X_mis, rng, v.n_levels, start=warm.get(v.name))
    elif v.method == "polr":
        out, warm[v.name] = kernels.polr(y_obs, X_obs, X_mis, rng, v.n_levels, start=warm.get(v.name))
    else:  # pragma: no cover - methods are checked before
        raise ValueError(v.method)
    return out


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
        warm: dict = {}
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
                X_fit, X_new = st.design(j, fit_rows, v.impute)
                y = v.values[fit_rows]
                st.cur[j][v.impute] = _draw(v, y, X_fit, X_new, rng, donors, warm)
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
