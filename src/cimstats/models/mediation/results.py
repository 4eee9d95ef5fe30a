"""The frozen result of :func:`cimstats.mediation`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cimstats.errors import ModelSpecificationError
from cimstats.models._result import FittedResult, OptimizerSummary, ResultSummary, dropped_frame
from cimstats.models.mediation import kernel as K
from cimstats.models.mediation.spec import build_spec
from cimstats.render import NumberFormat, TableSpec
from cimstats.render import text_formats

_TIDY = ["term", "effect", "path", "level", "moderator_value", "estimate", "std_error", "statistic", "df",
         "p_value", "ci_lower", "ci_upper", "ci_method", "delta_se"]


@dataclass(frozen=True)
class MediationResult(FittedResult):
    """Effects, path coefficients and bootstrap draws of one mediation analysis.

    It honours the result contract (:class:`cimstats.models._result.FittedResult`,
    kind ``"mediation"``): ``tidy``, ``glance``, ``summary``,
    ``to_table_spec``, ``vcov``, ``dropped``, ``optimizer`` and ``save``.
    Everything is kept in the result, bootstrap draws included, so a result
    read back with :func:`cimstats.load_result` answers every method
    (intervals at another level, sensitivity, path diagram) exactly as the
    original does.

    Attributes
    ----------
    spec : Spec
        Roles, equations and effect definitions (see ``cimstats.models.mediation.spec``).
    nobs, n_dropped : int
        Rows used, and rows set aside for a missing value in a model column.
    dropped_detail : DataFrame
        Missing values by column with the reason (column, n_missing, reason);
        a row can miss several. :attr:`dropped` is the same as the contract's
        two-column table (variable, n_missing).
    n_boot, n_boot_failed, seed, ci, level, resampling, n_clusters
        How the bootstrap was run (``seed`` repeats it exactly).
    moderator_values, moderator_values_rule
        Values of the moderator used for conditional effects and how they were chosen.
    acceleration : array or None
        The BCa acceleration of each effect (``ci="bca"`` only), kept so that
        intervals at another level use the same method.

    Methods
    -------
    tidy(), paths(), glance(), summary(), sensitivity(), bootstrap_draws(), vcov()
    """

    kind = "mediation"

    spec: Any
    path_table: pd.DataFrame
    effects: pd.DataFrame
    boot: pd.DataFrame
    boot_params: pd.DataFrame
    sensitivity_table: pd.DataFrame | None
    sensitivity_info: dict
    nobs: int
    n_dropped: int
    dropped_detail: pd.DataFrame
    n_boot: int
    n_boot_failed: int
    seed: int | None
    ci: str
    level: float
    resampling: str
    n_clusters: int | None
    cluster: str | None
    strata: str | None
    moderator_values: tuple
    moderator_values_rule: str
    acceleration: Any = None

    # ------------------------------------------------------------------ tables
    def tidy(self, *, level: float | None = None) -> pd.DataFrame:
        """One row per effect.

        Parameters
        ----------
        level : float, optional
            Confidence level of ``ci_lower`` and ``ci_upper``. By default the
            level the analysis was run at (``self.level``, 0.95 unless
            ``level=`` was given to :func:`cimstats.mediation`). At another
            level the interval is computed again from the stored bootstrap
            draws with the same method (percentile, bias-corrected, or
            bias-corrected and accelerated with the stored acceleration).

        Returns
        -------
        DataFrame
            Columns: term, effect (path, indirect, total_indirect, direct,
            total, conditional_indirect, conditional_direct,
            index_of_moderated_mediation), path, level (within/between for
            multilevel models), moderator_value, estimate, std_error
            (bootstrap SD), statistic (t for a single coefficient, first-order
            delta-method z, i.e. Sobel, for products), df, p_value, ci_lower,
            ci_upper (bootstrap interval), ci_method, delta_se.
        """
        out = self.effects[_TIDY].copy()
        if level is None or level == self.level:
            return out
        lo, hi = self._boot_interval(level)
        out["ci_lower"] = lo
        out["ci_upper"] = hi
        return out

    def _boot_interval(self, level) -> tuple[np.ndarray, np.ndarray]:
        """Bootstrap interval of every effect at ``level``, by the analysis' own interval method."""
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < float(level) < 1:
            raise ModelSpecificationError(f"`level=` is {level!r}; a confidence level strictly between 0 and 1 "
                                          f"(such as 0.95) was expected.")
        boot = self.boot.to_numpy(dtype=float)
        if self.ci == "percentile":
            return K.percentile_interval(boot, float(level))
        est = self.effects["estimate"].to_numpy(dtype=float)
        accel = None if self.ci == "bc" else np.asarray(self.acceleration, dtype=float)
        return K.adjusted_interval(boot, est, float(level), accel)

    @property
    def dropped(self) -> pd.DataFrame:
        """Rows set aside for missing values: one row per model column (variable, n_missing).

        A row missing several columns is counted under each; ``n_dropped`` is
        the number of rows. ``dropped_detail`` adds the role of each column.
        """
        return dropped_frame(dict(zip(self.dropped_detail["column"], self.dropped_detail["n_missing"])))

    @property
    def optimizer(self) -> OptimizerSummary:
        """No numerical optimisation: every equation is solved by least squares in closed form.

        The summary says so (method ``"closed-form least squares"``, no
        iterations, gradient zero at the solution of the normal equations,
        converged); the bootstrap settings are in :meth:`glance`.
        """
        return OptimizerSummary(
            method="closed-form least squares", start=(), final=(), iterations=0, evaluations=0,
            gradient_norm=0.0, converged=True,
            message="each equation is solved by ordinary least squares in closed form; no numerical optimisation "
                    "was run")

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the effects in :meth:`tidy`, from the bootstrap draws.

        Rows and columns are the ``term`` values of :meth:`tidy` (path
        coefficients, indirect, direct, total and conditional effects); the
        entries are the covariances of the bootstrap draws over the resamples
        that succeeded (divisor draws - 1), so the diagonal is the square of
        ``std_error``. The OLS (or cluster-robust) covariance of the
        coefficients of each equation is summarised in :meth:`paths`.
        """
        b = self.boot.to_numpy(dtype=float)
        ok = np.isfinite(b).all(axis=1)
        terms = [str(t) for t in self.boot.columns]
        cov = np.cov(b[ok], rowvar=False, ddof=1).reshape(len(terms), len(terms)) if ok.sum() > 1 else \
            np.full((len(terms), len(terms)), np.nan)
        return pd.DataFrame(cov, index=pd.Index(terms, name="term"), columns=terms)

    def _design_based(self) -> bool:
        return bool(len(self.path_table)) and self.path_table["se_type"].iloc[0] == "design-based"

    def paths(self) -> pd.DataFrame:
        """Coefficients of every regression with OLS standard errors and t-based intervals.

        With ``cluster=`` the standard errors are cluster-robust (CR1) with
        clusters - 1 degrees of freedom. With ``design=`` the coefficients are
        survey-weighted least squares with design-based (linearised) standard
        errors and PSUs - strata degrees of freedom (``se_type`` "design-based").

        Columns: equation (outcome), role (mediator, outcome, total), term, label
        (a, b, c', d21, a_xw ... for coefficients that enter effects), estimate,
        std_error, statistic, df, p_value, ci_lower, ci_upper, r_squared, sigma,
        se_type.
        """
        return self.path_table.copy()

    def glance(self) -> pd.DataFrame:
        """One row describing the analysis: n used, n dropped (with reasons), bootstrap settings."""
        reasons = "; ".join(f"{r.reason}: {r.n_missing}" for r in self.dropped_detail.itertuples()) or ""
        row = {
            "nobs": self.nobs, "n_dropped": self.n_dropped, "dropped_reasons": reasons,
            "n_boot": self.n_boot, "n_boot_failed": self.n_boot_failed, "seed": self.seed,
            "ci_method": self.ci, "level": self.level, "resampling": self.resampling,
            "n_clusters": self.n_clusters, "moderator_values_rule": self.moderator_values_rule,
        }
        if self.sensitivity_info:
            row["rho_at_zero_acme"] = self.sensitivity_info["rho_at_zero_acme"]
        return pd.DataFrame([row])

    def sensitivity(self) -> pd.DataFrame:
        """ACME as a function of the mediator-outcome error correlation rho.

        Columns: rho, acme, ci_lower, ci_upper (bootstrap percentile interval of
        ACME(rho) over the same resamples). ``attrs`` holds rho_at_zero_acme (the
        rho at which the ACME is zero, with its bootstrap interval
        rho_at_zero_ci), r2_star_product_at_zero (the product of the shares of
        residual variance of M and Y that an unmeasured confounder must explain)
        and r2_tilde_product_at_zero (the same as shares of total variance).

        Raises
        ------
        ModelSpecificationError
            The analysis is not a single-mediator model without moderation or
            within/between split, where the sensitivity analysis is defined.
        """
        if self.sensitivity_table is None:

            raise ModelSpecificationError(
                "`sensitivity()` is defined for one mediator without `moderator=` or `within_between=`, "
                "and with `sensitivity=True`; refit such a model to obtain it.")
        out = self.sensitivity_table.copy()
        out.attrs.update(self.sensitivity_info)
        return out

    def bootstrap_draws(self, params: bool = False) -> pd.DataFrame:
        """The bootstrap distribution: one row per resample, one column per effect
        (or per coefficient with ``params=True``); set-aside resamples are NaN."""
        return (self.boot_params if params else self.boot).copy()

    def conf_int(self, level: float | None = None) -> pd.DataFrame:
        """Bootstrap intervals of the effects (at another ``level`` from the same draws and the same method)."""
        return self.tidy(level=level).set_index("term")[["ci_lower", "ci_upper"]]

    @property
    def params(self) -> pd.Series:
        return self.effects.set_index("term")["estimate"].copy()

    @property
    def std_errors(self) -> pd.Series:
        return self.effects.set_index("term")["std_error"].copy()

    # ------------------------------------------------------------------ text
    def summary(self, format: str | None = None) -> ResultSummary:
        """Report of the model, sample, paths, effects and (if computed) sensitivity.

        Returns
        -------
        ResultSummary
            Header lines (model, roles, rows used and set aside, bootstrap
            settings, moderator values, R-squared of each equation), the
            publication table (:meth:`to_table_spec`) and the sensitivity
            result as a note. ``str()`` gives plain text; ``to_html()``,
            ``to_latex()`` and ``to_markdown()`` the other formats.

        Parameters
        ----------
        format : {"text", "html", "latex", "markdown"}, optional
            Deprecated: the string forms of earlier versions (the text report,
            or the publication table in another format). Use ``str(summary())``,
            ``summary().to_html()`` and so on instead; ``format=`` will be
            removed in the next release.
        """
        if format is not None:
            warnings.warn("`summary(format=...)` is deprecated and will be removed in the next release; use "
                          "str(result.summary()) or result.summary().to_html(), .to_latex(), .to_markdown().",
                          DeprecationWarning, stacklevel=2)
            return self._legacy_summary(format)
        title, lines = self._header()
        p = self.path_table
        for (role, eq), grp in p.groupby(["role", "equation"], sort=False):
            lines.append(f"  R2 of {eq}" + (" (total-effect model)" if role == "total" else "")
                         + f" = {grp['r_squared'].iloc[0]:.3f}")
        notes = []
        if self.sensitivity_info:
            si = self.sensitivity_info
            notes.append(f"Sensitivity: ACME = 0 at rho = {si['rho_at_zero_acme']:.3f} "
                         f"(R2*_M R2*_Y = {si['r2_star_product_at_zero']:.3f}, "
                         f"R2~_M R2~_Y = {si['r2_tilde_product_at_zero']:.3f})")
        return ResultSummary(title=title, lines=tuple(lines), tables=(self.to_table_spec(),), notes=tuple(notes))

    def _header(self) -> tuple[str, list[str]]:
        s = self.spec
        kind = "serial" if s.serial and len(s.mediators) > 1 else "parallel" if len(s.mediators) > 1 else "single"
        title = (f"Mediation analysis ({kind} mediator{'s' if len(s.mediators) > 1 else ''}"
                 + (", multilevel 1-1-1 within/between" if s.within_between else "")
                 + (f", moderated by {s.moderator} on {', '.join(s.moderated_paths)}" if s.moderator else "") + ")")
        lines = [f"  X: {s.x}   M: {', '.join(s.mediators)}   Y: {s.y}"
                 + (f"   covariates: {', '.join(s.covariates)}" if s.covariates else ""),
                 f"  n used: {self.nobs}   n dropped: {self.n_dropped}"
                 + (f" ({self.glance().loc[0, 'dropped_reasons']})" if self.n_dropped else ""),
                 f"  bootstrap: {self.n_boot} resamples of {self.resampling}"
                 + (f" ({self.n_clusters} clusters)" if self.n_clusters else "")
                 + f", seed {self.seed}, {self.ci} {self.level:.0%} intervals"
                 + (f", {self.n_boot_failed} set aside" if self.n_boot_failed else "")]
        if s.moderator:
            vals = ", ".join(f"{v:.4g}" for v in self.moderator_values)
            lines.append(f"  moderator values ({self.moderator_values_rule}): {vals}")
        return title, lines

    def _legacy_summary(self, format: str) -> str:
        """The string forms ``summary(format=...)`` gave before the contract (kept one release)."""
        if format != "text":

            writers = {"html": lambda sp: text_formats.to_html(sp, standalone=False),
                       "latex": text_formats.to_latex, "markdown": text_formats.to_markdown}
            if format not in writers:
                raise ModelSpecificationError(f"`format` is {format!r}; expected 'text', 'html', 'latex' or "
                                              "'markdown'.")
            return writers[format](self.to_table_spec())
        title, lines = self._header()
        lines.insert(0, title)
        lines.append("")
        lines.append("Regressions (OLS):")
        p = self.path_table
        for eq, grp in p.groupby(["role", "equation"], sort=False):
            lines.append(f"  {eq[1]}" + (" (total-effect model)" if eq[0] == "total" else "")
                         + f"   R2 = {grp['r_squared'].iloc[0]:.3f}")
            for r in grp.itertuples():
                lines.append(f"    {r.term:<28} {r.label:<10} {r.estimate:>10.4f} {r.std_error:>9.4f} "
                             f"{r.p_value:>8.4f}")
        lines.append("")
        lines.append(f"Effects (estimate, bootstrap SE, {self.ci} {self.level:.0%} CI):")
        for r in self.effects.itertuples():
            lines.append(f"  {r.term:<40} {r.estimate:>10.4f} {r.std_error:>9.4f}  "
                         f"[{r.ci_lower:.4f}, {r.ci_upper:.4f}]")
        if self.sensitivity_info:
            si = self.sensitivity_info
            lines.append("")
            lines.append(f"Sensitivity: ACME = 0 at rho = {si['rho_at_zero_acme']:.3f} "
                         f"(R2*_M R2*_Y = {si['r2_star_product_at_zero']:.3f}, "
                         f"R2~_M R2~_Y = {si['r2_tilde_product_at_zero']:.3f})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return str(self.summary())

    # ------------------------------------------------------------------ publication table
    def _description(self) -> tuple[str, list[str]]:
        s = self.spec
        kind = "serial" if s.serial and len(s.mediators) > 1 else "parallel" if len(s.mediators) > 1 else "single"
        title = (f"{'Moderated m' if s.moderator else 'M'}ediation of the effect of {s.x} on {s.y} through "
                 f"{', '.join(s.mediators)}")
        notes = [f"{kind.capitalize()} mediator{'s' if len(s.mediators) > 1 else ''}"
                 + (", multilevel 1-1-1 model split into within- and between-cluster effects" if s.within_between
                    else "")
                 + (f"; {s.moderator} moderates the {', '.join(s.moderated_paths)} path(s)" if s.moderator else "")
                 + (f"; adjusted for {', '.join(s.covariates)}" if s.covariates else "") + ".",
                 f"n = {self.nobs} used, {self.n_dropped} set aside for missing values"
                 + (f" ({self.glance().loc[0, 'dropped_reasons']})" if self.n_dropped else "") + ".",
                 (f"Paths: survey-weighted least-squares coefficients with design-based (linearised) standard errors "
                  if self._design_based() else
                  f"Paths: OLS coefficients with {'cluster-robust (CR1)' if self.cluster else 'OLS'} standard errors ")
                 + "and t-based intervals. Effects: estimate with bootstrap standard error and "
                 f"{self.ci} {self.level:.0%} interval from {self.n_boot} resamples of "
                 f"{self.resampling}" + (f" ({self.n_clusters} clusters)" if self.n_clusters else "")
                 + f", seed {self.seed}" + (f"; {self.n_boot_failed} resamples set aside" if self.n_boot_failed
                                            else "") + "; p-values of effects are first-order delta-method "
                 "(Sobel) tests."]
        if s.moderator:
            notes.append(f"Moderator values ({self.moderator_values_rule}): "
                         + ", ".join(f"{v:.4g}" for v in self.moderator_values) + ".")
        if self.sensitivity_info:
            si = self.sensitivity_info
            notes.append(f"Sensitivity to mediator-outcome confounding: the indirect effect is zero at rho = "
                         f"{si['rho_at_zero_acme']:.3f} (R2*_M R2*_Y = {si['r2_star_product_at_zero']:.3f}).")
        return title, notes

    def to_table_spec(self, *, title: str | None = None, number=None, number_format=None):
        """The paths and effects as one publication table (:class:`cimstats.render.TableSpec`).

        Two row groups: "Paths" (one row per regression coefficient, labelled
        with the equation and the path label such as a, b, c') and "Effects"
        (indirect, direct, total, conditional and index of moderated
        mediation). Columns: Term, Path, Estimate, SE, CI, p. The model,
        sample, bootstrap settings and moderator values are written as notes.
        Render it with :func:`cimstats.render.render` (HTML, LaTeX, Word, Excel,
        Markdown, text).

        Examples
        --------
        >>> import numpy as np, pandas as pd, cimstats
        >>> rng = np.random.default_rng(1)
        >>> d = pd.DataFrame({"x": rng.normal(size=200)})
        >>> d["m"] = 0.5 * d["x"] + rng.normal(size=200)
        >>> d["y"] = 0.4 * d["m"] + rng.normal(size=200)
        >>> res = cimstats.mediation(d, x="x", m="m", y="y", n_boot=200, seed=1, sensitivity=False)
        >>> spec = res.to_table_spec()
        >>> "Effects (bootstrap)" in [row[0].text for row in spec.grid() if row[0] is not None]
        True
        """

        fmt = number_format or NumberFormat()
        auto_title, notes = self._description()
        p = self.path_table
        paths = pd.DataFrame({
            "section": "Paths (regression coefficients)",
            "term": [f"{eq}: {t}" + (" (total-effect model)" if role == "total" else "")
                     for eq, t, role in zip(p["equation"], p["term"], p["role"])],
            "path": p["label"].fillna("").astype(str).to_numpy(),
            "estimate": p["estimate"].to_numpy(dtype=float), "std_error": p["std_error"].to_numpy(dtype=float),
            "ci": [fmt.ci(lo, hi) for lo, hi in zip(p["ci_lower"], p["ci_upper"])],
            "p_value": p["p_value"].to_numpy(dtype=float),
        })
        e = self.effects
        effects = pd.DataFrame({
            "section": "Effects (bootstrap)", "term": e["term"].astype(str).to_numpy(),
            "path": e["path"].fillna("").astype(str).to_numpy(),
            "estimate": e["estimate"].to_numpy(dtype=float), "std_error": e["std_error"].to_numpy(dtype=float),
            "ci": [fmt.ci(lo, hi) if pd.notna(lo) else "" for lo, hi in zip(e["ci_lower"], e["ci_upper"])],
            "p_value": e["p_value"].to_numpy(dtype=float),
        })
        frame = pd.concat([paths, effects], ignore_index=True)
        labels = {"term": "Term", "path": "Path", "estimate": "Estimate", "std_error": "SE",
                  "ci": f"{self.level:.0%} CI", "p_value": "p"}
        kinds = {"estimate": "estimate", "std_error": "estimate", "ci": "ci", "p_value": "p_value"}
        return TableSpec.from_frame(frame, title=title or auto_title, kinds=kinds, number_format=fmt,
                                    group_by="section", header_labels=labels, notes=tuple(notes), number=number)

    def to_html(self, path=None, *, standalone: bool = True, **kw) -> str:
        """The publication table (:meth:`to_table_spec`) as HTML; written to ``path`` when given."""

        return text_formats.to_html(self.to_table_spec(**kw), path, standalone=standalone)

    def to_latex(self, path=None, **kw) -> str:
        """The publication table (:meth:`to_table_spec`) as a LaTeX table; written to ``path`` when given."""

        return text_formats.to_latex(self.to_table_spec(**kw), path)

    # ------------------------------------------------------------------ saving
    def _state(self) -> dict:
        s = self.spec
        return {
            "spec": {"x": s.x, "mediators": list(s.mediators), "y": s.y, "covariates": list(s.covariates),
                     "moderator": s.moderator, "moderated_paths": list(s.moderated_paths), "serial": bool(s.serial),
                     "within_between": bool(s.within_between)},
            "path_table": self.path_table, "effects": self.effects, "boot": self.boot,
            "boot_failed": np.asarray(self.boot.attrs.get("failed", np.zeros(len(self.boot), dtype=bool)), dtype=bool),
            "boot_params": self.boot_params, "sensitivity_table": self.sensitivity_table,
            "sensitivity_info": dict(self.sensitivity_info), "nobs": int(self.nobs), "n_dropped": int(self.n_dropped),
            "dropped_detail": self.dropped_detail, "n_boot": int(self.n_boot),
            "n_boot_failed": int(self.n_boot_failed), "seed": None if self.seed is None else int(self.seed),
            "ci": self.ci, "level": float(self.level), "resampling": self.resampling,
            "n_clusters": None if self.n_clusters is None else int(self.n_clusters), "cluster": self.cluster,
            "strata": self.strata, "moderator_values": [float(v) for v in self.moderator_values],
            "moderator_values_rule": self.moderator_values_rule,
            "acceleration": None if self.acceleration is None else np.asarray(self.acceleration, dtype=float),
        }

    @classmethod
    def _from_state(cls, state: dict) -> "MediationResult":
        sp = state["spec"]
        values = [float(v) for v in state["moderator_values"]]
        spec = build_spec(x=sp["x"], mediators=list(sp["mediators"]), y=sp["y"], covariates=list(sp["covariates"]),
                          moderator=sp["moderator"], moderated_paths=tuple(sp["moderated_paths"]),
                          serial=bool(sp["serial"]), within_between=bool(sp["within_between"]),
                          moderator_values=values)
        boot = state["boot"]
        boot.attrs["failed"] = np.asarray(state["boot_failed"], dtype=bool)
        info = dict(state["sensitivity_info"])
        if "rho_at_zero_ci" in info:
            info["rho_at_zero_ci"] = tuple(info["rho_at_zero_ci"])
        acc = state.get("acceleration")
        return cls(spec=spec, path_table=state["path_table"], effects=state["effects"], boot=boot,
                   boot_params=state["boot_params"], sensitivity_table=state["sensitivity_table"],
                   sensitivity_info=info, nobs=int(state["nobs"]), n_dropped=int(state["n_dropped"]),
                   dropped_detail=state["dropped_detail"], n_boot=int(state["n_boot"]),
                   n_boot_failed=int(state["n_boot_failed"]), seed=state["seed"], ci=state["ci"],
                   level=float(state["level"]), resampling=state["resampling"], n_clusters=state["n_clusters"],
                   cluster=state["cluster"], strata=state["strata"], moderator_values=tuple(values),
                   moderator_values_rule=state["moderator_values_rule"],
                   acceleration=None if acc is None else np.asarray(acc, dtype=float))
