"""``report.html``: one self-contained, accessible page of an analysis run.

The page is built only from the files an analysis run wrote into its output
folder (harmonised data codebooks, the harmonisation report, scale and network
summaries, the mechanism table and model tables, joint displays, figures), so
it can be rebuilt from them at any time. Everything is inline: CSS in one
``<style>`` element, figures as inline SVG with a text alternative; nothing is
fetched and no script runs. Headings go in order (one ``h1``, then ``h2`` per
section and ``h3`` within), every table has a caption and header cells with
``scope``, and every figure has ``role="img"`` with an ``aria-label`` and a
caption. Nothing on the page depends on the time or the machine of the run (run
times and paths are kept in ``manifest.json``), so the same inputs and seeds
give the same bytes.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

from cimstats import __version__
from cimstats._sheets import restore_spreadsheet_frame
from cimstats.mechanisms.fidelity import fidelity_table
from cimstats.render.escape import escape_html
from cimstats.render.numbers import COLUMN_KINDS, NumberFormat
from cimstats.render.spec import TableSpec
from cimstats.render.text_formats import _CSS, to_html

from .context import (INVARIANCE_COLUMNS, MECHANISM_RESULT, TERM_COLUMNS, TERM_KINDS, TERM_LABELS, _codebook,
                      load_mechanisms, unit_table)

__all__ = ["build_report", "report_inputs"]

_PAGE_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;line-height:1.45;color:#1a1a1a;
max-width:72rem;margin:0 auto;padding:1rem 1.5rem 3rem;background:#fff}
h1{font-size:1.7rem;border-bottom:2px solid #2c5d8a;padding-bottom:.3rem}
h2{font-size:1.35rem;margin-top:2.2rem;border-bottom:1px solid #c9d6e3;padding-bottom:.2rem;color:#1f4566}
h3{font-size:1.1rem;margin-top:1.5rem}
nav ol{columns:2;font-size:.95rem}
a{color:#1f4f7a}
.lead{font-size:1.05rem;color:#333}
.meta{font-size:.9rem;color:#444}
.table-wrap{overflow-x:auto;margin:.8rem 0 1.4rem}
figure{margin:1rem 0 2rem;padding:.5rem;border:1px solid #e2e8ee}
figure svg{max-width:100%;height:auto}
figcaption{font-size:.92rem;color:#333;margin-top:.4rem}
.verdict-supported{color:#14532d}
.skip{background:#fff7e6;border-left:4px solid #d98e04;padding:.4rem .8rem}
"""

_FMT = NumberFormat()


def _text(value) -> str:
    """The text of a saved cell, or ``""`` for a missing one (NaN, None, blank), never ``"nan"``."""
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value).strip()


def _model_note(model_id, reason, diagnostics) -> str:
    """One note per model: why it was not fitted, else its fit diagnostics; ``""`` when there is neither."""
    said = _text(reason) or _text(diagnostics)
    if not said:
        return ""
    return f"{model_id}: {said}" + ("" if said.endswith(".") else ".")


def _caption_description(title: str, alt: str) -> str:
    """The alt text of a figure for its caption, without the title when the alt text starts with it."""
    alt = alt.strip()
    if title and alt.startswith(title):
        rest = alt[len(title):].lstrip(" :.;,")
        if rest:
            return rest[0].upper() + rest[1:]
    return alt


def _read_csv(path: Path, *, spreadsheet: bool = False) -> pd.DataFrame | None:
    """A CSV output of the run; ``spreadsheet``: one written for spreadsheets (formula-like text quoted), restored."""
    if not path.is_file():
        return None
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    if spreadsheet:

        df = restore_spreadsheet_frame(df)  # the report shows the text as it was
    return df


def _frame_table(df: pd.DataFrame, title: str, *, kinds=None, labels=None, notes=(), number=None,
                 group_by=None) -> str:
    kinds = dict(kinds or {})
    for c in df.columns:  # whole numbers (counts) without decimals
        if c not in kinds and pd.api.types.is_integer_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]):
            kinds[c] = "count"
    spec = TableSpec.from_frame(df, title=title, kinds=kinds, header_labels=labels or {}, notes=tuple(notes),
                                number=number, group_by=group_by)
    return f'<div class="table-wrap">{to_html(spec, standalone=False)}</div>'


def _body_of(html_doc: str) -> str:
    """The ``<body>`` content of a standalone table page written by :func:`cimstats.render.to_html`."""
    m = re.search(r"<body>\n?(.*)\n?</body>", html_doc, flags=re.S)
    return m.group(1) if m else f"<pre>{escape_html(html_doc)}</pre>"


def _svg_inline(svg: str, alt: str, fig_id: str) -> str:
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S).strip()
    # make the figure an image with a text alternative for screen readers
    svg = re.sub(r"<svg\b", f'<svg role="img" aria-labelledby="{fig_id}-title"', svg, count=1)
    svg = re.sub(r'(<svg\b[^>]*>)', r'\1' + f'<title id="{fig_id}-title">{escape_html(alt)}</title>', svg, count=1)
    return svg


def report_inputs(plan, out: Path) -> list[Path]:
    """The files :func:`build_report` reads (the report step's cache inputs)."""
    out = Path(out)
    rels = ["study_summary.txt", "harmonisation/summary.txt", "harmonisation/report.csv",
            "harmonisation/unmapped.csv", f"data/{unit_table(plan)}_codebook.csv", "data/alters_codebook.csv",
            "data/alter_ties_codebook.csv", "scales/score_status.csv", "scales/reliability.csv",
            "networks/summary.csv", "networks/change.csv",
            "mechanisms/mechanism_table.csv", "mechanisms/models.csv", "mechanisms/result.json",
            "mechanisms/shared_efficacy.csv", "mechanisms/shared_efficacy_cfa.csv",
            f"{MECHANISM_RESULT}/result.json", "joint_displays/index.csv", "figures/index.csv",
            "figures/not_drawn.csv"]
    paths = [out / r for r in rels]
    for folder, pattern in (("models", "*.csv"), ("models", "*/result.json"), ("joint_displays", "*.html"),
                            ("figures", "*.svg")):
        d = out / folder
        if d.is_dir():
            paths += sorted(d.glob(pattern))
    q = (plan.sections.get("qualitative") or {})
    if q.get("codebook") and q["codebook"] != "demo":
        paths.append(Path(q["codebook"]))
    return [p for p in paths if p.is_file()]


def build_report(plan, out) -> str:
    """Build the report page from the files of a run in ``out``.

    Parameters
    ----------
    plan : cimstats.pipeline.AnalysisPlan
        The run's plan (name, description, sections).
    out : path
        The run's output folder.

    Returns
    -------
    str
        The HTML page (UTF-8 text).
    """

    out = Path(out)
    sec: list[tuple[str, str, str]] = []  # (id, heading, html)

    # ---------------------------------------------------------------- the run
    seeds = plan.seeds
    run_parts = [f"<p class=\"meta\">Plan <strong>{escape_html(plan.name)}</strong> run with cimstats "
                 f"{escape_html(__version__)}; seeds: data {seeds['data']}, bootstrap {seeds['bootstrap']}. Input "
                 "file hashes, package versions, step timings and the plan itself are recorded in "
                 "<code>manifest.json</code> beside this page.</p>"]
    study = out / "study_summary.txt"
    if study.is_file():
        first = study.read_text(encoding="utf-8").split("\n\n")[0]
        run_parts.append(f"<p>{escape_html(first)}</p>")
    sec.append(("run", "About this analysis", "\n".join(run_parts)))

    # ---------------------------------------------------------------- harmonisation
    parts = []
    summ = out / "harmonisation/summary.txt"
    if summ.is_file():
        text = summ.read_text(encoding="utf-8").strip().splitlines()
        parts.append(f"<p>{escape_html(text[0])}</p>")
        if len(text) > 1:
            parts.append(f"<p>{escape_html(' '.join(text[1:3]))}</p>")
    rep = _read_csv(out / "harmonisation/report.csv", spreadsheet=True)
    if rep is not None and len(rep):
        by = rep.groupby(["study", "status"]).size().unstack(fill_value=0).reset_index()
        by.columns = [str(c) for c in by.columns]
        by.insert(1, "targets", by.drop(columns="study").sum(axis=1))
        missing_cols = [c for c in rep.columns if c.startswith("n_") and c not in ("n_rows", "n_valid")]
        cells = rep.groupby("study")[["n_rows", "n_valid"] + missing_cols].sum()
        by["share_valid"] = by["study"].map(100 * cells["n_valid"] / cells["n_rows"]).astype(float)
        parts.append(_frame_table(by, "Harmonisation: status of every target variable in every study",
                                  kinds={"share_valid": "percent"},
                                  labels={"study": "Study", "targets": "Targets", "share_valid": "Valid cells"},
                                  notes=("complete: every source value mapped; partial: some values unmapped, out of "
                                         "range or of the wrong type (see harmonisation/report.xlsx).",)))
    unm = _read_csv(out / "harmonisation/unmapped.csv", spreadsheet=True)
    if unm is not None and len(unm):
        show = unm.head(30)
        more = f" The first 30 of {len(unm)} are shown; all are in harmonisation/unmapped.csv." if len(unm) > 30 else ""
        parts.append(_frame_table(show, "Source values not covered by a mapping rule",
                                  notes=("Each became missing with the reason shown." + more,)))
    if parts:
        sec.append(("harmonisation", "Data and harmonisation", "\n".join(parts)))

    # ---------------------------------------------------------------- codebook
    parts = []
    for name in (unit_table(plan), "alters", "alter_ties"):
        cb = _read_csv(out / f"data/{name}_codebook.csv", spreadsheet=True)
        if cb is None:
            continue
        cols = [c for c in ("name", "label", "measure", "n_valid", "n_declared_missing", "n_system_missing", "min",
                            "max") if c in cb.columns]
        parts.append(f"<h3>Harmonised {escape_html(name)} table</h3>")
        parts.append(_frame_table(cb[cols], f"Codebook of the harmonised {name} table ({len(cb)} variables)",
                                  kinds={"n_valid": "count", "n_declared_missing": "count",
                                         "n_system_missing": "count"},
                                  labels={"name": "Variable", "label": "Label", "measure": "Measure",
                                          "n_valid": "Valid", "n_declared_missing": "Declared missing",
                                          "n_system_missing": "System missing", "min": "Min", "max": "Max"}))
    themes = _themes(plan)
    if themes is not None:
        parts.append("<h3>Qualitative theme codebook</h3>")
        parts.append(_frame_table(themes, "Themes of the qualitative strand",
                                  labels={"theme_id": "Theme", "name": "Name", "direction": "Direction",
                                          "mechanisms": "Mechanisms", "n_codes": "Codes"}))
    if parts:
        sec.append(("codebook", "Codebook summary", "\n".join(parts)))

    # ---------------------------------------------------------------- scales and networks
    parts = []
    st = _read_csv(out / "scales/score_status.csv")
    if st is not None and len(st):
        parts.append(_frame_table(st, "How each scale score was obtained (all waves)",
                                  kinds={"n_complete": "count", "n_prorated": "count", "n_missing": "count"},
                                  labels={"instrument": "Instrument", "score": "Score", "label": "Label",
                                          "rule": "Scoring rule", "n_complete": "Complete", "n_prorated": "Prorated",
                                          "n_missing": "Missing"}))
    rel = _read_csv(out / "scales/reliability.csv")
    if rel is not None and len(rel):
        parts.append(_frame_table(rel, "Reliability of the scale scores at baseline",
                                  labels={"instrument": "Instrument", "score": "Score", "n_items": "Items",
                                          "nobs": "Patients", "n_complete": "Complete answers",
                                          "raw_alpha": "Cronbach's alpha", "ci_lower": "Alpha CI lower",
                                          "ci_upper": "Alpha CI upper", "std_alpha": "Standardised alpha",
                                          "omega_total": "Omega total"}))
    ns = _read_csv(out / "networks/summary.csv")
    if ns is not None and len(ns):
        key = ["size", "n_tie_types", "blau", "weak_tie_share", "any_group_tie", "n_providers", "mean_contact_freq"]
        ns = ns.loc[ns["measure"].isin(key)]
        if len(ns):
            wide = ns.pivot_table(index="measure", columns="wave", values=["mean", "sd"], sort=False)
            wide.columns = [f"{a} (wave {int(float(w))})" for a, w in wide.columns]
            wide = wide.reindex([k for k in key if k in wide.index]).reset_index()
            parts.append(_frame_table(wide, "Ego-network measures by wave (mean and SD over patients)",
                                      labels={"measure": "Measure"},
                                      notes=("All measures of every patient are in networks/ego_measures.csv.",)))
    if parts:
        sec.append(("measures", "Scale scores and network measures", "\n".join(parts)))

    # ---------------------------------------------------------------- mechanisms and models
    parts = []
    res = load_mechanisms(out)
    if res is not None:
        parts.append(f'<div class="table-wrap">{to_html(res.to_table_spec(number="1"), standalone=False)}</div>')
        models = res.models
        parts.append("<h3>Models</h3>")
        mt = models[["model_id", "template", "status", "model", "nobs", "n_dropped"]].copy()
        parts.append(_frame_table(mt, "Models fitted for the mechanism tests (each fitted once)",
                                  kinds={"nobs": "count", "n_dropped": "count"},
                                  labels={"model_id": "Model", "template": "Template", "status": "Status",
                                          "model": "Specification", "nobs": "n used", "n_dropped": "n set aside"},
                                  notes=tuple(n for n in (_model_note(r.model_id, r.reason, r.diagnostics)
                                                          for r in models.itertuples()) if n)))
        for r in models.itertuples():
            terms = _read_csv(out / f"models/{r.model_id}_terms.csv")
            if terms is not None:
                cols = [c for c in TERM_COLUMNS if c in terms.columns]
                parts.append(_frame_table(terms[cols], f"Estimates of model {r.model_id}: {r.model}",
                                          kinds={c: COLUMN_KINDS[c] for c in cols if c in COLUMN_KINDS},
                                          labels=TERM_LABELS))
            inv = _read_csv(out / f"models/{r.model_id}_invariance.csv")
            if inv is not None:
                keep = [c for c in INVARIANCE_COLUMNS if c in inv.columns]
                parts.append(_frame_table(inv[keep], f"Invariance steps of model {r.model_id}: {r.model}",
                                          kinds={c: COLUMN_KINDS[c] for c in keep if c in COLUMN_KINDS}))
    if parts:
        sec.append(("mechanisms", "Mechanism tests and model results", "\n".join(parts)))

    # ---------------------------------------------------------------- collective efficacy as a shared property
    shared = _shared_section(out)
    if shared:
        sec.append(("shared-efficacy", "Collective efficacy as a shared property", shared))

    # ---------------------------------------------------------------- fidelity to the source texts
    fid = _fidelity_section(plan) if res is not None else None
    if fid:
        sec.append(("fidelity", "Fidelity of the hypotheses to the source texts", fid))

    # ---------------------------------------------------------------- joint displays
    parts = []
    idx = _read_csv(out / "joint_displays/index.csv", spreadsheet=True)
    if idx is not None:
        for r in idx.itertuples():
            f = out / "joint_displays" / f"{r.file}.html"
            if f.is_file():  # the table's caption carries its title: no heading repeats it
                parts.append(f'<div class="table-wrap">{_body_of(f.read_text(encoding="utf-8"))}</div>')
    if parts:
        sec.append(("joint-displays", "Joint displays", "\n".join(parts)))

    # ---------------------------------------------------------------- figures
    parts = []
    fidx = _read_csv(out / "figures/index.csv")
    if fidx is not None:
        for k, r in enumerate(fidx.itertuples(), start=1):
            f = out / "figures" / f"{r.file}.svg"
            if not f.is_file():
                continue
            fid = f"figure-{k}"
            title, alt = _text(r.title), _text(r.alt_text)
            svg = _svg_inline(f.read_text(encoding="utf-8"), alt, fid)
            # the caption carries the title once (no heading repeats it)
            parts.append(f'<figure id="{fid}" aria-label="{html.escape(title, quote=True)}">{svg}'
                         f"<figcaption><strong>Figure {k}.</strong> {escape_html(title)}. "
                         f"{escape_html(_caption_description(title, alt))}</figcaption></figure>")
    not_drawn = _read_csv(out / "figures/not_drawn.csv")
    if not_drawn is not None and len(not_drawn):
        items = "".join(f"<li>{escape_html(_text(r.title))}: {escape_html(_text(r.reason).rstrip('.'))}.</li>"
                        for r in not_drawn.itertuples())
        parts.append(f"<p>Not drawn:</p><ul>{items}</ul>")
    if fidx is None and plan.sections["outputs"]["figures"] and (out / "mechanisms").is_dir():
        parts.append('<p class="skip">No figures were drawn: the figure module (cimstats.render.figures) is not part '
                     "of this installation.</p>")
    if parts:
        sec.append(("figures", "Figures", "\n".join(parts)))

    # ---------------------------------------------------------------- page
    title = f"Analysis report: {plan.name}"
    nav = "<nav aria-label=\"Contents\"><h2 id=\"contents\">Contents</h2><ol>" + "".join(
        f'<li><a href="#{sid}">{escape_html(head)}</a></li>' for sid, head, _ in sec) + "</ol></nav>"
    body = [f"<header><h1>{escape_html(title)}</h1>"]
    if plan.sections.get("description"):
        body.append(f'<p class="lead">{escape_html(plan.sections["description"])}</p>')
    body.append("</header>")
    body.append(nav)
    body.append("<main>")
    for sid, head, content in sec:
        body.append(f'<section id="{sid}" aria-labelledby="{sid}-h"><h2 id="{sid}-h">{escape_html(head)}</h2>\n'
                    f"{content}\n</section>")
    body.append("</main>")
    body.append('<footer><p class="meta">Written by cimstats from the files in this folder; every table here is '
                "also in tables/, joint_displays/ and figures/ in other formats.</p></footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape_html(title)}</title>\n<style>{_PAGE_CSS}{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _shared_section(out: Path) -> str | None:
    """Agreement among the members' own collective-efficacy reports and the two-level CFA."""
    summ = _read_csv(out / "mechanisms/shared_efficacy.csv")
    if summ is None or not len(summ):
        return None
    r = summ.iloc[0]
    parts = [f"<p>{escape_html(str(int(r['members'])))} network members of "
             f"{escape_html(str(int(r['networks'])))} networks answered the collective-efficacy items "
             f"({escape_html(str(r['items']))}) about the patient's network at baseline. ICC(1) is the share of "
             "the member score's variance that lies between networks, ICC(2) the reliability of a network's "
             "mean; rwg(j) compares the members' agreement with a uniform answer distribution on five "
             "options.</p>"]
    agree = summ[["members", "networks", "networks_2plus", "mean_members", "icc1", "icc2", "rwg_j_mean",
                  "rwg_j_median", "rwg_j_truncated", "factor_icc"]]
    parts.append(_frame_table(agree, "Agreement of member-reported collective efficacy within networks",
                              kinds={"members": "count", "networks": "count", "networks_2plus": "count",
                                     "rwg_j_truncated": "count"},
                              labels={"members": "Members", "networks": "Networks",
                                      "networks_2plus": "Networks with 2+ members",
                                      "mean_members": "Members per network", "icc1": "ICC(1)", "icc2": "ICC(2)",
                                      "rwg_j_mean": "rwg(j) mean", "rwg_j_median": "rwg(j) median",
                                      "rwg_j_truncated": "rwg(j) truncated to 0",
                                      "factor_icc": "Factor variance between networks (share)"},
                              notes=("All values are in mechanisms/shared_efficacy.csv.",)))
    cfa = _read_csv(out / "mechanisms/shared_efficacy_cfa.csv")
    if cfa is not None and len(cfa):
        load = cfa.loc[cfa["op"] == "=~", ["level", "lhs", "rhs", "estimate", "std_error", "ci_lower", "ci_upper"]]
        load = load.assign(level=load["level"].map({1: "within networks", 2: "between networks"}))
        parts.append(_frame_table(load, "Two-level CFA: loadings of the items within and between networks",
                                  kinds={c: COLUMN_KINDS[c] for c in ("estimate", "std_error", "ci_lower", "ci_upper")
                                         if c in COLUMN_KINDS},
                                  labels={"level": "Level", "lhs": "Factor", "rhs": "Item", "estimate": "Loading",
                                          "std_error": "SE", "ci_lower": "CI lower", "ci_upper": "CI upper"},
                                  notes=("Every estimate of the two-level CFA is in "
                                         "mechanisms/shared_efficacy_cfa.csv.",)))
    return "\n".join(parts)


def _fidelity_section(plan) -> str | None:
    """The fidelity table of the run's mechanism plan (None when no hypothesis names its source text)."""
    mp = getattr(plan, "mechanism_plan", None)
    if mp is None:
        return None
    ft = fidelity_table(mp)
    if not (ft[["text", "concept", "definition", "operationalisation"]] != "").to_numpy().any():
        return None
    cols = ["hypothesis_id", "mechanism", "element", "text", "concept", "definition", "operationalisation",
            "verdict", "reason"]
    return _frame_table(ft[cols], "Fidelity of each hypothesis to the concept of the text it tests",
                        labels={"hypothesis_id": "Hypothesis", "mechanism": "Mechanism", "element": "Element",
                                "text": "Text", "concept": "Concept", "definition": "Definition (quoted exactly)",
                                "operationalisation": "Operationalisation (the package's own)",
                                "verdict": "Verdict", "reason": "Why"},
                        notes=("Definitions are quoted word for word from the cited text; operationalisations, "
                               "statements and expected directions are the package's own.",
                               "faithful: the text defines the concept and the measure is the defined process; "
                               "partial: the text only names the concept, or the measure captures part of it."))


def _themes(plan) -> pd.DataFrame | None:
    q = plan.sections.get("qualitative") or {}
    if not q.get("codebook"):
        return None

    try:
        cb = _codebook(plan)
    except Exception:  # noqa: BLE001 - the joint-display step reports an unreadable codebook
        return None
    t = cb.themes
    if "level" in t.columns:
        t = t.loc[t["level"] == 0]
    cols = [c for c in ("theme_id", "name", "direction", "mechanisms") if c in t.columns]
    out = t[cols].copy()
    for c in out.columns:
        out[c] = out[c].map(lambda v: "; ".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
    return out.reset_index(drop=True)
