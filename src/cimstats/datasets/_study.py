"""The demo study object: harmonised tables, hidden quantities, raw country files."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from cimstats.datasets import _design as D
from cimstats.datasets._countries import COUNTRY_SPECS, raw_frame
from cimstats.datasets._generate import ITEMS, generate
from cimstats.datasets._truth import planted_truth
from cimstats.datasets._errors import DemoSeedError
from cimstats.io import SourceInfo, Survey

#: seed used when none is given
DEFAULT_SEED = 20140601


@dataclass(frozen=True, eq=False)
class DemoStudy:
    """A generated demo study (treat the tables as read-only; :func:`demo_study` hands out copies).

    Attributes
    ----------
    seed : int
        The seed that fully determines the study.
    patients : pandas.DataFrame
        One row per patient per wave in the harmonised schema (``SCHEMA.md``):
        what a correct harmonisation of the raw country files returns.
    alters : pandas.DataFrame
        One row per named network member per wave, harmonised.
    latent : pandas.DataFrame
        Quantities the files do not hold, one row per patient per wave (same
        order as ``patients``): ``network_size``, ``diversity``, ``ce_true``,
        ``ce_score_complete``, ``sm_true``, ``se_true``, ``retained``,
        ``realloc``, ``n_roles_gained``, ``n_lost``, ``n_added``,
        ``neighbourhood_deprivation``, practice effects and the raw national
        values (``education_national``, ``income_national``, ``hba1c_raw``).
    patient_missing_reasons, alter_missing_reasons : pandas.DataFrame
        Why each missing cell is missing (``"no_answer"``, ``"dont_know"``,
        ``"not_recorded"``; ``None`` elsewhere): the raw files write these as
        each team's missing codes.
    alter_ties : pandas.DataFrame
        One row per pair of a patient's named members who know each other, per
        wave (``patient_id, wave, alter_a, alter_b``; ``alter_a`` sorts before
        ``alter_b``): who knows whom behind ``n_known_others``, harmonised.
    """

    seed: int
    patients: pd.DataFrame
    alters: pd.DataFrame
    latent: pd.DataFrame
    patient_missing_reasons: pd.DataFrame
    alter_missing_reasons: pd.DataFrame
    alter_ties: pd.DataFrame | None = None

    @property
    def truth(self) -> dict:
        """The planted parameters (:func:`cimstats.datasets.planted_truth`)."""
        return planted_truth()

    def summary(self) -> pd.DataFrame:
        """Counts per country: areas, practices, patients and alters per wave, retention, missingness.

        Columns: ``country, areas, practices, patients_w0, patients_w1,
        retention, alters_w0, alters_w1, no_network_w0, item_missing``; a
        last row ``ALL`` totals the study.
        """
        p, a, lat = self.patients, self.alters, self.latent
        rows = []
        for cc in list(D.COUNTRIES) + ["ALL"]:
            sel = p["country"] == cc if cc != "ALL" else np.ones(len(p), bool)
            pc = p[sel]
            ac = a[a["patient_id"].str[:2] == cc] if cc != "ALL" else a
            lc = lat[sel]
            n0 = int((pc["wave"] == 0).sum())
            n1 = int((pc["wave"] == 1).sum())
            rows.append({
                "country": cc, "areas": int(pc["area_id"].nunique()),
                "practices": int(pc["practice_id"].nunique()),
                "patients_w0": n0, "patients_w1": n1, "retention": n1 / n0 if n0 else np.nan,
                "alters_w0": int((ac["wave"] == 0).sum()), "alters_w1": int((ac["wave"] == 1).sum()),
                "no_network_w0": int(((lc["wave"] == 0) & (lc["network_size"] == 0)).sum()),
                "item_missing": float(pc[ITEMS].isna().to_numpy().mean()),
            })
        return pd.DataFrame(rows)

    def alter_changes(self) -> pd.DataFrame:
        """Alters by change status between waves for retained patients.

        Columns: ``patient_id, alter_id, status`` (``"retained"``, ``"lost"``,
        ``"added"``), the circle, tie type and support work at each wave
        (suffixes ``_w0``, ``_w1``; missing where the alter was not named).
        """
        a = self.alters
        retained = set(self.patients.loc[self.patients["wave"] == 1, "patient_id"])
        keys = ["patient_id", "alter_id"]
        cols = ["circle", "tie_type", "illness_work", "everyday_work", "emotional_work"]
        w0 = a.loc[(a["wave"] == 0) & a["patient_id"].isin(retained), keys + cols]
        w1 = a.loc[a["wave"] == 1, keys + cols]
        m = w0.merge(w1, on=keys, how="outer", suffixes=("_w0", "_w1"), indicator=True)
        m["status"] = m["_merge"].map({"both": "retained", "left_only": "lost", "right_only": "added"}).astype(str)
        return m.drop(columns="_merge")[keys + ["status"] + [c for c in m.columns if c.endswith(("_w0", "_w1"))]]

    def raw_surveys(self) -> dict:
        """Each country's raw files as :class:`cimstats.io.Survey` objects, keyed by file name.

        The surveys hold the teams' own variable names, codes, value labels
        (in the national language), declared missing codes and scale
        directions, as documented in ``SCHEMA.md``.
        """

        out = {}
        alat = _alter_keys(self.alters)
        ties = self.alter_ties
        tlat = _tie_keys(ties) if ties is not None else None
        what = {"patients": "patients", "alters": "named network members",
                "ties": "alter-alter ties (who knows whom)"}
        for cc, spec in COUNTRY_SPECS.items():
            for fname, kind, wave in spec.files():
                if kind == "patients":
                    tgt, lat, rsn = self.patients, self.latent, self.patient_missing_reasons
                    sel = (tgt["country"] == cc).to_numpy()
                elif kind == "alters":
                    tgt, lat, rsn = self.alters, alat, self.alter_missing_reasons
                    sel = (tgt["patient_id"].str[:2] == cc).to_numpy()
                else:
                    if ties is None:
                        continue
                    tgt, lat, rsn = ties, tlat, pd.DataFrame(index=ties.index)
                    sel = (tgt["patient_id"].str[:2] == cc).to_numpy()
                if wave is not None:
                    sel = sel & (tgt["wave"] == wave).to_numpy()
                df, miss, meta = raw_frame(spec, kind, tgt[sel].reset_index(drop=True),
                                           lat[sel].reset_index(drop=True), rsn[sel].reset_index(drop=True))
                cols = spec.columns(kind)
                wave_col = [c.name for c in cols if c.maps[0].target == "wave"]
                sort = [c.name for c in cols if c.maps[0].target in ("patient_id", "alter_id", "alter_a", "alter_b")]
                order = np.lexsort([df[c].to_numpy() for c in reversed(wave_col + sort)])
                df = df.iloc[order].reset_index(drop=True)
                miss = miss.iloc[order].reset_index(drop=True)
                if spec.format == "dta":  # Stata files carry no measure levels
                    meta = {k: m.with_(measure=None) for k, m in meta.items()}
                label = (f"{spec.name}: {what[kind]}"
                         + ("" if wave is None else (", baseline" if wave == 0 else ", 12-month follow-up"))
                         + " (synthetic demo data)")
                out[fname] = Survey(df, meta, miss, SourceInfo(path=fname, format=spec.format,
                                                               encoding="utf-8", file_label=label))
        return out


def _alter_keys(alters: pd.DataFrame) -> pd.DataFrame:
    pid = alters["patient_id"].astype(str)
    aid = alters["alter_id"].astype(str)
    return pd.DataFrame({
        "local_no": pid.str[3:].astype(int).to_numpy(),
        "alter_no": aid.str.rsplit("-A", n=1).str[1].astype(int).to_numpy(),
    }, index=alters.index)


def _tie_keys(ties: pd.DataFrame) -> pd.DataFrame:
    pid = ties["patient_id"].astype(str)
    return pd.DataFrame({
        "local_no": pid.str[3:].astype(int).to_numpy(),
        "alter_no_a": ties["alter_a"].astype(str).str.rsplit("-A", n=1).str[1].astype(int).to_numpy(),
        "alter_no_b": ties["alter_b"].astype(str).str.rsplit("-A", n=1).str[1].astype(int).to_numpy(),
    }, index=ties.index)


@lru_cache(maxsize=4)
def _cached(seed: int) -> dict:
    return generate(seed)


def demo_study(seed: int = DEFAULT_SEED) -> DemoStudy:
    """Generate the synthetic six-country diabetes personal-network study.

    Parameters
    ----------
    seed : int
        Fully determines the study (same seed, same tables and files).

    Returns
    -------
    DemoStudy
        Harmonised ``patients``, ``alters`` and ``alter_ties`` tables, hidden ``latent``
        quantities, missing-value reasons, and :meth:`DemoStudy.raw_surveys`
        for the country files.

    Raises
    ------
    DemoSeedError
        When ``seed`` is not a non-negative whole number.

    Notes
    -----
    Design: England, the Netherlands, Norway, Spain, Greece and Bulgaria; three
    areas of contrasting deprivation per country; 3-4 GP practices per area;
    1,700 patients at baseline naming about 5,000 network members in three
    concentric circles; a 12-month follow-up of about 73% of patients with
    persistent alter ids. The planted effects are listed by
    :func:`planted_truth`.

    Examples
    --------
    >>> from cimstats.datasets import demo_study
    >>> study = demo_study(seed=1)
    >>> study.patients.groupby("wave").size().tolist()[0]
    1700
    >>> sorted(study.patients["country"].unique())
    ['BG', 'EN', 'ES', 'GR', 'NL', 'NO']
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:

        raise DemoSeedError(f"`seed` is {seed!r}; expected a non-negative whole number such as 1 or 20140601.")
    g = _cached(int(seed))
    return DemoStudy(int(seed), *(g[k].copy() for k in (
        "patients", "alters", "latent", "patient_missing_reasons", "alter_missing_reasons", "alter_ties")))
