"""Generalised linear mixed models against lme4::glmer (tests/reference/glmm.R -> glmm.json).

Cases: cbpp with totals (Laplace and nAGQ = 10), a Bernoulli random-intercept
model (logit Laplace, logit nAGQ = 10, probit), a Poisson model with an offset,
and the demo study's alter-level illness-work model (network members within
patients within practices), all held to the issue's tolerances: fixed effects
1e-4 relative, standard errors and variance components 1e-3 relative,
log-likelihood 1e-4 absolute.

The references converge glmer's inner PIRLS loop tightly (``tolPwrss = 1e-13``).
With glmer's default (1e-7) the loop stops one step before the conditional
modes settle and the reported Laplace deviance takes its log-determinant from
the working weights of that earlier iterate; the four Laplace fits are also
stored that way (``glmer_default``). Against those, cimstats differs by up to
~1.3e-3 (fixed effects) and ~1.3% (standard errors);
``test_default_glmer_uses_weights_off_its_modes`` reconstructs glmer's default
log-likelihood to 1e-8 from its modes, and
``test_exact_laplace_optimum_not_worse_than_default_glmer`` shows cimstats'
estimates give a Laplace log-likelihood at least as high as default glmer's.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import cimstats
from conftest import REFERENCE

REF = json.loads((REFERENCE / "glmm.json").read_text())
DATA = REFERENCE / "data"
CASES = sorted(REF["cases"])
FAST = [pytest.param(c, marks=pytest.mark.slow) if c == "demo_alters" else c for c in CASES]

# the issue's tolerances
ISSUE = {"fixef": 1e-4,     # fixed effects, relative
         "se": 1e-3,        # standard errors of the fixed effects, relative
         "varcomp": 1e-3,   # variances and theta, relative (absolute 1e-6 where glmer gives 0)
         "loglik": 1e-4,    # log-likelihood, absolute (AIC, BIC: twice this)
         "ranef": 1e-3,     # conditional modes (relative to their largest) and conditional SDs
         "pred": 1e-4}      # fitted values and fixed-part linear predictors, relative (to max(|ref|, 1))
# what separates cimstats from glmer run with its default inner tolerance (see the module docstring)
DEFAULT_GLMER_GAP = {"fixef": 2e-3, "se": 1.5e-2, "loglik": 2e-3}
DEFAULT_CASES = sorted(REF["glmer_default"])


def _list(v):
    return v if isinstance(v, list) else [v]


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.abs(a - b) / np.maximum(np.abs(b), 1e-300)


def close_varcomp(a, b, tol):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.where(b == 0, np.abs(a) < 1e-6, rel(a, b) <= tol)


_FITS: dict = {}


def fit(name):
    if name not in _FITS:
        c = REF["cases"][name]
        d = pd.read_csv(DATA / c["dataset"], dtype={"herd": str, "period": str})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cimstats.errors.SingularFitWarning)
            _FITS[name] = cimstats.glmm(c["formula"], d, family=c["family"], link=c["link"], nagq=c["nagq"])
    return _FITS[name], REF["cases"][name]


def test_versions_recorded():
    v = REF["versions"]
    assert v["R"].startswith("R version") and v["lme4"].startswith("1.")


@pytest.mark.parametrize("name", FAST)
def test_fixed_effects(name):
    m, c = fit(name)
    est = m.params
    names = list(c["fixef"])
    assert list(est.index) == names
    r = rel(est[names].to_numpy(), [c["fixef"][k] for k in names])
    assert np.all(r <= ISSUE["fixef"]), dict(zip(names, r))


@pytest.mark.parametrize("name", FAST)
def test_standard_errors(name):
    m, c = fit(name)
    names = list(c["se"])
    r = rel(m.std_errors[names].to_numpy(), [c["se"][k] for k in names])
    assert np.all(r <= ISSUE["se"]), dict(zip(names, r))
    t = m.tidy()
    assert np.allclose(t["std_error"], m.std_errors.to_numpy())


@pytest.mark.parametrize("name", FAST)
def test_variance_components(name):
    m, c = fit(name)
    assert np.all(close_varcomp(np.abs(m.theta), _list(c["theta"]), ISSUE["varcomp"])), (m.theta, c["theta"])
    vc = m.varcorr()
    for group, v in c["variances"].items():
        row = vc[(vc["group"] == group) & vc["term2"].isna()]
        assert len(row) == 1
        assert close_varcomp(row["vcov"].iloc[0], v, ISSUE["varcomp"]), (group, row["vcov"].iloc[0], v)


def _r_loglik_constant(m, c):
    """With nAGQ > 1 glmer reports the log-likelihood relative to the saturated model."""
    if c["nagq"] == 1:
        return 0.0
    return float(m._family.loglik_saturated(np.asarray(m._frame.y, dtype=float), m._m).sum())


@pytest.mark.parametrize("name", FAST)
def test_loglik_and_criteria(name):
    m, c = fit(name)
    const = _r_loglik_constant(m, c)
    assert abs((m.loglik - const) - c["loglik"]) <= ISSUE["loglik"]
    assert abs((m.aic + 2 * const) - c["aic"]) <= 2 * ISSUE["loglik"]
    assert abs((m.bic + 2 * const) - c["bic"]) <= 2 * ISSUE["loglik"]
    assert m.nobs == c["nobs"]
    g = m.glance()
    assert g["nobs"].iloc[0] == c["nobs"] and bool(g["converged"].iloc[0])


@pytest.mark.parametrize("name", FAST)
def test_conditional_modes(name):
    m, c = fit(name)
    ref = c["ranef"]
    group = next(iter(c["variances"]))
    re = m.ranef()
    re = re[re["group"] == group].set_index("level")
    levels = [str(x) for x in _list(ref["level"])]
    got = re.loc[levels]
    cv = np.asarray(_list(ref["condval"]), dtype=float)
    scale = max(np.max(np.abs(cv)), 1e-8)
    assert np.max(np.abs(got["condval"].to_numpy() - cv)) / scale <= ISSUE["ranef"]
    sd = np.asarray(_list(ref["condsd"]), dtype=float)
    assert np.all(close_varcomp(got["condsd"].to_numpy(), sd, ISSUE["ranef"]))


@pytest.mark.parametrize("name", FAST)
def test_predictions(name):
    m, c = fit(name)
    def close(a, b):
        b = np.asarray(b, dtype=float)
        return np.all(np.abs(np.asarray(a) - b) <= ISSUE["pred"] * np.maximum(np.abs(b), 1.0))

    assert close(m.fitted(), c["fitted_response"])
    assert close(m.predict(type="link", re=False), c["predict_link_fixed"])


def _scalar_pieces(c):
    """Design pieces of a single-random-intercept reference case (for evaluating deviances)."""
    from cimstats.models.glmm import fit as glmm_fit
    from cimstats.models.glmm.family import make_family
    from cimstats.models.glmm.laplace import ScalarKernel

    d = pd.read_csv(DATA / c["dataset"], dtype={"herd": str, "period": str})
    fam = make_family(c["family"], c["link"])
    frame, _, mtr, off, *_ = glmm_fit._prepare(c["formula"], d, fam, None, None)
    b = frame.random[0]
    kern = ScalarKernel(frame.X, np.asarray(frame.y, dtype=float), mtr, off, b.Z[:, 0].astype(float),
                        b.codes, b.nlevels, fam, nagq=c["nagq"])
    levels = [str(x) for x in b.levels]
    return kern, frame, b, fam, levels


def test_default_cases_are_the_laplace_cases():
    assert DEFAULT_CASES == ["bernoulli_laplace", "bernoulli_probit", "cbpp_laplace", "poisson_offset"]
    for name in DEFAULT_CASES:
        c, d = REF["cases"][name], REF["glmer_default"][name]
        assert (c["formula"], c["family"], c["link"], c["nagq"]) == (d["formula"], d["family"], d["link"], d["nagq"])


@pytest.mark.parametrize("name", DEFAULT_CASES)
def test_default_glmer_within_documented_gap(name):
    """What a user comparing with a default glmer run sees: agreement to ~1e-3, not 1e-4."""
    m, _ = fit(name)
    d = REF["glmer_default"][name]
    names = list(d["fixef"])
    assert np.all(rel(m.params[names].to_numpy(), [d["fixef"][k] for k in names]) <= DEFAULT_GLMER_GAP["fixef"])
    assert np.all(rel(m.std_errors[names].to_numpy(), [d["se"][k] for k in names]) <= DEFAULT_GLMER_GAP["se"])
    assert abs(m.loglik - d["loglik"]) <= DEFAULT_GLMER_GAP["loglik"]


@pytest.mark.parametrize("name", DEFAULT_CASES)
def test_default_glmer_uses_weights_off_its_modes(name):
    c = REF["glmer_default"][name]
    kern, frame, b, fam, levels = _scalar_pieces(c)
    theta = float(_list(c["theta"])[0])
    beta = np.array(list(c["fixef"].values()))
    ref_levels = [str(x) for x in _list(c["ranef"]["level"])]
    u = pd.Series(np.asarray(c["ranef"]["condval"]) / theta, index=ref_levels)[levels].to_numpy()
    h_r = (theta / pd.Series(np.asarray(c["ranef"]["condsd"]), index=ref_levels)[levels].to_numpy()) ** 2
    eta = kern.off + frame.X @ beta + theta * u[b.codes]
    ll = fam.loglik_obs(kern.y, fam.link.inverse(eta), kern.m).sum()
    # glmer's log-likelihood = conditional log-likelihood + penalty + log-determinant from its condsd ...
    assert abs(-0.5 * (-2 * ll + u @ u + np.log(h_r).sum()) - c["loglik"]) < 1e-8
    # ... and its modes are the exact modes, but the weights at those modes give another determinant
    u_exact, h_exact, _ = kern.modes(np.array([theta]), beta)
    assert np.max(np.abs(u_exact - u)) < 1e-5
    assert np.max(np.abs(h_exact / h_r - 1)) > 1e-6


@pytest.mark.parametrize("name", DEFAULT_CASES)
def test_exact_laplace_optimum_not_worse_than_default_glmer(name):
    m, _ = fit(name)
    c = REF["glmer_default"][name]
    kern, *_ = _scalar_pieces(c)
    at_glmer = -0.5 * kern.deviance(np.array([float(_list(c["theta"])[0])] + list(c["fixef"].values())))
    assert m.loglik >= at_glmer - 1e-7


@pytest.mark.slow
def test_demo_alter_model_recovers_planted_effects():
    """The demo's planted illness-work model: logit P = intercept[tie_type] + dep_c * slope[tie_type]."""
    from cimstats.datasets import planted_truth

    m, _ = fit("demo_alters")
    truth = planted_truth()["illness_work"]
    ref = "family"  # first level of tie_type: the reference category
    expected = {"(Intercept)": truth["intercept"][ref], "dep_c": truth["dep_c"][ref]}
    for t in truth["intercept"]:
        if t != ref:
            expected[f"tie_type{t}"] = truth["intercept"][t] - truth["intercept"][ref]
            expected[f"tie_type{t}:dep_c"] = truth["dep_c"][t] - truth["dep_c"][ref]
    est, se = m.params, m.std_errors
    assert set(expected) == set(est.index)
    z = {k: (est[k] - v) / se[k] for k, v in expected.items()}
    assert max(abs(v) for v in z.values()) < 3.29, z  # each within its 99.9% interval
    # odds ratios for the reference tie type recover the planted deprivation gradient
    tidy = m.tidy(exponentiate=True).set_index("term")
    assert tidy.loc["dep_c", "ci_lower"] < np.exp(truth["dep_c"][ref]) < tidy.loc["dep_c", "ci_upper"]


@pytest.mark.slow
def test_demo_reference_data_is_the_demo_study():
    """The committed alter table is what cimstats.datasets generates (default seed), so glmer saw the demo."""
    from cimstats.datasets import demo_study

    s = demo_study()
    a = s.alters.loc[s.alters["wave"] == 0, ["patient_id", "tie_type", "illness_work"]]
    p = s.patients.loc[s.patients["wave"] == 0, ["patient_id", "practice_id", "area_deprivation"]]
    d = a.merge(p, on="patient_id", how="left", validate="many_to_one")
    d["dep_c"] = 2 - d["area_deprivation"]
    got = d[["illness_work", "tie_type", "dep_c", "patient_id", "practice_id"]].reset_index(drop=True)
    ref = pd.read_csv(DATA / "glmm_demo_alters.csv")
    assert got.shape == ref.shape
    for col in got.columns:
        assert got[col].astype(str).tolist() == ref[col].astype(str).tolist(), col
