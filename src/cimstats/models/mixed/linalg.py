"""Blocked sparse Cholesky factorisation for the mixed-model system matrix.

The penalised least-squares system of a mixed model has the symmetric
positive-definite matrix ``A = Lambda' Z'Z Lambda + I`` (q x q), with its rows
grouped by random-effect term: for each term the levels of its grouping factor
times the k columns of the term. Because every observation belongs to exactly
one level of a factor, the diagonal block of the first term is block-diagonal
(G blocks of k x k). Eliminating it with a batched Cholesky leaves the Schur
complement ``S = A22 - L21 L21'`` on the remaining terms; for nested factors the
first term of ``S`` is again block-diagonal (no fill-in), so elimination
recurses; for crossed factors ``S`` is factored densely when it is small or with
a sparse LU in a fill-reducing (minimum-degree) order otherwise.

Each factor node offers what the profiled criterion needs:
``logdet`` (log det A), ``quad(M)`` = M' A^{-1} M, ``solve(B)`` = A^{-1} B and
``inv_diag_blocks()`` (the k x k diagonal blocks of A^{-1} per term, used for
conditional variances of random effects). Numbers only: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.sparse.linalg import splu

__all__ = ["TermShape", "factor_system", "chol_batch", "DENSE_MAX"]

#: Largest Schur complement (rows) factored as a dense matrix.
DENSE_MAX = 4000
#: Schur complements up to this size are factored densely even when block-diagonal.
SMALL_DENSE = 400
_CHUNK = 4_000_000  # entries of a dense work array in inv_diag_blocks


class TermShape(tuple):
    """(k, G): columns per level and number of levels of one random-effect term."""

    def __new__(cls, k: int, G: int):
        return super().__new__(cls, (int(k), int(G)))

    @property
    def k(self) -> int:
        return self[0]

    @property
    def G(self) -> int:
        return self[1]

    @property
    def q(self) -> int:
        return self[0] * self[1]


def chol_batch(B: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of SPD matrices (G, k, k)."""
    if B.shape[1] == 1:
        return np.sqrt(B)
    return np.linalg.cholesky(B)


def _tri_inv_batch(L: np.ndarray) -> np.ndarray:
    if L.shape[1] == 1:
        return 1.0 / L
    if L.shape[1] == 2:
        out = np.zeros_like(L)
        a, c, d = L[:, 0, 0], L[:, 1, 0], L[:, 1, 1]
        out[:, 0, 0] = 1.0 / a
        out[:, 1, 1] = 1.0 / d
        out[:, 1, 0] = -c / (a * d)
        return out
    return np.linalg.inv(L)


def _blockdiag(blocks: np.ndarray) -> sp.spmatrix:
    G, k, _ = blocks.shape
    if k == 1:
        return sp.diags(blocks[:, 0, 0]).tocsr()
    return sp.bsr_matrix((blocks, np.arange(G), np.arange(G + 1)), shape=(G * k, G * k)).tocsr()


def _split_terms(diag_blocks_of, shapes):
    out, off = [], 0
    for s in shapes:
        out.append(diag_blocks_of(off, s))
        off += s.q
    return out


class _HeadNode:
    """Batched elimination of the first (block-diagonal) term."""

    def __init__(self, blocks: np.ndarray, A21, A22, shapes, plan=None, overwrite_a21: bool = False):
        self.shape = shapes[0]
        self.L11 = chol_batch(blocks)
        self.L11inv = _tri_inv_batch(self.L11)
        G, k = self.shape.G, self.shape.k
        diag = self.L11.reshape(G, k * k)[:, :: k + 1]
        if not np.all(diag > 0) or not np.all(np.isfinite(diag)):
            raise np.linalg.LinAlgError("system matrix is not positive definite")
        self._logdet_head = 2.0 * float(np.log(diag).sum())
        if len(shapes) > 1 and not sp.issparse(A21):
            # dense remainder: L21 = A21 L11^{-T} block by block
            r = A21.shape[0]
            if k == 1 and overwrite_a21:
                A21 *= self.L11inv[:, 0, 0][None, :]  # the caller's work array becomes L21
                self.L21 = A21
            elif k == 1:
                self.L21 = A21 * self.L11inv[:, 0, 0][None, :]
            else:
                self.L21 = np.matmul(A21.reshape(r, G, k).transpose(1, 0, 2),
                                     self.L11inv.transpose(0, 2, 1)).transpose(1, 0, 2).reshape(r, G * k)
            self.rest = _DenseNode(A22 - self.L21 @ self.L21.T, shapes[1:])
        elif len(shapes) > 1 and k == 1:
            # scale the columns of A21 by the inverse diagonal: no sparse product needed
            A21 = A21.tocsr()
            self.L21 = sp.csr_matrix((A21.data * self.L11inv[:, 0, 0][A21.indices], A21.indices, A21.indptr),
                                     shape=A21.shape)
            S = (A22 - self.L21 @ self.L21.T).tocsr()
            self.rest = factor_sparse(S, shapes[1:], plan)
        elif len(shapes) > 1:
            self.L21 = (A21 @ _blockdiag(np.ascontiguousarray(self.L11inv.transpose(0, 2, 1)))).tocsr()
            S = (A22 - self.L21 @ self.L21.T).tocsr()
            self.rest = factor_sparse(S, shapes[1:], plan)
        else:
            self.L21 = None
            self.rest = None

    @property
    def logdet(self) -> float:
        return self._logdet_head + (self.rest.logdet if self.rest is not None else 0.0)

    def _head_forward(self, M1: np.ndarray) -> np.ndarray:
        G, k = self.shape.G, self.shape.k
        m = M1.shape[1]
        if k == 1:
            return M1 * self.L11inv[:, 0, :]
        return np.matmul(self.L11inv, M1.reshape(G, k, m)).reshape(G * k, m)

    def _head_backward(self, Y1: np.ndarray) -> np.ndarray:
        G, k = self.shape.G, self.shape.k
        m = Y1.shape[1]
        if k == 1:
            return Y1 * self.L11inv[:, 0, :]
        return np.matmul(self.L11inv.transpose(0, 2, 1), Y1.reshape(G, k, m)).reshape(G * k, m)

    def quad(self, M: np.ndarray) -> np.ndarray:
        q0 = self.shape.q
        Y1 = self._head_forward(M[:q0])
        out = Y1.T @ Y1
        if self.rest is not None:
            R = M[q0:] - self.L21 @ Y1
            out = out + self.rest.quad(R)
        return out

    def solve(self, B: np.ndarray) -> np.ndarray:
        q0 = self.shape.q
        Y1 = self._head_forward(B[:q0])
        if self.rest is None:
            return self._head_backward(Y1)
        X2 = self.rest.solve(B[q0:] - self.L21 @ Y1)
        X1 = self._head_backward(Y1 - self.L21.T @ X2)
        return np.vstack([X1, X2])

    def inv_diag_blocks(self) -> list[np.ndarray]:
        G, k = self.shape.G, self.shape.k
        C = np.zeros((G, k, k))
        if self.rest is not None:
            r = self.L21.shape[0]
            L21c = self.L21.tocsc() if sp.issparse(self.L21) else self.L21
            step = max(1, _CHUNK // max(r, 1) // k) * k
            for start in range(0, G * k, step):
                stop = min(G * k, start + step)
                D = L21c[:, start:stop]
                D = D.toarray() if sp.issparse(D) else np.asarray(D)
                X = self.rest.solve(D)
                g = (stop - start) // k
                C[start // k: start // k + g] = np.einsum(
                    "rgi,rgj->gij", D.reshape(r, g, k), X.reshape(r, g, k))
        inner = C + np.eye(k)[None, :, :]
        head = np.matmul(np.matmul(self.L11inv.transpose(0, 2, 1), inner), self.L11inv)
        return [head] + (self.rest.inv_diag_blocks() if self.rest is not None else [])


class _DenseNode:
    def __init__(self, S, shapes):
        self.shapes = shapes
        Sd = S.toarray() if sp.issparse(S) else np.asarray(S)
        self.L = np.linalg.cholesky(Sd)
        d = np.diag(self.L)
        self.logdet = 2.0 * float(np.log(d).sum())

    def quad(self, M):
        Y = sla.solve_triangular(self.L, M, lower=True, check_finite=False)
        return Y.T @ Y

    def solve(self, B):
        return sla.cho_solve((self.L, True), B, check_finite=False)

    def inv_diag_blocks(self):
        Linv = sla.solve_triangular(self.L, np.eye(self.L.shape[0]), lower=True, check_finite=False)
        Ainv = Linv.T @ Linv

        def blocks(off, s):
            idx = off + np.arange(s.q).reshape(s.G, s.k)
            return Ainv[idx[:, :, None], idx[:, None, :]]

        return _split_terms(blocks, self.shapes)


class _LUNode:
    """Sparse LU in a symmetric minimum-degree order (large crossed remainders)."""

    def __init__(self, S, shapes):
        self.shapes = shapes
        self.lu = splu(S.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                       options={"SymmetricMode": True})
        self.logdet = float(np.log(np.abs(self.lu.U.diagonal())).sum())
        self.n = S.shape[0]

    def quad(self, M):
        return M.T @ self.lu.solve(np.asarray(M, dtype=float))

    def solve(self, B):
        return self.lu.solve(np.asarray(B, dtype=float))

    def inv_diag_blocks(self):
        out, off = [], 0
        for s in self.shapes:
            blocks = np.zeros((s.G, s.k, s.k))
            step = max(1, _CHUNK // max(self.n, 1) // s.k) * s.k
            for start in range(0, s.q, step):
                stop = min(s.q, start + step)
                E = np.zeros((self.n, stop - start))
                E[off + start + np.arange(stop - start), np.arange(stop - start)] = 1.0
                X = self.lu.solve(E)[off + start: off + stop]
                g = (stop - start) // s.k
                Xr = X.reshape(g, s.k, g, s.k)
                blocks[start // s.k: start // s.k + g] = Xr[np.arange(g), :, np.arange(g), :]
            out.append(blocks)
            off += s.q
        return out


def _head_is_blockdiag(S, shape: TermShape) -> bool:
    q0 = shape.q
    H = S[:q0, :q0].tocoo()
    return bool(np.all(H.row // shape.k == H.col // shape.k))


def _extract_blocks(S, shape: TermShape) -> np.ndarray:
    q0, k = shape.q, shape.k
    H = S[:q0, :q0].tocoo()
    blocks = np.zeros((shape.G, k, k))
    np.add.at(blocks, (H.row // k, H.row % k, H.col % k), H.data)
    return blocks


def factor_sparse(S, shapes, plan: dict | None = None) -> object:
    """Factor a sparse SPD matrix whose rows are grouped by ``shapes``.

    ``plan`` (a dict kept by the caller across evaluations) remembers, per
    depth, whether the leading term was block-diagonal, so the pattern check
    runs once per model rather than once per evaluation.
    """
    S = S.tocsr()
    r = S.shape[0]
    if r <= SMALL_DENSE:  # small remainders (e.g. practices and countries): sparse overhead would dominate
        return _DenseNode(S, shapes)
    depth = len(shapes)
    if plan is not None and depth in plan:
        blockdiag = plan[depth]
    else:
        blockdiag = _head_is_blockdiag(S, shapes[0])
        if plan is not None:
            plan[depth] = blockdiag
    if blockdiag:
        q0 = shapes[0].q
        if len(shapes) > 1:
            return _HeadNode(_extract_blocks(S, shapes[0]), S[q0:, :q0], S[q0:, q0:], shapes, plan)
        return _HeadNode(_extract_blocks(S, shapes[0]), None, None, shapes, plan)
    if r <= DENSE_MAX:
        return _DenseNode(S, shapes)
    return _LUNode(S, shapes)


def factor_system(head_blocks: np.ndarray, A21, A22, shapes, plan: dict | None = None, *,
                  overwrite_a21: bool = False) -> object:
    """Factor ``A`` given the first term's diagonal blocks and the other parts.

    Parameters
    ----------
    head_blocks : ndarray (G0, k0, k0)
        Diagonal blocks of A for the first term (block-diagonal by construction).
    A21, A22 : sparse matrices or None
        The lower-left and lower-right parts of A (None when there is one term).
    shapes : list of TermShape
    plan : dict, optional
        Kept by the caller across evaluations (see :func:`factor_sparse`).
    overwrite_a21 : bool
        Allow a dense ``A21`` to be overwritten with ``L21`` (saves one copy).
    """
    return _HeadNode(head_blocks, A21, A22, list(shapes), plan, overwrite_a21)
