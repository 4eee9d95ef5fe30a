"""Penalised least-squares core of linear mixed models (numbers only).

The model is ``y = X beta + Z b + e`` with ``b = Lambda_theta u``,
``u ~ N(0, sigma^2 I)`` and ``e ~ N(0, sigma^2 I)``. Following Bates, Maechler,
Bolker and Walker (2015), for a given relative covariance factor ``theta`` the
penalised least-squares problem is solved through the Cholesky factor of

    A = Lambda' Z'Z Lambda + I,

and the profiled deviance (sigma and beta profiled out) is

    ML:   d(theta) = log|A| + n (1 + log(2 pi r2 / n))
    REML: d(theta) = log|A| + log|RX'RX| + (n - p)(1 + log(2 pi r2 / (n - p)))

with ``RX'RX = X'X - X'Z Lambda A^{-1} Lambda' Z'X`` and the penalised residual
sum of squares ``r2``. Everything is computed from the cross-products
``Z'Z, Z'X, X'X, Z'y, X'y, y'y``, formed once, so an evaluation costs nothing
that grows with the number of observations.

:class:`CrossProducts` holds those blocks and can be rebuilt with observation
weights (``weights=``), which is what penalised iteratively reweighted least
squares for generalised models needs; :meth:`PLSCore.solve` returns beta and the
spherical random effects ``u`` for any theta.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .linalg import TermShape, factor_system

__all__ = ["CrossProducts", "PLSCore", "theta_layout"]

_LOG2PI = float(np.log(2 * np.pi))

#: Remainders (random effects after the first term) up to this size are handled
#: with dense arrays, which avoids sparse-matrix overhead in small models.
DENSE_REST_MAX = 400
#: ... and when their dense coupling block with the first term has at most this many
#: cells or no more cells than observations (so it never dominates memory).
DENSE_REST_CELLS = 100_000


def theta_layout(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of theta's lower-triangular entries (column-major, as lme4)."""
    rows, cols = [], []
    for c in range(k):
        for r in range(c, k):
            rows.append(r)
            cols.append(c)
    return np.array(rows), np.array(cols)


_CHUNK_ROWS = 1 << 14  # rows per chunk when summing by level


def _counts(codes: np.ndarray, G: int) -> np.ndarray:
    """Number of rows per level (exact integer counts, accumulated chunk by chunk)."""
    out = np.zeros(G, dtype=np.int64)
    for i in range(0, len(codes), _CHUNK_ROWS):
        out += np.bincount(codes[i: i + _CHUNK_ROWS], minlength=G)
    return out


def _level_sums(codes: np.ndarray, G: int, a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Sum of ``a`` (or of ``a * b``) over the rows of each level.

    The same additions in the same order as ``np.bincount(codes, weights=a * b)``
    (so bit for bit the same sums), done chunk by chunk so that neither the
    products nor contiguous copies of strided columns take memory per row.
    """
    out = np.zeros(G)
    for i in range(0, len(codes), _CHUNK_ROWS):
        w = a[i: i + _CHUNK_ROWS] if b is None else a[i: i + _CHUNK_ROWS] * b[i: i + _CHUNK_ROWS]
        np.add.at(out, codes[i: i + _CHUNK_ROWS], w)
    return out


def _pair_counts(ca: np.ndarray, cb: np.ndarray, na: int, nb: int, oa: int, ob: int):
    """Rows, columns and counts of the level pairs (a, b) that occur, sorted by a then b.

    Nested factors (each level of b within one level of a) are counted in
    O(levels) memory; otherwise the pair keys are counted chunk by chunk.
    """
    n = len(ca)
    owner = np.full(nb, -1, dtype=np.int64)
    for i in range(0, n, _CHUNK_ROWS):
        owner[cb[i: i + _CHUNK_ROWS]] = ca[i: i + _CHUNK_ROWS]
    if all(np.array_equal(owner[cb[i: i + _CHUNK_ROWS]], ca[i: i + _CHUNK_ROWS])
           for i in range(0, n, _CHUNK_ROWS)):
        cnt = _counts(cb, nb)
        b = np.flatnonzero(cnt)
        a = owner[b]
        order = np.lexsort((b, a))
        a, b = a[order], b[order]
        return a + oa, b + ob, cnt[b].astype(float)
    keys, cnts = [], []
    for i in range(0, n, _CHUNK_ROWS):
        key = ca[i: i + _CHUNK_ROWS].astype(np.int64)
        key *= nb
        key += cb[i: i + _CHUNK_ROWS]
        u, c = np.unique(key, return_counts=True)
        keys.append(u)
        cnts.append(c)
    u, inv = np.unique(np.concatenate(keys), return_inverse=True)
    cnt = np.bincount(inv.ravel(), weights=np.concatenate(cnts).astype(float), minlength=len(u))
    return u // nb + oa, u % nb + ob, cnt


def _term_sparse(Z: np.ndarray, codes: np.ndarray, G: int) -> sp.csr_matrix:
    n, k = Z.shape
    if k == 1:  # one entry per row: build the CSR arrays directly
        return sp.csr_matrix((np.ascontiguousarray(Z[:, 0], dtype=float), codes, np.arange(n + 1)),
                             shape=(n, G))
    rows = np.repeat(np.arange(n), k)
    cols = (codes[:, None] * k + np.arange(k)[None, :]).ravel()
    return sp.csr_matrix((Z.ravel(), (rows, cols)), shape=(n, G * k))


@dataclass
class CrossProducts:
    """The cross-product blocks of one (weighted) design.

    ``head`` holds Z0'Z0 of the first term as (G0, k0, k0) blocks, ``ZtZ_rh`` and
    ``ZtZ_rr`` the sparse blocks coupling the other terms, ``ZtXy`` = Z'[X y]
    (q x (p+1)) and ``XyXy`` = [X y]'[X y].
    """

    shapes: list
    head: np.ndarray
    ZtZ_rh: sp.csr_matrix | None
    ZtZ_rr: sp.csr_matrix | None
    ZtXy: np.ndarray
    XyXy: np.ndarray
    n: int
    p: int

    @classmethod
    def build(cls, X: np.ndarray, y: np.ndarray, Zs: list, codes: list, nlevels: list,
              weights: np.ndarray | None = None) -> "CrossProducts":
        """Form the blocks once from the design (terms already in model order)."""
        n, p = X.shape
        y = np.asarray(y, dtype=float)
        if weights is not None:
            sw = np.sqrt(np.asarray(weights, dtype=float))
            X = X * sw[:, None]
            y = y * sw
            Zs = [Z * sw[:, None] for Z in Zs]
        cols = [X[:, j] for j in range(p)] + [y]  # views: no stacked copy of the data
        shapes = [TermShape(Z.shape[1], G) for Z, G in zip(Zs, nlevels)]
        # first term: block-diagonal, sums by level
        Z0, c0, G0 = Zs[0], codes[0], nlevels[0]
        k0 = Z0.shape[1]
        ones0 = k0 == 1 and Z0.strides[0] == 0  # intercept-only term (broadcast column of ones)
        head = np.empty((G0, k0, k0))
        for a in range(k0):
            for b in range(a, k0):
                v = (_counts(c0, G0).astype(float) if ones0 else _level_sums(c0, G0, Z0[:, a], Z0[:, b]))
                head[:, a, b] = v
                head[:, b, a] = v
        ZtXy0 = np.empty((G0, k0, p + 1))
        for a in range(k0):
            for j in range(p + 1):
                ZtXy0[:, a, j] = _level_sums(c0, G0, cols[j]) if ones0 else _level_sums(c0, G0, Z0[:, a], cols[j])
        parts = [ZtXy0.reshape(G0 * k0, p + 1)]
        ZtZ_rh = ZtZ_rr = None
        if len(Zs) > 1 and all(Z.shape[1] == 1 and Z.strides[0] == 0 for Z in Zs):
            # intercept-only terms: Z'Z blocks are counts of level pairs, Z'[X y] sums by level
            offs = np.cumsum([0] + list(nlevels[1:]))
            qr = int(offs[-1])
            rh = [_pair_counts(c, c0, G, G0, o, 0) for c, G, o in zip(codes[1:], nlevels[1:], offs[:-1])]
            ZtZ_rh = sp.csr_matrix((np.concatenate([t[2] for t in rh]),
                                    (np.concatenate([t[0] for t in rh]), np.concatenate([t[1] for t in rh]))),
                                   shape=(qr, G0))
            rr = []
            for i, (ci, oi) in enumerate(zip(codes[1:], offs[:-1])):
                for j, (cj, oj) in enumerate(zip(codes[1:], offs[:-1])):
                    rr.append(_pair_counts(ci, cj, nlevels[1 + i], nlevels[1 + j], oi, oj))
            ZtZ_rr = sp.csr_matrix((np.concatenate([t[2] for t in rr]),
                                    (np.concatenate([t[0] for t in rr]), np.concatenate([t[1] for t in rr]))),
                                   shape=(qr, qr))
            parts.append(np.vstack([np.column_stack([_level_sums(c, G, col) for col in cols])
                                    for c, G in zip(codes[1:], nlevels[1:])]))
        elif len(Zs) > 1:
            Z0s = _term_sparse(Z0, c0, G0)
            Zr = sp.hstack([_term_sparse(Z, c, G) for Z, c, G in zip(Zs[1:], codes[1:], nlevels[1:])]).tocsr()
            ZrT = Zr.T.tocsr()
            ZtZ_rh = (ZrT @ Z0s).tocsr()
            ZtZ_rr = (ZrT @ Zr).tocsr()
            parts.append(np.column_stack([ZrT @ c for c in cols]))
        XyXy = np.empty((p + 1, p + 1))
        XyXy[:p, :p] = X.T @ X
        XyXy[:p, p] = XyXy[p, :p] = X.T @ y
        XyXy[p, p] = y @ y
        return cls(shapes=shapes, head=head, ZtZ_rh=ZtZ_rh, ZtZ_rr=ZtZ_rr,
                   ZtXy=np.vstack(parts), XyXy=XyXy, n=n, p=p)


class _DiagFactor:
    """Factor of a diagonal system matrix (single scalar random effect)."""

    def __init__(self, d):
        self.d = d
        self.logdet = float(np.log(d).sum())

    def quad(self, M):
        return M.T @ (M / self.d[:, None])

    def solve(self, B):
        return B / self.d.reshape(-1, *([1] * (B.ndim - 1)))

    def inv_diag_blocks(self):
        return [(1.0 / self.d)[:, None, None]]


class _PooledDiag(_DiagFactor):
    """Diagonal factor whose log-determinant was computed from pooled entries."""

    def __init__(self, logdet, head, t):
        self.logdet = logdet
        self._head, self._t = head, t

    @property
    def d(self):
        return self._head * (self._t * self._t) + 1.0


class PLSCore:
    """Profiled (RE)ML criterion and PLS solutions for a fixed set of cross-products."""

    def __init__(self, cp: CrossProducts):
        self.cp = cp
        self.shapes = cp.shapes
        self.layouts = [theta_layout(s.k) for s in self.shapes]
        self.ntheta = int(sum(len(r) for r, _ in self.layouts))
        lower = []
        for (r, c) in self.layouts:
            lower.extend(np.where(r == c, 0.0, -np.inf))
        self.lower = np.array(lower)
        self.offsets = np.cumsum([0] + [s.q for s in self.shapes])
        self._outer = None
        self._pooled = None
        self._plan: dict = {}
        if len(self.shapes) == 1 and self.shapes[0].k == 1 and (cp.p + 1) ** 2 <= 64:
            Z = cp.ZtXy
            self._outer = np.ascontiguousarray((Z[:, :, None] * Z[:, None, :]).reshape(len(Z), -1))
            # levels sharing the same diagonal entry (e.g. the same cluster size for a random
            # intercept) can be pooled: each evaluation then costs O(number of distinct entries)
            hv = cp.head[:, 0, 0]
            uniq, inv, counts = np.unique(hv, return_inverse=True, return_counts=True)
            if len(uniq) <= max(16, len(hv) // 8):
                pool = sp.csr_matrix((np.ones(len(hv)), (inv, np.arange(len(hv)))), shape=(len(uniq), len(hv)))
                self._pooled = (uniq, counts.astype(float), np.asarray(pool @ self._outer))
        # sparsity pattern of Lambda for terms 2.. (rows, cols, theta index)
        if len(self.shapes) > 1:
            rows, cols, tix = [], [], []
            t0 = len(self.layouts[0][0])
            off = 0
            for s, (r, c) in zip(self.shapes[1:], self.layouts[1:]):
                base = off + np.arange(s.G) * s.k
                rows.append((base[:, None] + r[None, :]).ravel())
                cols.append((base[:, None] + c[None, :]).ravel())
                tix.append(np.tile(t0 + np.arange(len(r)), s.G))
                t0 += len(r)
                off += s.q
            self._lam_rows = np.concatenate(rows)
            self._lam_cols = np.concatenate(cols)
            self._lam_tix = np.concatenate(tix)
            self._qr = off
            self._scalar_rest = all(sh.k == 1 for sh in self.shapes[1:])
            if self._scalar_rest:
                # identity added on the diagonal: make sure every diagonal entry is stored
                c = cp.ZtZ_rr.tocoo()
                diag = np.arange(off)
                rr = sp.csr_matrix((np.concatenate([c.data, np.zeros(off)]),
                                    (np.concatenate([c.row, diag]), np.concatenate([c.col, diag]))),
                                   shape=(off, off))
                rr.sum_duplicates()
                rr.sort_indices()
                cp.ZtZ_rr = rr
                cp.ZtZ_rh = cp.ZtZ_rh.tocsr()
                self._rh_rows = np.repeat(np.arange(off), np.diff(cp.ZtZ_rh.indptr))
                self._rr_rows = np.repeat(np.arange(off), np.diff(rr.indptr))
                self._rr_diag = np.flatnonzero(self._rr_rows == rr.indices)
            # small remainders: dense blocks avoid sparse-matrix overhead per evaluation
            # (the dense coupling block A21 is off x q0: only when that is no larger than the data)
            self.dense_rest = off <= DENSE_REST_MAX and off * self.shapes[0].q <= max(cp.n, DENSE_REST_CELLS)
            if self.dense_rest:
                # nested random intercepts: Lambda is diagonal, so A21 is Z'Z_rh with scaled rows,
                # expanded from the sparse counts when needed; otherwise keep the transposed layout
                self._scaled_rows = self.shapes[0].k == 1 and self._scalar_rest
                if not self._scaled_rows:
                    self._ZtZ_hr = cp.ZtZ_rh.T.toarray()
                self._ZtZ_rr = cp.ZtZ_rr.toarray()

    def theta_start(self) -> np.ndarray:
        """lme4's starting value: identity relative covariance factors."""
        return np.concatenate([(r == c).astype(float) for r, c in self.layouts])

    def T_blocks(self, theta: np.ndarray) -> list[np.ndarray]:
        """Relative covariance factor (k x k, lower triangular) per term."""
        out, i = [], 0
        for s, (r, c) in zip(self.shapes, self.layouts):
            T = np.zeros((s.k, s.k))
            T[r, c] = theta[i: i + len(r)]
            out.append(T)
            i += len(r)
        return out

    def _lambda_rest(self, theta):
        return sp.csr_matrix((theta[self._lam_tix], (self._lam_rows, self._lam_cols)),
                             shape=(self._qr, self._qr))

    def factor(self, theta: np.ndarray):
        """Factor A(theta); returns (factor, Lambda'Z'[X y], T blocks)."""
        theta = np.asarray(theta, dtype=float)
        cp = self.cp
        Ts = self.T_blocks(theta)
        T0 = Ts[0]
        G0, k0 = self.shapes[0].G, self.shapes[0].k
        if k0 == 1:
            head = cp.head * (T0[0, 0] ** 2) + 1.0
        else:
            head = np.matmul(np.matmul(T0.T[None], cp.head), T0[None]) + np.eye(k0)[None]
        A21 = A22 = None
        if len(self.shapes) > 1 and self.dense_rest:
            rest_T = Ts[1:]
            if self._scaled_rows:  # (Z0'Zr t0)' scaled row by row with the diagonal of Lambda_r
                A21 = cp.ZtZ_rh.toarray()
                A21 *= T0[0, 0]
                A21 *= theta[self._lam_tix][:, None]
            else:
                W = self.lambda_t_times(Ts, self._ZtZ_hr, terms=slice(0, 1))      # Lambda0' Z0'Zr
                A21 = self.lambda_t_times(rest_T, np.ascontiguousarray(W.T), terms=slice(1, None))
                del W
            B = self.lambda_t_times(rest_T, self._ZtZ_rr, terms=slice(1, None))
            A22 = self.lambda_t_times(rest_T, np.ascontiguousarray(B.T), terms=slice(1, None))
            A22[np.diag_indices_from(A22)] += 1.0
        elif len(self.shapes) > 1 and self._scalar_rest:
            # all remaining terms scalar: Lambda_r is diagonal, so scale the stored values
            lam = theta[self._lam_tix]
            rh, rr = cp.ZtZ_rh, cp.ZtZ_rr
            s0 = T0[0, 0] if k0 == 1 else None
            if k0 == 1:
                A21 = sp.csr_matrix((rh.data * lam[self._rh_rows] * s0, rh.indices, rh.indptr), shape=rh.shape)
            else:
                L0 = sp.kron(sp.identity(G0, format="csr"), sp.csr_matrix(T0), format="csr")
                A21 = sp.csr_matrix((rh.data * lam[self._rh_rows], rh.indices, rh.indptr), shape=rh.shape) @ L0
            vals = rr.data * lam[self._rr_rows] * lam[rr.indices]
            vals[self._rr_diag] += 1.0
            A22 = sp.csr_matrix((vals, rr.indices, rr.indptr), shape=rr.shape)
        elif len(self.shapes) > 1:
            Lr = self._lambda_rest(theta)
            LrT = Lr.T.tocsr()
            if k0 == 1:
                A21 = (LrT @ cp.ZtZ_rh) * T0[0, 0]
            else:
                L0 = sp.kron(sp.identity(G0, format="csr"), sp.csr_matrix(T0), format="csr")
                A21 = LrT @ cp.ZtZ_rh @ L0
            A22 = LrT @ cp.ZtZ_rr @ Lr + sp.identity(self._qr, format="csr")
        fac = factor_system(head, A21, A22, self.shapes, self._plan, overwrite_a21=True)
        M = self.lambda_t_times(Ts, cp.ZtXy)
        return fac, M, Ts

    def lambda_t_times(self, Ts, B: np.ndarray, terms: slice = slice(None)) -> np.ndarray:
        """Lambda' B for a q x m array B (or the rows of a subset of terms)."""
        out = np.empty_like(B)
        m = B.shape[1]
        shapes = self.shapes[terms]
        offs = np.cumsum([0] + [s.q for s in shapes])
        for s, T, a, b in zip(shapes, Ts, offs[:-1], offs[1:]):
            blk = B[a:b].reshape(s.G, s.k, m)
            if s.k > 1:
                out[a:b] = np.matmul(T.T[None], blk).reshape(s.q, m)
            else:
                np.multiply(blk.reshape(s.q, m), T[0, 0], out=out[a:b])
        return out

    def lambda_times(self, Ts, U: np.ndarray) -> np.ndarray:
        """Lambda U for a q-vector (or q x m array) U."""
        U2 = U.reshape(len(U), -1)
        out = np.empty_like(U2)
        m = U2.shape[1]
        for s, T, a, b in zip(self.shapes, Ts, self.offsets[:-1], self.offsets[1:]):
            blk = U2[a:b].reshape(s.G, s.k, m)
            out[a:b] = np.matmul(T[None], blk).reshape(s.q, m)
        return out.reshape(U.shape)

    def evaluate(self, theta: np.ndarray, reml: bool) -> dict:
        """Everything the profiled criterion needs at ``theta``.

        Returns a dict with ``deviance`` (ML deviance or REML criterion),
        ``ldL2`` (log|A|), ``ldRX2`` (log|RX'RX|), ``pwrss`` (r2), ``beta``,
        ``RXtRX`` and the factor objects (``fac``, ``M``, ``Ts``).
        """
        cp = self.cp
        p, n = cp.p, cp.n
        if len(self.shapes) == 1 and self.shapes[0].k == 1:
            # one scalar random effect: A is diagonal, everything is elementwise
            t = float(theta[0])
            if self._pooled is not None:
                uniq, counts, agg = self._pooled
                du = uniq * (t * t) + 1.0
                M = None
                Q = ((t * t) * (agg.T @ (1.0 / du))).reshape(p + 1, p + 1)
                fac = _PooledDiag(float(counts @ np.log(du)), cp.head[:, 0, 0], t)
                Ts = [np.array([[t]])]
                d = None
            else:
                d = cp.head[:, 0, 0] * (t * t) + 1.0
            if d is None:
                pass
            elif self._outer is not None:  # sum_g (t^2 / d_g) z_g z_g' as one matrix-vector product
                M = None  # formed on demand by solve()
                Q = ((t * t) * (self._outer.T @ (1.0 / d))).reshape(p + 1, p + 1)
            else:
                M = cp.ZtXy * t
                Q = M.T @ (M / d[:, None])
            if d is not None:
                fac = _DiagFactor(d)
                Ts = [np.array([[t]])]
        else:
            fac, M, Ts = self.factor(theta)
            Q = fac.quad(M)
        Ryy = cp.XyXy - Q
        RXtRX = Ryy[:p, :p]
        try:
            R = np.linalg.cholesky(RXtRX)
        except np.linalg.LinAlgError:
            return {"deviance": np.inf}
        cb = np.linalg.solve(R, Ryy[:p, p])
        beta = np.linalg.solve(R.T, cb)
        pwrss = float(Ryy[p, p] - cb @ cb)
        if not pwrss > 0:
            return {"deviance": np.inf}
        ldL2 = fac.logdet
        ldRX2 = 2.0 * float(np.log(np.diag(R)).sum())
        if reml:
            nmp = n - p
            dev = ldL2 + ldRX2 + nmp * (1.0 + _LOG2PI + np.log(pwrss / nmp))
        else:
            dev = ldL2 + n * (1.0 + _LOG2PI + np.log(pwrss / n))
        return {"deviance": float(dev), "ldL2": ldL2, "ldRX2": ldRX2, "pwrss": pwrss,
                "beta": beta, "RXtRX": RXtRX, "fac": fac, "M": M, "Ts": Ts}

    def deviance(self, theta: np.ndarray, reml: bool) -> float:
        try:
            return self.evaluate(theta, reml)["deviance"]
        except np.linalg.LinAlgError:
            return np.inf

    def deviance_varpar(self, varpar: np.ndarray, reml: bool) -> float:
        """Deviance at (theta, sigma) without profiling sigma (lmerTest's parameterisation)."""
        theta, sigma = varpar[:-1], varpar[-1]
        ev = self.evaluate(theta, reml)
        n, p = self.cp.n, self.cp.p
        s2 = sigma ** 2
        dev = ev["ldL2"] + ev["pwrss"] / s2 + n * np.log(2 * np.pi * s2)
        if reml:
            dev += ev["ldRX2"] - p * np.log(2 * np.pi * s2)
        return float(dev)

    def vcov_varpar(self, varpar: np.ndarray, reml: bool) -> np.ndarray:
        """sigma^2 (RX'RX)^{-1} at (theta, sigma)."""
        ev = self.evaluate(varpar[:-1], reml)
        return varpar[-1] ** 2 * np.linalg.inv(ev["RXtRX"])

    def solve(self, theta: np.ndarray, beta: np.ndarray | None = None, reml: bool = True):
        """Conditional modes: returns (beta, u, b per term as (G, k) arrays, factor)."""
        ev = self.evaluate(theta, reml)
        p = self.cp.p
        beta = ev["beta"] if beta is None else beta
        fac, M, Ts = ev["fac"], ev["M"], ev["Ts"]
        if M is None:
            M = self.lambda_t_times(Ts, self.cp.ZtXy)
        u = fac.solve((M[:, p] - M[:, :p] @ beta)[:, None])[:, 0]
        b = self.lambda_times(Ts, u)
        bs = [b[a:c].reshape(s.G, s.k) for s, a, c in zip(self.shapes, self.offsets[:-1], self.offsets[1:])]
        return beta, u, bs, ev
