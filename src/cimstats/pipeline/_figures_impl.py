"""Draw the run's figures from the results the mechanisms step saved (see :mod:`cimstats.pipeline.figures`)."""

from __future__ import annotations

import pandas as pd

from cimstats.errors import CimstatsError

from .context import StepContext, StepSkipped, _caught, _write_csv, load_mechanisms, load_model, mechanism_title

__all__ = ["build", "MAX_LEVELS"]

#: caterpillar plots are drawn for grouping factors with at most this many levels (practices, areas);
#: thousands of patients' intercepts are listed in models/<id>_ranef.csv instead
MAX_LEVELS = 300


def build(ctx: StepContext) -> dict:
    import warnings

    from cimstats.render import figures as F  # deferred: figures load matplotlib

    formats = ctx.plan.sections["outputs"]["figures"]
    res = load_mechanisms(ctx.out)
    if res is None:
        raise StepSkipped("the mechanisms step saved no result, so there is nothing to draw")
    made: list[dict] = []
    notes: list[str] = []
    not_drawn: list[dict] = []  # figures left out for a reason the report states

    def save(fig, name: str, kind: str) -> None:
        for fmt in formats:
            p = ctx.path(f"figures/{name}.{fmt}")
            if fmt == "svg":
                p.write_text(fig.svg(), encoding="utf-8")
            else:
                p.write_bytes(fig.png(dpi=150))
        ctx.path(f"figures/{name}.alt.txt").write_text(fig.alt_text + "\n", encoding="utf-8")
        made.append({"file": name, "kind": kind, "title": fig.title, "alt_text": fig.alt_text})

    def attempt(name: str, kind: str, make) -> None:
        try:
            with warnings.catch_warnings(record=True) as ws:
                warnings.simplefilter("always")
                fig = make()
            notes.extend(_caught(ws))
            save(fig, name, kind)
        except CimstatsError as exc:
            notes.append(f"{name}: not drawn ({exc})")

    attempt("forest_mechanisms", "forest_plot",
            lambda: F.forest_plot(res, level=res.level, title=mechanism_title(ctx.plan, res)))
    for r in res.models.itertuples():
        mid = r.model_id
        if r.status != "fitted":
            continue
        re_file = ctx.read(f"models/{mid}_ranef.csv")
        if re_file.is_file():
            re = pd.read_csv(re_file, keep_default_na=False, na_values=[""])
            for c in ("group", "term", "level"):
                re[c] = re[c].astype(str)
            vc_file = ctx.read(f"models/{mid}_varcorr.csv")
            vc = pd.read_csv(vc_file, keep_default_na=False, na_values=[""]) if vc_file.is_file() else None
            variances = F.random_effect_variances(varcorr=vc) if vc is not None else None
            for g in dict.fromkeys(re["group"]):
                n = int((re["group"] == g).sum())
                title = f"Random effects of {g} in model {mid} ({n} levels)"
                if variances is not None:
                    # a random effect whose variance sits at zero gets no caterpillar plot, only this sentence
                    vg = variances["group"].astype(str)
                    mine = variances[(vg == g) | vg.str.startswith(g + ".")]
                    if len(mine) and bool(mine["at_zero"].all()):
                        terms = list(dict.fromkeys(re.loc[re["group"] == g, "term"]))
                        what = " and ".join("random intercepts" if t == "(Intercept)" else f"random slopes of {t}"
                                            for t in terms)
                        not_drawn.append({"file": f"caterpillar_{mid}_{g}", "kind": "caterpillar_plot",
                                          "title": title,
                                          "reason": f"the variance of the {g} {what} was estimated at zero "
                                                    f"(singular fit), so every level's conditional mode is 0 and "
                                                    f"there is nothing to plot"})
                        continue
                if n > MAX_LEVELS:
                    notes.append(f"caterpillar plot of {g} in model {mid} not drawn: {n} levels (more than "
                                 f"{MAX_LEVELS}); the conditional modes are in models/{mid}_ranef.csv")
                    continue
                attempt(f"caterpillar_{mid}_{g}", "caterpillar_plot",
                        lambda re=re, g=g, vc=vc, title=title: F.caterpillar_plot(
                            re, group=g, level=res.level, varcorr=vc, title=title))
        fit = load_model(ctx.out, mid)
        if fit is not None and fit.kind == "mediation":
            attempt(f"path_{mid}", "path_diagram",
                    lambda med=fit: F.path_diagram(med, title=f"Mediation model {mid} with estimates"))
        inv = ctx.read(f"models/{mid}_invariance.csv")
        if inv.is_file():
            attempt(f"invariance_{mid}", "invariance_plot",
                    lambda inv=inv: F.invariance_plot(pd.read_csv(inv), title=f"Measurement invariance ({mid})"))
    _write_csv(pd.DataFrame(made, columns=["file", "kind", "title", "alt_text"]), ctx.path("figures/index.csv"))
    _write_csv(pd.DataFrame(not_drawn, columns=["file", "kind", "title", "reason"]),
               ctx.path("figures/not_drawn.csv"))
    return {"figures": len(made), "notes": notes}
