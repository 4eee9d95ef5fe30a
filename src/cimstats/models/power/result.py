"""The result of a power simulation (honours the one result contract)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from cimstats.models._result import FittedResult, OptimizerSummary, ResultSummary, dropped_frame
from cimstats.render.numbers import NumberFormat
from cimstats.render.spec import Cell, Row, TableSpec

__all__ = ["PowerResult"]


def wilson(k: np.ndarray, n: np.ndarray, level: float):
    """Wilson score interval for k successes in n trials (NaN where n is 0)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@dataclass(frozen=True)
class PowerResult(FittedResult):
    """Simulated power for each combination of number of clusters and cluster size.

    Attributes
    ----------
    term : str
        What was tested (a fixed effect, or ``"indirect effect"``).
    design : dict
        The design the data were drawn from (plain numbers and text).
    cells : pandas.DataFrame
        One row per sample size: n_clusters, cluster_size, n_sim, n_valid
        (replications whose fit gave a test), n_significant, n_not_converged,
        mean_estimate.
    alpha : float
    seed : str
        The job's seed (entropy), so the simulation can be repeated exactly.
    """

    kind = "power"

    term: str
    design: dict
    cells: pd.DataFrame = field(repr=False)
    alpha: float
    seed: str

    # -- contract ---------------------------------------------------------------------------
    def tidy(self, *, level: float = 0.95) -> pd.DataFrame:
        """One row per sample size.

        Columns: term, n_clusters, cluster_size, n_total, estimate (the
        simulated power), std_error (its Monte Carlo standard error), statistic
        and p_value (NaN: power is a proportion, not a test), ci_lower and
        ci_upper (Wilson interval at ``level``), n_sim, n_valid,
        n_not_converged, mean_estimate (mean of the tested estimate across
        replications).
        """
        c = self.cells
        k, n = c["n_significant"].to_numpy(float), c["n_valid"].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = k / n
            se = np.sqrt(p * (1 - p) / n)
        lo, hi = wilson(k, n, level)
        size = c["cluster_size"].to_numpy()
        return pd.DataFrame({
            "term": [f"{self.term}: {int(j)} clusters x {int(m)}" if m else f"{self.term}: {int(j)} clusters"
                     for j, m in zip(c["n_clusters"], size)],
            "n_clusters": c["n_clusters"].to_numpy(dtype="int64"),
            "cluster_size": size.astype("int64"),
            "n_total": (c["n_clusters"] * c["cluster_size"]).to_numpy(dtype="int64"),
            "estimate": p, "std_error": se, "statistic": np.nan, "p_value": np.nan,
            "ci_lower": lo, "ci_upper": hi,
            "n_sim": c["n_sim"].to_numpy(dtype="int64"), "n_valid": c["n_valid"].to_numpy(dtype="int64"),
            "n_not_converged": c["n_not_converged"].to_numpy(dtype="int64"),
            "mean_estimate": c["mean_estimate"].to_numpy(dtype=float),
        })

    def glance(self) -> pd.DataFrame:
        t = self.tidy()
        return pd.DataFrame([{
            "model": self.design.get("model"), "outcome": self.design.get("outcome"), "term": self.term,
            "n_sim": int(self.design.get("nsim", 0)), "alpha": self.alpha, "n_designs": len(t),
            "n_not_valid": int((t["n_sim"] - t["n_valid"]).sum()),
            "n_not_converged": int(t["n_not_converged"].sum()),
            "min_power": float(t["estimate"].min()), "max_power": float(t["estimate"].max()), "seed": self.seed,
        }])

    def vcov(self) -> pd.DataFrame:
        """Monte Carlo variances of the power estimates (diagonal: the designs are simulated independently)."""
        t = self.tidy()
        return pd.DataFrame(np.diag(t["std_error"].to_numpy() ** 2), index=t["term"], columns=t["term"])

    @property
    def dropped(self) -> pd.DataFrame:
        """Simulated data sets set nothing aside; replications without a test are counted in ``n_valid``."""
        return dropped_frame({})

    @property
    def optimizer(self) -> OptimizerSummary:
        t = self.tidy()
        n = int(t["n_sim"].sum())
        bad = int((t["n_sim"] - t["n_valid"]).sum() + t["n_not_converged"].sum())
        return OptimizerSummary(
            method="simulation", start=(), final=(), iterations=n, evaluations=n, gradient_norm=float("nan"),
            converged=bad == 0,
            message=("every replication's fit converged" if bad == 0 else
                     f"{bad} of {n} replications gave no test or did not converge; see n_valid and n_not_converged"))

    def to_table_spec(self, *, title: str | None = None, number=None, number_format=None, level: float = 0.95) -> TableSpec:
        fmt = number_format or NumberFormat()
        t = self.tidy(level=level)
        header = ((Cell("Clusters", kind="count"), Cell("Per cluster", kind="count"), Cell("N", kind="count"),
                   Cell("Power", kind="estimate"), Cell(f"{level:.0%} MC interval", kind="ci"),
                   Cell("MC SE", kind="estimate"), Cell("Valid fits", kind="count")),)
        body = tuple(Row((Cell(str(int(r.n_clusters)), kind="count", value=int(r.n_clusters)),
                          Cell(str(int(r.cluster_size)), kind="count", value=int(r.cluster_size)),
                          Cell(f"{int(r.n_total):,}", kind="count", value=int(r.n_total)),
                          Cell(fmt.estimate(r.estimate), kind="estimate", value=float(r.estimate)),
                          Cell(fmt.ci(r.ci_lower, r.ci_upper), kind="ci"),
                          Cell(fmt.estimate(r.std_error), kind="estimate", value=float(r.std_error)),
                          Cell(f"{int(r.n_valid)}/{int(r.n_sim)}", kind="count")))
                     for r in t.itertuples())
        notes = (f"Power to detect {self.term} at alpha = {self.alpha:g}, from {int(self.design.get('nsim', 0))} "
                 f"simulated data sets per design; MC = Monte Carlo.", self._design_text())
        return TableSpec(title=title or f"Simulated power: {self.term}", header=header, body=body, notes=notes,
                         number=number)

    def summary(self) -> ResultSummary:
        g = self.glance().iloc[0]
        lines = (self._design_text(), f"Seed: {self.seed}")
        notes = (self.optimizer.message.capitalize() + ".",)
        return ResultSummary(title=f"Simulation-based power ({g['model']}, {g['outcome']} outcome)", lines=lines,
                             tables=(self.to_table_spec(),), notes=notes)

    def plot(self, *, target: float = 0.8, title: str | None = None):
        """The power curve (:func:`cimstats.render.figures.power_curve`)."""
        from cimstats.render.figures import power_curve  # deferred: figures load matplotlib

        return power_curve(self, target=target, title=title)

    def _design_text(self) -> str:
        d = self.design
        if d.get("model") == "pilot":
            return (f"Simulated from a fitted {d.get('family')} pilot model ({d.get('formula')}), clusters resampled; "
                    f"{self.term} set to {d.get('effect_text')}.")
        parts = [f"{d.get('model')} design", f"ICC {d.get('icc')}"]
        if d.get("model") == "mediation":
            parts.append(f"a = {d.get('a')}, b = {d.get('b')}, c' = {d.get('c_prime')}")
            if d.get("a_moderation"):
                parts.append(f"moderation of a = {d.get('a_moderation')}")
        else:
            parts.append(f"effect {d.get('effect')}")
            if d.get("outcome") == "binary":
                parts.append(f"prevalence {d.get('prevalence')}")
        parts.append(f"exposure at level {d.get('exposure_level')}" + (" (two arms)" if d.get("binary_exposure") else ""))
        if d.get("missing"):
            parts.append(f"{d.get('missing'):.0%} of outcomes missing at random")
        return "Design: " + "; ".join(str(p) for p in parts) + "."

    # -- saving -------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"term": self.term, "design": dict(self.design), "cells": self.cells, "alpha": self.alpha,
                "seed": self.seed}

    @classmethod
    def _from_state(cls, state: dict) -> "PowerResult":
        return cls(term=state["term"], design=dict(state["design"]), cells=state["cells"],
                   alpha=float(state["alpha"]), seed=str(state["seed"]))

    def __repr__(self) -> str:
        return f"PowerResult({self.term!r}, {len(self.cells)} designs, alpha={self.alpha:g})"
