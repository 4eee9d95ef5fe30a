"""Limit the BLAS thread pool while the small per-evaluation matrices of a mixed model are computed."""

from __future__ import annotations

__all__ = ["_blas_single_thread"]

_CONTROLLER = None


def _blas_single_thread():
    """Limit BLAS to one thread: the per-evaluation matrices are small and
    multi-threaded BLAS only adds synchronisation cost (and contends with other work)."""
    global _CONTROLLER
    try:
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController
            _CONTROLLER = ThreadpoolController()  # scanning loaded libraries is slow: do it once
        return _CONTROLLER.limit(limits=1, user_api="blas")
    except Exception:  # pragma: no cover - threadpoolctl missing
        import contextlib
        return contextlib.nullcontext()
