"""Figure layout properties: path-diagram labels overlap neither each other nor the variables' boxes,
and caterpillar plots leave out random effects whose variance was estimated at zero.

The label test measures what matplotlib draws: every arrow label (``gid`` ``path-label-*``) and
every variable box (``path-node-*``) is measured with the renderer after drawing, for the demo's
moderated mediation model and for generated structural equation models with short arrows, many
indicators, covariances, residual variances and intervals under the estimates.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cimstats
from cimstats import load_result
from cimstats.errors import RenderError
from cimstats.render.figures import caterpillar_plot, path_diagram, random_effect_variances
from cimstats.render.figures.caterpillar import BOUNDARY_TOL


# ----------------------------------------------------------------------------- path-diagram labels
def _drawn_boxes(fig):
    """Window extents (pixels) of the arrow labels and of the variables' boxes, as drawn."""
    mfig = fig.to_matplotlib()
    mfig.canvas.draw()
    renderer = mfig.canvas.get_renderer()
    ax = mfig.axes[0]
    labels, nodes = [], []
    for t in ax.texts:
        if (t.get_gid() or "").startswith("path-label-"):
            patch = t.get_bbox_patch()
            ext = patch.get_window_extent(renderer) if patch is not None else t.get_window_extent(renderer)
            labels.append((t.get_text(), ext))
    for p in ax.patches:
        if (p.get_gid() or "").startswith("path-node-"):
            nodes.append(p.get_window_extent(renderer))
    return labels, nodes


def _overlap(a, b) -> bool:
    """Boxes that share more than a hairline (half a pixel each way)."""
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5) and (min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5)


def _assert_labels_apart(fig, n_expected: int) -> None:
    labels, nodes = _drawn_boxes(fig)
    assert len(labels) == n_expected, "every drawn estimate has a label"
    for i, (ti, a) in enumerate(labels):
        for tj, b in labels[i + 1:]:
            assert not _overlap(a, b), f"labels {ti!r} and {tj!r} overlap"
        for b in nodes:
            assert not _overlap(a, b), f"label {ti!r} overlaps a variable's box"


def test_demo_mediation_labels_do_not_overlap(demo_run):
    med = load_result(demo_run / "models/ce_mediation")  # the mediation result the figures step draws
    for intervals in (False, True):
        fig = path_diagram(med, intervals=intervals)
        _assert_labels_apart(fig, len(fig.data))


def _sem_table(rng, n_factors, n_items, n_covariates, short):
    """A parameter table of a generated structural equation model (names short or long)."""
    rows = []
    facs = [f"F{i}" if short else f"Factor_{i}_long_name" for i in range(n_factors)]
    for f, k in zip(facs, n_items):
        for j in range(k):
            rows.append((f, "=~", f"{f.lower()}{j}", rng.normal(0.7, 0.2), rng.uniform(0, 0.2)))
    covs = [f"x{i}" for i in range(n_covariates)]
    for i in range(1, n_factors):
        rows.append((facs[i], "~", facs[i - 1], rng.normal(), rng.uniform()))
        rows += [(facs[i], "~", c, rng.normal(), rng.uniform()) for c in covs]
    if n_factors == 1:
        rows += [(facs[0], "~", c, rng.normal(), rng.uniform()) for c in covs]
    if n_factors > 2:
        rows.append((facs[0], "~~", facs[-1], 0.3, 0.01))
    if n_covariates > 1:
        rows.append((covs[0], "~~", covs[1], rng.normal(0, 0.3), rng.uniform()))
    first_items = [r[2] for r in rows if r[1] == "=~"][:2]
    rows.append((first_items[0], "~~", first_items[1], 0.1, 0.02))
    for f in facs:
        rows.append((f, "~~", f, rng.uniform(0.2, 1), rng.uniform(0, 0.05)))
    t = pd.DataFrame(rows, columns=["lhs", "op", "rhs", "estimate", "p_value"])
    t["std_error"] = 0.1
    t["ci_lower"] = t["estimate"] - 0.2
    t["ci_upper"] = t["estimate"] + 0.2
    return t


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n_factors=st.integers(1, 3),
       n_items=st.lists(st.integers(2, 7), min_size=3, max_size=3), n_covariates=st.integers(0, 3),
       short=st.booleans(), residuals=st.booleans(), intervals=st.booleans())
def test_generated_path_labels_do_not_overlap(seed, n_factors, n_items, n_covariates, short, residuals, intervals):
    t = _sem_table(np.random.default_rng(seed), n_factors, n_items[:n_factors], n_covariates, short)
    fig = path_diagram(t, residuals=residuals, intervals=intervals)
    _assert_labels_apart(fig, len(fig.data))


def test_labels_of_parallel_curved_arrows_kept_apart():
    """Two covariates whose curved arrows to the same outcome share one midpoint (labels once overlapped)."""
    t = _sem_table(np.random.default_rng(3), 3, [2, 3, 4], 2, True)
    fig = path_diagram(t)
    _assert_labels_apart(fig, len(fig.data))


def test_short_loading_arrows_fit_their_labels():
    """A factor with seven indicators stacked beside it: short, fanning arrows, intervals under the estimates."""
    t = pd.DataFrame({"lhs": "CE", "op": "=~", "rhs": [f"ce_{i}" for i in range(1, 8)],
                      "estimate": np.linspace(0.55, 0.95, 7), "p_value": 1e-6})
    t["std_error"], t["ci_lower"], t["ci_upper"] = 0.05, t["estimate"] - 0.1, t["estimate"] + 0.1
    _assert_labels_apart(path_diagram(t, intervals=True), 7)


# ----------------------------------------------------------------------------- caterpillar at zero variance
def _ranef(group, n, scale, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"group": group, "term": "(Intercept)", "level": [f"{group}{i}" for i in range(n)],
                         "condval": scale * rng.normal(size=n), "condsd": scale * rng.uniform(0.5, 1.0, size=n)})


def _varcorr(sds: dict, residual=None):
    rows = [(g, "(Intercept)", "", sd ** 2, sd) for g, sd in sds.items()]
    if residual is not None:
        rows.append(("Residual", "", "", residual ** 2, residual))
    return pd.DataFrame(rows, columns=["group", "term1", "term2", "vcov", "sdcor"])


def test_variance_at_zero_is_relative_to_the_residual():
    sigma = 0.4
    vc = _varcorr({"practice": sigma * BOUNDARY_TOL / 2, "area": sigma * BOUNDARY_TOL * 2}, residual=sigma)
    v = random_effect_variances(varcorr=vc).set_index("group")
    assert v.loc["practice", "at_zero"] and not v.loc["area", "at_zero"]
    assert v.loc["area", "relative_sd"] == pytest.approx(2 * BOUNDARY_TOL)
    # a GLMM has no residual row: the SD on the link scale is compared with the tolerance itself
    glmm = random_effect_variances(varcorr=_varcorr({"practice": 5e-12, "patient": 0.23}))
    assert glmm.set_index("group")["at_zero"].to_dict() == {"practice": True, "patient": False}
    with pytest.raises(RenderError, match="tol"):
        random_effect_variances(varcorr=vc, tol=2.0)
    with pytest.raises(RenderError, match="sdcor"):
        random_effect_variances(varcorr=vc.drop(columns="sdcor"))


def test_caterpillar_leaves_out_a_zero_variance_panel_and_says_so():
    # a binary GLMM of the demo (its alter-level model): practices' variance at 5e-12 (modes at a 1e-8 scale), patients' not
    re = pd.concat([_ranef("practice_id", 64, 1e-8), _ranef("patient_id", 40, 0.2, seed=1)], ignore_index=True)
    vc = _varcorr({"patient_id": 0.23, "practice_id": 5e-12})
    fig = caterpillar_plot(re, varcorr=vc)
    assert set(fig.data["group"]) == {"patient_id"}
    assert fig.data.attrs["zero_variance"] == [("practice_id", "(Intercept)")]
    assert "variance of the practice_id random intercepts was estimated at zero" in fig.alt_text
    svg = fig.svg()
    assert "practice_id: (Intercept)" not in svg and "patient_id: (Intercept)" in svg
    assert "estimated at zero" in svg  # the figure's note says it too
    mfig = fig.to_matplotlib()
    assert len(mfig.axes) == 1  # one panel drawn


def test_caterpillar_with_every_variance_at_zero_draws_nothing():
    re = _ranef("practice_id", 64, 0.0)
    with pytest.raises(RenderError, match="estimated at zero"):
        caterpillar_plot(re, varcorr=_varcorr({"practice_id": 0.0}, residual=0.38))


def test_caterpillar_small_but_nonzero_variance_still_drawn():
    """A variance far from zero relative to the residual (as in a demo LMM: SD 0.014 vs 0.39) is drawn."""
    re = _ranef("practice_id", 64, 0.003)
    fig = caterpillar_plot(re, varcorr=_varcorr({"practice_id": 0.0144}, residual=0.388))
    assert set(fig.data["group"]) == {"practice_id"} and not fig.data.attrs["zero_variance"]
    assert "0.00 (" not in fig.alt_text  # small modes are written with enough decimals to be read


def test_caterpillar_of_a_singular_lmm_fit():
    """A fitted model brings its own variance components: a practice variance of zero gives no panel."""
    rng = np.random.default_rng(11)
    d = pd.DataFrame({"g": np.repeat([f"p{i}" for i in range(20)], 10), "x": rng.normal(size=200)})
    d["y"] = 0.5 * d["x"] + rng.normal(size=200)  # no group effect at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = cimstats.lmm(d, "y ~ x + (1 | g)")
    v = random_effect_variances(fit)
    if not bool(v["at_zero"].all()):
        pytest.skip("this sample's practice variance was not estimated at zero")
    with pytest.raises(RenderError, match="estimated at zero"):
        caterpillar_plot(fit)
