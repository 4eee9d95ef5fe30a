"""Numeric kernels of multiple imputation: arrays in, arrays out.

Conditional draws for one incomplete variable given a design matrix
(predictive mean matching, Bayesian linear regression, logistic, multinomial
and proportional-odds regression) and the arithmetic of Rubin's rules
(pooled estimates, Barnard-Rubin degrees of freedom, the D1 and D2 tests).
Nothing here knows about data frames, column names or results.

References
----------
van Buuren S (2018). *Flexible Imputation of Missing Data*, 2nd ed. CRC Press
(chapters 3.4, 3.6 and 5.3; the formulas of mice 3.x).
Barnard J, Rubin DB (1999). Small-sample degrees of freedom with multiple
imputation. *Biometrika* 86:948-955.
Li KH, Meng XL, Raghunathan TE, Rubin DB (1991). Significance levels from
repeated p-values with multiply-imputed data. *Statistica Sinica* 1:65-92.
Reiter JP (2007). Small-sample degrees of freedom for multi-component
significance tests with multiple imputation. *Biometrika* 94:502-508.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg, special, stats

__all__ = ["norm_draw", "pmm", "norm", "logreg", "polyreg", "polr", "pool_scalar", "barnard_rubin",
           "d1_test", "d2_test"]

#: ridge added to X'X (times its diagonal), as mice's ``ridge = 1e-05``
RIDGE = 1e-5


# --------------------------------------------------------------------------- linear models
def norm_draw(y: np.ndarray, X: np.ndarray, rng: np.random.Generator, ridge: float = RIDGE):
    """One draw of (beta, sigma) from the posterior of a normal linear model (mice's ``norm.draw``).

    Returns ``(beta_hat, beta_draw, sigma_draw)``.
    """
    xtx = X.T @ X
    d = np.diag(xtx).copy()
    d[d <= 0] = 1.0
    xtx = xtx + np.diag(ridge * d)
    try:
        c = linalg.cho_factor(xtx, lower=True, check_finite=False)
        beta = linalg.cho_solve(c, X.T @ y, check_finite=False)
        vinv = linalg.cho_solve(c, np.eye(len(d)), check_finite=False)
    except linalg.LinAlgError:
        vinv = np.linalg.pinv(xtx)
        beta = vinv @ (X.T @ y)
    resid = y - X @ beta
    df = max(len(y) - X.shape[1], 1)
    sigma = math.sqrt(float(resid @ resid) / rng.chisquare(df))
    vinv = (vinv + vinv.T) / 2
    try:
        L = np.linalg.cholesky(vinv)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(vinv)
        L = v * np.sqrt(np.clip(w, 0, None))
    beta_draw = beta + sigma * (L @ rng.standard_normal(len(beta)))
    return beta, beta_draw, sigma


def pmm(y_obs, X_obs, X_mis, rng, donors: int = 5):
    """Predictive mean matching (type-1 matching, as mice's ``pmm``).

    The observed cases are predicted with the least-squares coefficients, the
    missing ones with a posterior draw; each missing case takes the observed
    value of one donor drawn at random among the ``donors`` observed cases
    whose predictions are closest to its own.
    """
    beta, beta_draw, _ = norm_draw(y_obs, X_obs, rng)
    yhat_obs = X_obs @ beta
    yhat_mis = X_mis @ beta_draw
    n_obs = len(y_obs)
    k = int(min(max(donors, 1), n_obs))
    order = np.argsort(yhat_obs, kind="stable")
    sorted_hat = yhat_obs[order]
    pos = np.searchsorted(sorted_hat, yhat_mis)
    # the k nearest lie within k places either side of the insertion point
    offsets = np.arange(-k, k)
    cand = np.clip(pos[:, None] + offsets[None, :], 0, n_obs - 1)
    dist = np.abs(sorted_hat[cand] - yhat_mis[:, None])
    # repeated indices after clipping must not count twice: push duplicates away
    dup = np.zeros_like(dist, dtype=bool)
    dup[:, 1:] = cand[:, 1:] == cand[:, :-1]
    dist[dup] = np.inf
    nearest = np.argpartition(dist, k - 1, axis=1)[:, :k] if dist.shape[1] > k else np.argsort(dist, axis=1)[:, :k]
    pick = nearest[np.arange(len(yhat_mis)), rng.integers(0, k, size=len(yhat_mis))]
    donor = order[cand[np.arange(len(yhat_mis)), pick]]
    return y_obs[donor]


def norm(y_obs, X_obs, X_mis, rng):
    """Bayesian linear regression imputation (mice's ``norm``): prediction plus normal noise."""
    _, beta_draw, sigma = norm_draw(y_obs, X_obs, rng)
    return X_mis @ beta_draw + sigma * rng.standard_normal(X_mis.shape[0])


# --------------------------------------------------------------------------- categorical models
def _newton(fun_grad_hess, start, max_iter: int = 50, tol: float = 1e-8):
    x = start.copy()
    f, g, H = fun_grad_hess(x)
    for _ in range(max_iter):
        try:
            step = linalg.solve(H, g, assume_a="pos", check_finite=False)
        except (linalg.LinAlgError, ValueError):
            step = np.linalg.lstsq(H, g, rcond=None)[0]
        t = 1.0
        while True:
            xn = x - t * step
            fn, gn, Hn = fun_grad_hess(xn)
            if np.isfinite(fn) and fn <= f + 1e-12 * abs(f):
                break
            t /= 2
            if t < 1e-8:
                return x, H
        x, f, g, H = xn, fn, gn, Hn
        if float(np.max(np.abs(t * step))) < tol:
            break
    return x, H


def _draw_from(theta, H, rng):
    H = (H + H.T) / 2
    try:
        L = np.linalg.cholesky(H)
        z = rng.standard_normal(len(theta))
        return theta + linalg.solve_triangular(L.T, z, lower=False, check_finite=False)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(H)
        w = np.where(w > 1e-10, w, np.inf)
        return theta + v @ (rng.standard_normal(len(theta)) / np.sqrt(w))


def _penalty(X):
    d = np.einsum("ij,ij->j", X, X)
    d[d <= 0] = 1.0
    return RIDGE * d


def logreg(y_obs, X_obs, X_mis, rng, start=None):
    """Logistic-regression imputation of a 0/1 variable (mice's ``logreg``).

    The coefficients are drawn from their approximate normal posterior around
    the (slightly ridge-penalised, which keeps separated data finite) maximum
    likelihood estimate; each missing case is then drawn as Bernoulli.
    """
    pen = _penalty(X_obs)

    def fgh(b):
        eta = X_obs @ b
        p = special.expit(eta)
        f = -float(np.sum(y_obs * eta - np.logaddexp(0, eta))) + 0.5 * float(pen @ (b * b))
        g = -X_obs.T @ (y_obs - p) + pen * b
        w = p * (1 - p)
        H = (X_obs * w[:, None]).T @ X_obs + np.diag(pen)
        return f, g, H

    b, H = _newton(fgh, _start(start, X_obs.shape[1]))
    bd = _draw_from(b, H, rng)
    p = special.expit(X_mis @ bd)
    return (rng.uniform(size=len(p)) < p).astype(float), b


def _start(start, size):
    """The previous sweep's estimate when it fits (a warm start), else zeros."""
    if start is not None and len(start) == size and np.all(np.isfinite(start)):
        return np.asarray(start, dtype=float).copy()
    return np.zeros(size)


def polyreg(y_obs, X_obs, X_mis, rng, n_levels: int, start=None):
    """Multinomial-logit imputation of an unordered category coded 0..K-1 (as mice's ``polyreg``).

    Unlike mice (which draws from the fitted probabilities only), the
    coefficients are first drawn from their approximate normal posterior, so
    parameter uncertainty is propagated.
    """
    n, p = X_obs.shape
    K = n_levels
    Y = np.zeros((n, K))
    Y[np.arange(n), y_obs.astype(int)] = 1.0
    pen = np.tile(_penalty(X_obs), K - 1)

    def fgh(theta):
        B = theta.reshape(K - 1, p)
        eta = np.column_stack([np.zeros(n), X_obs @ B.T])
        lse = special.logsumexp(eta, axis=1)
        P = np.exp(eta - lse[:, None])
        f = -float(np.sum(Y * eta) - np.sum(lse)) + 0.5 * float(pen @ (theta * theta))
        g = -((Y[:, 1:] - P[:, 1:]).T @ X_obs).ravel() + pen * theta
        H = np.empty(((K - 1) * p, (K - 1) * p))
        for a in range(1, K):
            for c in range(a, K):
                w = P[:, a] * ((a == c) - P[:, c])
                blk = (X_obs * w[:, None]).T @ X_obs
                H[(a - 1) * p:a * p, (c - 1) * p:c * p] = blk
                H[(c - 1) * p:c * p, (a - 1) * p:a * p] = blk.T
        H += np.diag(pen)
        return f, g, H

    theta, H = _newton(fgh, _start(start, (K - 1) * p))
    Bd = _draw_from(theta, H, rng).reshape(K - 1, p)
    eta = np.column_stack([np.zeros(X_mis.shape[0]), X_mis @ Bd.T])
    P = special.softmax(eta, axis=1)
    return _draw_categories(P, rng), theta


def _draw_categories(P, rng):
    cum = np.cumsum(P, axis=1)
    u = rng.uniform(size=(P.shape[0], 1)) * cum[:, -1:]
    return np.minimum((u > cum).sum(axis=1), P.shape[1] - 1).astype(float)


def polr(y_obs, X_obs, X_mis, rng, n_levels: int, start=None):
    """Proportional-odds (cumulative logit) imputation of an ordered category coded 0..K-1 (as mice's ``polr``).

    ``P(Y <= k) = logistic(alpha_k - x'b)``; the thresholds and slopes are
    drawn from their approximate normal posterior before the categories are
    drawn. The intercept column of ``X`` (a column of ones) is left out of the
    slopes, the thresholds take its place.
    """
    K = n_levels
    keep = ~np.all(X_obs == X_obs[:1], axis=0)  # constant columns (the intercept) are absorbed by the thresholds
    Xo, Xm = X_obs[:, keep], X_mis[:, keep]
    n, p = Xo.shape
    y = y_obs.astype(int)
    pen = np.concatenate([np.zeros(K - 1), _penalty(Xo)])
    counts = np.bincount(y, minlength=K).astype(float)
    cum = np.cumsum(counts)[:-1] / n
    cum = np.clip(cum, 1e-4, 1 - 1e-4)
    alpha0 = special.logit(cum)
    alpha0 = np.maximum.accumulate(alpha0 + np.arange(K - 1) * 1e-6)
    # parametrise alpha_1 and log increments so the thresholds stay ordered
    init = np.concatenate([[alpha0[0]], np.log(np.maximum(np.diff(alpha0), 1e-3)), np.zeros(p)])
    if start is None or len(start) != len(init) or not np.all(np.isfinite(start)):
        start = init

    def unpack(th):
        a = np.cumsum(np.concatenate([[th[0]], np.exp(th[1:K - 1])]))
        return a, th[K - 1:]

    def fgh(th):
        a, b = unpack(th)
        eta = Xo @ b
        ext = np.concatenate([[-np.inf], a, [np.inf]])
        up, lo = ext[y + 1] - eta, ext[y] - eta
        Fu, Fl = special.expit(up), special.expit(lo)
        fu, fl = Fu * (1 - Fu), Fl * (1 - Fl)
        dfu, dfl = fu * (1 - 2 * Fu), fl * (1 - 2 * Fl)
        pr = np.maximum(Fu - Fl, 1e-300)
        f = -float(np.sum(np.log(pr))) + 0.5 * float(pen[K - 1:] @ (b * b))
        # first and second derivatives of log pr with respect to the upper and lower arguments
        gu, gl = fu / pr, -fl / pr
        wuu = dfu / pr - gu ** 2
        wll = -dfl / pr - gl ** 2
        wul = -gu * gl
        top, bottom = y < K - 1, y > 0
        ga = np.zeros(K - 1)
        np.add.at(ga, y[top], gu[top])
        np.add.at(ga, y[bottom] - 1, gl[bottom])
        gb = -(Xo.T @ (gu + gl))
        Haa = np.zeros((K - 1, K - 1))
        np.add.at(Haa, (y[top], y[top]), wuu[top])
        np.add.at(Haa, (y[bottom] - 1, y[bottom] - 1), wll[bottom])
        both = top & bottom
        np.add.at(Haa, (y[both], y[both] - 1), wul[both])
        np.add.at(Haa, (y[both] - 1, y[both]), wul[both])
        Hab = np.zeros((K - 1, p))
        cu, cl = -(wuu + wul), -(wul + wll)
        for j in range(K - 1):
            r_u, r_l = top & (y == j), bottom & (y - 1 == j)
            Hab[j] = Xo[r_u].T @ cu[r_u] + Xo[r_l].T @ cl[r_l]
        Hbb = (Xo * (wuu + 2 * wul + wll)[:, None]).T @ Xo
        # to the (alpha_1, log increments) parametrisation; negative log-likelihood
        inc = np.exp(th[1:K - 1])
        J = np.zeros((K - 1, K - 1))
        J[:, 0] = 1.0
        for i in range(1, K - 1):
            J[i:, i] = inc[i - 1]
        tail = np.cumsum(ga[::-1])[::-1]
        g_th = np.concatenate([[tail[0]], tail[1:] * inc])
        H = np.empty((K - 1 + p, K - 1 + p))
        H[:K - 1, :K - 1] = -(J.T @ Haa @ J) - np.diag(np.concatenate([[0.0], tail[1:] * inc]))
        H[:K - 1, K - 1:] = -(J.T @ Hab)
        H[K - 1:, :K - 1] = H[:K - 1, K - 1:].T
        H[K - 1:, K - 1:] = -Hbb + np.diag(pen[K - 1:])
        g = -np.concatenate([g_th, gb]) + pen * np.concatenate([np.zeros(K - 1), b])
        return f, g, H

    th, H = _newton(fgh, np.asarray(start, dtype=float))
    thd = _draw_from(th, H, rng)
    a, b = unpack(thd)
    eta = Xm @ b
    F = special.expit(a[None, :] - eta[:, None])
    F = np.column_stack([np.zeros(len(eta)), F, np.ones(len(eta))])
    P = np.clip(np.diff(F, axis=1), 0, None)
    return _draw_categories(P, rng), th


# --------------------------------------------------------------------------- Rubin's rules
def barnard_rubin(m: int, b, t, dfcom):
    """Barnard-Rubin degrees of freedom, as mice's ``barnard.rubin`` (lambda floored at 1e-4)."""
    b = np.asarray(b, dtype=float)
    t = np.asarray(t, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):  # a fixed parameter has b = t = 0: df NaN
        lam = (1 + 1 / m) * b / t
    lam = np.where(lam < 1e-4, 1e-4, lam)
    dfold = (m - 1) / lam ** 2
    dfcom = np.asarray(dfcom, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        dfobs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
        out = np.where(np.isinf(dfcom), dfold, dfold * dfobs / (dfold + dfobs))
    return out


def pool_scalar(Q: np.ndarray, U: np.ndarray, dfcom) -> dict:
    """Rubin's rules for each parameter (columns of ``Q``), as ``mice::pool``.

    Parameters
    ----------
    Q : (m, p) array of estimates, one row per completed data set
    U : (m, p) array of squared standard errors
    dfcom : complete-data degrees of freedom (``inf`` for large-sample models)

    Returns
    -------
    dict of arrays: estimate (qbar), ubar, b, t, df, riv, lambda, fmi
    """
    Q = np.asarray(Q, dtype=float)
    U = np.asarray(U, dtype=float)
    m = Q.shape[0]
    qbar = Q.mean(axis=0)
    ubar = U.mean(axis=0)
    b = Q.var(axis=0, ddof=1)
    t = ubar + (1 + 1 / m) * b
    df = barnard_rubin(m, b, t, dfcom)
    with np.errstate(invalid="ignore", divide="ignore"):
        riv = (1 + 1 / m) * b / ubar
        lam = (1 + 1 / m) * b / t
        fmi = (riv + 2 / (df + 3)) / (riv + 1)
    return {"estimate": qbar, "ubar": ubar, "b": b, "t": t, "df": df, "riv": riv, "lambda": lam, "fmi": fmi}


def d1_test(Q: np.ndarray, U: np.ndarray, dfcom=None, null=None) -> dict:
    """Pooled Wald test of k parameters (D1; mitml's ``testModels(method = "D1")`` as ``mice::D1`` calls it).

    Parameters
    ----------
    Q : (m, k) estimates; U : (m, k, k) covariance matrices; dfcom : complete-data df or None
    null : (k,) values under the null hypothesis (zeros by default)

    Returns
    -------
    dict: statistic (F), df1 (k), df2, p_value, riv
    """
    Q = np.asarray(Q, dtype=float)
    U = np.asarray(U, dtype=float)
    m, k = Q.shape
    d = Q - (np.zeros(k) if null is None else np.asarray(null, dtype=float))
    qbar = d.mean(axis=0)
    ubar = U.mean(axis=0)
    B = np.atleast_2d(np.cov(Q.T, ddof=1))
    r = (1 + 1 / m) * float(np.trace(B @ np.linalg.inv(ubar))) / k
    ttilde = (1 + r) * ubar
    val = float(qbar @ np.linalg.solve(ttilde, qbar)) / k
    t = k * (m - 1)
    if dfcom is not None and np.isfinite(dfcom) and t > 4:  # Reiter's formula needs k (m - 1) > 4
        a = r * t / (t - 2)
        vstar = ((dfcom + 1) / (dfcom + 3)) * dfcom
        c0 = 1 / (t - 4)
        c1 = vstar - 2 * (1 + a)
        c2 = vstar - 4 * (1 + a)
        z = (1 / c2 + c0 * (a ** 2 * c1 / ((1 + a) ** 2 * c2)) + c0 * (8 * a ** 2 * c1 / ((1 + a) * c2 ** 2)
             + 4 * a ** 2 / ((1 + a) * c2)) + c0 * (4 * a ** 2 / (c2 * c1) + 16 * a ** 2 * c1 / c2 ** 3)
             + c0 * (8 * a ** 2 / c2 ** 2))
        v = 4 + 1 / z
    elif t > 4:
        v = 4 + (t - 4) * (1 + (1 - 2 / t) / r) ** 2
    else:
        v = t * (1 + 1 / k) * (1 + 1 / r) ** 2 / 2
    return {"statistic": val, "df1": k, "df2": float(v), "p_value": float(stats.f.sf(val, k, v)), "riv": r}


def d2_test(chisq: np.ndarray, k: int) -> dict:
    """Pooled chi-square (likelihood-ratio or Wald) statistics (D2; Li, Meng, Raghunathan and Rubin 1991).

    As mitml's ``.D2`` (``mice::D2``): ``r = (1 + 1/m) var(sqrt(d))``,
    ``F = (mean(d)/k - (m+1)/(m-1) r) / (1 + r)``, ``df2 = k^(-3/m) (m-1) (1 + 1/r)^2``.
    """
    d = np.asarray(chisq, dtype=float)
    m = len(d)
    r = (1 + 1 / m) * float(np.var(np.sqrt(np.maximum(d, 0)), ddof=1))
    val = (d.mean() / k - (m + 1) / (m - 1) * r) / (1 + r)
    v = k ** (-3 / m) * (m - 1) * (1 + 1 / r) ** 2 if r > 0 else np.inf
    return {"statistic": float(val), "df1": k, "df2": float(v), "p_value": float(stats.f.sf(val, k, v)), "riv": r}


def d3_test(dev_own_full, dev_own_reduced, dev_pooled_full, dev_pooled_reduced, k: int) -> dict:
    """Pooled likelihood-ratio test of Meng and Rubin (1992) (D3), as ``mice::D3`` computes it.

    Parameters
    ----------
    dev_own_full, dev_own_reduced : (m,) deviances (-2 log-likelihood) of each model at its own estimates
    dev_pooled_full, dev_pooled_reduced : (m,) deviances of each model at the pooled (mean) estimates
    k : difference in the number of estimates of the two models

    Returns
    -------
    dict: statistic (F), df1 (k), df2, p_value, riv
        ``riv = (m+1)/(k (m-1)) (dbar_own - dbar_pooled)``, ``F = dbar_pooled / (k (1 + riv))``,
        with dbar the mean of (reduced - full) deviances; df2 as Li, Raghunathan and Rubin (1991).
    """
    own = np.asarray(dev_own_reduced, dtype=float) - np.asarray(dev_own_full, dtype=float)
    at_pooled = np.asarray(dev_pooled_reduced, dtype=float) - np.asarray(dev_pooled_full, dtype=float)
    m = len(own)
    d_own, d_pooled = float(own.mean()), float(at_pooled.mean())
    r = (m + 1) / (k * (m - 1)) * (d_own - d_pooled)
    val = d_pooled / (k * (1 + r))
    t = k * (m - 1)
    with np.errstate(divide="ignore"):
        if t > 4:
            v = 4 + (t - 4) * (1 + (1 - 2 / t) / r) ** 2 if r != 0 else np.inf
        else:
            v = t * (1 + 1 / k) * (1 + 1 / r) ** 2 / 2 if r != 0 else np.inf
    return {"statistic": float(val), "df1": k, "df2": float(v), "p_value": float(stats.f.sf(val, k, v)), "riv": r}


def d2_chisq(w, df: float) -> dict:
    """Pooled chi-square of a model's fit test over imputations (D2, large-sample form), as semTools.

    ``ariv = (1 + 1/m) var(sqrt(w))``; ``F = (mean(w)/df - (m+1)/(m-1) ariv) / (1 + ariv)``, set to 0 when
    negative; the pooled statistic is ``chisq = F df`` referred to chi-square(df) (semTools'
    ``calculate.D2(asymptotic = TRUE)``, used by ``fitMeasures(..., test = "D2")``).

    Returns
    -------
    dict: chisq, df, pvalue, ariv, fmi (= ariv / (1 + ariv))
    """
    w = np.asarray(w, dtype=float)
    df = float(df)
    if df <= 0:  # a saturated model: semTools pools the squared statistics on 1 df
        w, df = w ** 2, 1.0
    m = len(w)
    ariv = (1 + 1 / m) * float(np.var(np.sqrt(np.maximum(w, 0)), ddof=1))
    f = (w.mean() / df - (m + 1) * ariv / (m - 1)) / (1 + ariv)
    f = max(f, 0.0)
    return {"chisq": f * df, "df": df, "pvalue": float(stats.chi2.sf(f * df, df)), "ariv": ariv,
            "fmi": ariv / (1 + ariv)}


def fit_indices(chisq: float, df: float, baseline_chisq: float, baseline_df: float, n: float,
                n_groups: int = 1) -> dict:
    """CFI, TLI and RMSEA from a (pooled) model and baseline chi-square, as lavaan and semTools compute them."""
    t1 = max(chisq - df, 0.0)
    t2 = max(chisq - df, baseline_chisq - baseline_df, 0.0)
    cfi = 1.0 if t1 == 0 and t2 == 0 else 1 - t1 / t2
    tli = 1 - ((chisq - df) * baseline_df) / ((baseline_chisq - baseline_df) * df) if df > 0 else 1.0
    rmsea = math.sqrt(max(0.0, (chisq / n) / df - 1 / n)) * math.sqrt(n_groups) if df > 0 else float("nan")
    return {"cfi": cfi, "tli": tli, "rmsea": rmsea}
