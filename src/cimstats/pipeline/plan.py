"""The analysis plan: one YAML file naming the sources, the measures, the mechanisms and the outputs of a study.

A plan has these sections (all but ``sources`` optional)::

    plan: my-study                 # a name for the run
    seeds: {data: 1, bootstrap: 20240601}
    sources:                       # either raw files and a data dictionary ...
      demo: false                  # true: write the demo study's raw files first (into OUT/raw)
      raw: raw-files/              # folder of the study files named in the dictionary
      dictionary: data-dictionary/ # the dictionary folder ("demo" = the shipped demo dictionary)
      # ... or an already harmonised dataset:
      # harmonised: {patients: patients.parquet, alters: alters.parquet}  (alter_ties: optional)
    accept: [H206]                 # harmonisation codes this analysis accepts (their issues become notes)
    instruments:                   # scales to score (shipped instrument ids or YAML files)
      - semcd6
      - {instrument: heiq, scores: [self_monitoring_insight]}
    networks: {measures: all, change: true}
    constructs:                    # named constructs (the construct table's schema, as in the mechanism plan)
      support_size: {kind: network, measure: size}
    mechanisms:                    # the mechanism plan of cimstats.mechanisms
      plan: default                # "default", a YAML path, or the plan itself (a mapping)
      adjust: holm
      n_boot: 1000
    qualitative:
      codebook: themes.yaml        # "demo" = the demo study's theme codebook
      excerpts: coded.csv          # CSV of coded excerpts, a .qdpx project, or "demo"
      mapping: code_to_theme.csv   # code -> theme table (only for a .qdpx project)
    joint_displays:
      - {kind: side_by_side}
      - {kind: themes_by_group, group_by: area_deprivation}
    imputation:                    # optional: multiple imputation of the harmonised patients (see below)
      m: 20
      seed: 1
      iterations: 10
      method: {income_equiv: pmm}
    outputs:
      data: [parquet, sav, dta]
      tables: [csv, xlsx, docx, tex, html, md]
      figures: [svg, png]
      report: true

With an ``imputation`` section the mechanisms step imputes the harmonised
patient table once (``m`` completed sets by chained equations,
:func:`cimstats.impute`; ``method`` per variable, ``carry`` columns kept
unchanged and not used as predictors, identifiers always carried), tests
every hypothesis on every completed set and pools them with Rubin's rules
(:func:`cimstats.mechanisms.pooled.test_mechanisms_imputed`); the mechanism
table then has the columns ``fmi`` and ``m``. Its numbers are checked as
``P021``: ``m`` from 2 to 1,000, ``iterations`` from 1 to 1,000, ``seed``
from 0 to 2^32 - 1, ``donors`` from 1 to 100.

``accept`` lists harmonisation codes (``H2xx`` of
:data:`cimstats.dictionary.codes.SEVERITY`) whose issues the analysis accepts:
the harmonise step passes them to :func:`cimstats.harmonise` (``accept=``), so
their issues stay in the report as notes (severity ``info``, marked
"accepted") instead of warnings or errors, exactly as ``cimstats harmonise
--accept`` and ``cimstats dictionary check --with-data --accept`` report them.
A code that is not a harmonisation code is ``P016``.

``instruments``, ``networks`` and ``constructs`` make up the run's construct
table (:mod:`cimstats.measures.constructs`): every score of the listed
instruments (named by its score id), every ego-level network measure (named
by its column) and the named constructs. The mechanism plan names constructs
from this table without declaring them again; a construct it declares under
a name the table already has must have the same definition (``P015``
otherwise, also for an entry that breaks the schema). The scales and networks
steps compute the constructs once; the mechanisms step takes their results
and computes only what they lack.

Numbers have documented ranges, checked before any work starts (code
``P014`` unless noted): ``seeds`` whole numbers from 0 to 2^32 - 1 (``P011``);
``mechanisms.n_boot`` a whole number from 50 to 100,000 and
``mechanisms.level`` a number above 0.5 and below 1 (``P012``; checked by
:func:`cimstats.mechanisms.options.option_problems`, as
:func:`cimstats.test_mechanisms` checks them);
``networks.change_waves`` two different whole wave numbers from 0 to 99;
``joint_displays`` ``threshold`` a whole number from 1 to 1,000,
``quotes_per_cell`` from 0 to 100 and ``max_quote_chars`` from 10 to 100,000
(or null); a display's ``reviews`` names a review file (the reviewers'
decisions on its suggested meta-inferences, read and checked with the plan,
see :func:`cimstats.integrate.read_reviews`; the display is rebuilt when the
file changes) and ``coders`` the two coders whose agreement is shown; a
``case_oriented`` display's ``expect`` maps theme ids to ``{column: high or
low}``, what a quote coded with the theme suggests about a survey value, and
flags the cases whose value lies on the other side (see
:func:`cimstats.joint_display`).

Relative paths are read relative to the plan file's folder. :func:`read_analysis_plan`
checks everything that can be checked before any work starts (files exist, the
dictionary is sound, instruments and models are known, every variable a
hypothesis uses is in the dictionary or defined by the plan, formats are
known) and reports all problems at once in one :class:`~cimstats.errors.PlanError`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from cimstats.errors import CimstatsError, PlanError, Report
from cimstats.dictionary import demo_dictionary_path, read_dictionary
from cimstats.dictionary.codes import SEVERITY
from cimstats.dictionary.schema import resolve_study_file
from cimstats.integrate import DISPLAY_KINDS, read_reviews, read_theme_codebook
from cimstats.measures.constructs import ConstructTable, construct_problems, network_constructs, scale_constructs
from cimstats.measures.networks.catalogue import measure_catalogue
from cimstats.measures.networks.change import change_columns
from cimstats.measures.scales.instrument import list_instruments, load_instrument
from cimstats.mechanisms import read_mechanism_plan
from cimstats.mechanisms.options import option_problems
from cimstats.mechanisms.plan import _model_variables
from cimstats.mechanisms.pooled import imputation_problems

__all__ = ["AnalysisPlan", "read_analysis_plan", "demo_plan", "demo_plan_path", "plan_accept_codes", "SECTIONS",
           "TABLE_FORMATS", "DATA_FORMATS", "FIGURE_FORMATS"]

SECTIONS = ("plan", "version", "description", "seeds", "sources", "accept", "instruments", "networks", "constructs",
            "mechanisms", "qualitative", "joint_displays", "outputs", "imputation")
DATA_FORMATS = ("parquet", "sav", "zsav", "dta", "csv")
TABLE_FORMATS = ("csv", "xlsx", "docx", "tex", "html", "md", "txt")
FIGURE_FORMATS = ("svg", "png")
DEFAULT_OUTPUTS = {"data": ["parquet", "sav", "dta"], "tables": ["csv", "xlsx", "docx", "tex", "html", "md"],
                   "figures": ["svg", "png"], "report": True}
DEFAULT_SEEDS = {"data": 20140601, "bootstrap": 20240601}
MAX_SEED = 2**32 - 1
#: (low, high) of the whole-number options of a joint display (``max_quote_chars`` may also be null)
_DISPLAY_RANGES = {"threshold": (1, 1000), "quotes_per_cell": (0, 100), "max_quote_chars": (10, 100_000)}
_DISPLAY_OPTIONS = {"kind", "title", "group_by", "group_labels", "group_title", "profile", "themes", "threshold",
                    "quotes_per_cell", "max_quote_chars", "number_format", "orientation", "link_by_mechanism",
                    "reviews", "coders", "expect"}


def _codebook_theme_ids(codebook) -> set[str] | None:
    """The theme ids of the plan's codebook (``demo`` or a file), or None when it cannot be read here.

    A codebook that cannot be read is reported where the joint displays read it; this check only
    compares names.
    """
    if not codebook:
        return None
    path = (Path(str(resources.files("cimstats.datasets") / "data" / "themes.yaml")) if codebook == "demo"
            else Path(str(codebook)))
    if not path.is_file():
        return None
    try:
        return set(read_theme_codebook(path).themes["theme_id"].astype(str))
    except CimstatsError:
        return None


@dataclass(frozen=True)
class AnalysisPlan:
    """A checked analysis plan.

    Attributes
    ----------
    name : str
        The plan's name (``plan:``).
    sections : dict
        Every section with defaults filled in and paths made absolute (a
        plain, JSON-serialisable dict; the step cache hashes these sections).
    base_dir : pathlib.Path
        Folder relative paths were read against.
    source : str
        Where the plan came from (a file path, ``<dict>`` or ``<yaml text>``).
    text : str
        The plan as written (YAML), recorded in the manifest.
    constructs : ConstructTable
        The construct table of the run (:mod:`cimstats.measures.constructs`):
        the scores of ``instruments``, the measures of ``networks`` and the
        named ``constructs``; the mechanism plan names constructs from it.
    dictionary : Dictionary or None
        The data dictionary, read once when the plan was checked (the
        harmonise step uses this object).
    mechanism_plan : cimstats.mechanisms.MechanismPlan or None
        The mechanism plan, read and checked once (the mechanisms step uses
        this object).
    """

    name: str
    sections: dict
    base_dir: Path
    source: str = "<dict>"
    text: str = field(default="", repr=False)
    constructs: Any = field(default=None, repr=False, compare=False)
    dictionary: Any = field(default=None, repr=False, compare=False)
    mechanism_plan: Any = field(default=None, repr=False, compare=False)

    def section(self, name: str) -> Any:
        """A copy of one section (``None`` when the plan leaves it out)."""
        return copy.deepcopy(self.sections.get(name))

    @property
    def seeds(self) -> dict:
        return dict(self.sections["seeds"])

    def with_seed(self, data: int | None = None, bootstrap: int | None = None) -> "AnalysisPlan":
        """The same plan with other seeds (``None`` keeps a seed)."""
        s = copy.deepcopy(self.sections)
        if data is not None:
            s["seeds"]["data"] = int(data)
        if bootstrap is not None:
            s["seeds"]["bootstrap"] = int(bootstrap)
        return AnalysisPlan(self.name, s, self.base_dir, self.source, self.text, constructs=self.constructs,
                            dictionary=self.dictionary, mechanism_plan=self.mechanism_plan)

    def to_dict(self) -> dict:
        return copy.deepcopy(self.sections)

    def to_json(self) -> str:
        return json.dumps(self.sections, sort_keys=True, ensure_ascii=False, default=str)


def demo_plan_path() -> Path:
    """The shipped plan of the demo study (what ``cimstats demo`` runs)."""
    return Path(str(resources.files("cimstats.pipeline").joinpath("demo_plan.yaml")))


def demo_plan() -> AnalysisPlan:
    """The demo study's analysis plan, checked.

    Examples
    --------
    >>> from cimstats.pipeline import demo_plan
    >>> p = demo_plan()
    >>> p.name, p.sections["sources"]["demo"], p.sections["sources"]["dictionary"]["kind"]
    ('cimstats-demo', True, 'demo')
    """
    return read_analysis_plan(demo_plan_path())


# --------------------------------------------------------------------------- reading
def _load(plan, base_dir) -> tuple[dict, Path, str, str]:
    if isinstance(plan, AnalysisPlan):
        return plan.to_dict(), plan.base_dir, plan.source, plan.text
    if isinstance(plan, (str, Path)):
        p = Path(plan)
        looks_like_path = isinstance(plan, Path) or ("\n" not in str(plan) and p.suffix in (".yaml", ".yml"))
        if looks_like_path:
            text = read_plan_text(p, "analysis plan")
            source, base = str(p), Path(base_dir) if base_dir else p.resolve().parent
        else:
            text, source, base = str(plan), "<yaml text>", Path(base_dir or ".").resolve()
        return load_yaml(text, f"The analysis plan '{source}'"), base, source, text
    if isinstance(plan, Mapping):
        doc = copy.deepcopy(dict(plan))
        return doc, Path(base_dir or ".").resolve(), "<dict>", yaml.safe_dump(doc, sort_keys=False)
    raise PlanError(f"`plan` is a {type(plan).__name__}; expected a YAML file path, YAML text, a dict or an "
                    "AnalysisPlan.")


def read_plan_text(p: Path, what: str) -> str:
    """The text of a plan file, or a :class:`PlanError` naming the file (absent, a folder, a device, not text)."""
    if not p.exists():
        raise PlanError(f"The {what} '{p}' does not exist; give the path of a YAML plan "
                        "(for example examples/demo_plan.yaml).")
    if not p.is_file():
        kind = "a folder" if p.is_dir() else "not a regular file (a device, pipe or socket)"
        raise PlanError(f"The {what} '{p}' is {kind}; give the path of a YAML plan file.")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(f"The {what} '{p}' is not UTF-8 text (byte {exc.start} cannot be decoded), so it is not a "
                        "YAML plan; give the YAML file, saved as UTF-8.") from None
    except OSError as exc:
        raise PlanError(f"The {what} '{p}' cannot be read ({exc.strerror}); check its permissions.") from None


def load_yaml(text: str, what: str):
    """Parse YAML text; a syntax error or nesting too deep to parse becomes a :class:`PlanError` about ``what``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlanError(f"{what} is not valid YAML ({str(exc).splitlines()[0]}); fix the syntax and run again.") from None
    except RecursionError:
        raise PlanError(f"{what} nests lists or mappings too deeply to be read; a plan needs only a few levels, "
                        "so fix the YAML.") from None


def _whole(v, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def read_analysis_plan(plan, *, base_dir: str | Path | None = None) -> AnalysisPlan:
    """Read an analysis plan and check everything that can be checked before any work starts.

    Parameters
    ----------
    plan : str, path, dict or AnalysisPlan
        A YAML file, YAML text or the plan as a mapping (see the module notes
        for the sections).
    base_dir : path, optional
        Folder relative paths are resolved against (default: the plan file's
        folder, else the current folder).

    Returns
    -------
    AnalysisPlan

    Raises
    ------
    PlanError
        One error whose ``report`` lists every problem (codes ``P001``-``P016``,
        plus the mechanism plan's ``M`` codes and the dictionary's ``D``/``R``
        codes): unknown sections, missing files or folders, an unreadable
        dictionary, unknown instruments, scores or network measures, unknown
        model templates, hypothesis variables that neither the dictionary nor
        the plan defines, unknown joint-display kinds or output formats, seeds
        that are not integers.

    Examples
    --------
    >>> from cimstats.pipeline import read_analysis_plan
    >>> bad = {"sources": {"raw": "no-such-folder", "dictionary": "no-such-dictionary"},
    ...        "instruments": ["no_such_scale"], "outputs": {"tables": ["pdf"]}}
    >>> try:
    ...     read_analysis_plan(bad)
    ... except Exception as e:
    ...     print(sorted({i.code for i in e.report}))
    ['P003', 'P005', 'P010']
    """
    if isinstance(plan, AnalysisPlan) and base_dir is None:
        return plan  # already read and checked: the dictionary and the mechanism plan are not read again
    doc, base, source, text = _load(plan, base_dir)
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise PlanError(f"The analysis plan '{source}' must be a mapping of sections ({', '.join(SECTIONS)}); "
                        f"got {type(doc).__name__}.")
    rep = Report()
    chk = _Checker(rep, source, base)
    for k in doc:
        if k not in SECTIONS:
            rep.add("P001", f"Unknown section {k!r}.", file=source, remedy=f"Use only {', '.join(SECTIONS)}.")
    sections: dict = {"plan": str(doc.get("plan") or "analysis"), "version": doc.get("version", 1),
                      "description": str(doc.get("description") or "")}
    sections["seeds"] = chk.seeds(doc.get("seeds"))
    sections["sources"] = chk.sources(doc.get("sources"))
    sections["accept"] = _accept_codes(doc.get("accept"), chk)
    sections["instruments"] = chk.instruments(doc.get("instruments"))
    sections["networks"] = chk.networks(doc.get("networks"))
    sections["constructs"] = chk.constructs(doc.get("constructs"), sections)
    sections["mechanisms"] = chk.mechanisms(doc.get("mechanisms"), sections)
    sections["qualitative"] = chk.qualitative(doc.get("qualitative"))
    sections["joint_displays"] = chk.joint_displays(doc.get("joint_displays"), sections)
    sections["outputs"] = chk.outputs(doc.get("outputs"))
    sections["imputation"] = chk.imputation(doc.get("imputation"), sections)
    if rep.has_errors:
        first = rep.errors[0].message
        raise PlanError(f"The analysis plan '{source}' has {len(rep.errors)} problem(s), all listed in `.report` "
                        f"(first: {first}); fix them and run again; nothing was run.", report=rep)
    return AnalysisPlan(name=sections["plan"], sections=sections, base_dir=base, source=source, text=text,
                        constructs=chk.table, dictionary=chk.dictionary, mechanism_plan=chk.mechanism_plan)


class _Checker:
    """Checks one section at a time, adding every problem to one report."""

    def __init__(self, rep: Report, source: str, base: Path):
        self.rep, self.source, self.base = rep, source, base
        self.dictionary = None  # the Dictionary when one could be read
        self.targets: set[str] = set()
        self.table = None  # the ConstructTable when the construct sections could be read
        self.mechanism_plan = None  # the mechanism plan when it could be read

    def add(self, code: str, message: str, remedy: str | None = None, severity: str = "error") -> None:
        self.rep.add(code, message, file=self.source, remedy=remedy, severity=severity)

    def path(self, value, what: str, *, kind: str = "file") -> str | None:
        """Absolute path of ``value`` (relative to the plan), adding P003 when it does not exist."""
        if not isinstance(value, (str, Path)) or not str(value).strip():
            self.add("P002", f"{what} is {value!r}; expected a path.")
            return None
        p = Path(value).expanduser()
        p = p if p.is_absolute() else (self.base / p)
        ok = p.is_dir() if kind == "folder" else p.is_file()
        if not ok:
            self.add("P003", f"{what} names the {kind} '{value}', which does not exist (looked for {p}).",
                     remedy=f"Correct the path (relative to the plan's folder) or create the {kind}.")
        return str(p.resolve())

    # ------------------------------------------------------------------ sections
    def seeds(self, s) -> dict:
        out = dict(DEFAULT_SEEDS)
        if s is None:
            return out
        if isinstance(s, int) and not isinstance(s, bool):
            if not _whole(s, 0, MAX_SEED):
                self.add("P011", f"seeds is {_short(s)}; expected a whole number from 0 to {MAX_SEED}.")
                return out
            return {k: s for k in out}
        if not isinstance(s, Mapping):
            self.add("P011", f"Section 'seeds' is {s!r}; expected a mapping such as {{data: 1, bootstrap: 2}}.")
            return out
        for k, v in s.items():
            if k not in out:
                self.add("P011", f"seeds has an unknown key {k!r}.", remedy="Use data and bootstrap.")
            elif not _whole(v, 0, MAX_SEED):
                self.add("P011", f"seeds.{k} is {_short(v)}; expected a whole number from 0 to {MAX_SEED}.")
            else:
                out[k] = int(v)
        return out

    def sources(self, s) -> dict:
        if not isinstance(s, Mapping):
            self.add("P002", "Section 'sources' is missing or not a mapping; name raw files and a dictionary "
                             "(raw:, dictionary:), an already harmonised dataset (harmonised:), or demo: true.")
            return {"demo": False, "raw": None, "dictionary": None, "harmonised": None}
        known = {"demo", "raw", "dictionary", "harmonised"}
        for k in s:
            if k not in known:
                self.add("P001", f"sources has an unknown key {k!r}.", remedy=f"Use {', '.join(sorted(known))}.")
        demo = bool(s.get("demo", False))
        out: dict = {"demo": demo, "raw": None, "dictionary": None, "harmonised": None}
        if s.get("harmonised") is not None:
            if s.get("raw") is not None or demo:
                self.add("P002", "sources names both a harmonised dataset and raw files; give one of them.")
            h = s["harmonised"]
            if isinstance(h, (str, Path)):
                h = {"patients": h}
            if not isinstance(h, Mapping) or "patients" not in h:
                self.add("P002", f"sources.harmonised is {h!r}; expected {{patients: FILE, alters: FILE}}.")
            else:
                out["harmonised"] = {str(k): self.path(v, f"sources.harmonised.{k}") for k, v in h.items()
                                     if k in ("patients", "alters", "alter_ties")}
                for k in h:
                    if k not in ("patients", "alters", "alter_ties"):
                        self.add("P002", f"sources.harmonised has table {k!r}; expected patients, alters and "
                                 "(optionally) alter_ties.")
                self._targets_from_files(out["harmonised"])
            if s.get("dictionary") is not None:
                out["dictionary"] = self._dictionary(s["dictionary"], data_dir=None)
            return out
        if not demo:
            if s.get("raw") is None:
                self.add("P002", "sources names no raw files folder (raw:) and no harmonised dataset (harmonised:).",
                         remedy="Add raw: FOLDER and dictionary: FOLDER, or harmonised: {patients: FILE}.")
            else:
                out["raw"] = self.path(s["raw"], "sources.raw", kind="folder")
        elif s.get("raw") is not None:
            self.add("P002", "sources has demo: true and raw:; the demo writes its own raw files, so leave raw: out.")
        if s.get("dictionary") is None:
            self.add("P002", "sources names no data dictionary (dictionary: FOLDER, or dictionary: demo).")
        else:
            raw = out["raw"] if out["raw"] and Path(out["raw"]).is_dir() else None
            out["dictionary"] = self._dictionary(s["dictionary"], data_dir=raw, check_files=not demo)
        return out

    def _dictionary(self, value, *, data_dir, check_files: bool = True) -> dict | None:

        if value == "demo":
            folder, kind = str(demo_dictionary_path()), "demo"
        else:
            folder, kind = self.path(value, "sources.dictionary", kind="folder"), "folder"
            if folder is None or not Path(folder).is_dir():
                return {"kind": kind, "path": folder}
        try:
            d = read_dictionary(folder, strict=False)
        except CimstatsError as exc:
            self.add("P004", f"The data dictionary '{value}' cannot be read: {exc}")
            return {"kind": kind, "path": folder}
        for issue in d.report:
            self.rep.extend([issue])
        self.dictionary = d
        self.targets.update(("study", "country", "wave"))  # harmonise adds these to every table
        for tmap in d.tables.values():
            self.targets.update(tmap)
        if check_files and data_dir is not None:
            for _, r in d.studies.iterrows():
                if r["file"] and resolve_study_file(d, r["file"], data_dir) is None:
                    self.add("P003", f"The dictionary's study '{r['study']}' names the file '{r['file']}', which is "
                                     f"not in sources.raw ({data_dir}) nor beside the dictionary.",
                             remedy="Put the file in the raw folder or correct studies.csv.")
        return {"kind": kind, "path": folder}

    def _targets_from_files(self, files: Mapping) -> None:
        import pyarrow.parquet as pq

        for p in files.values():
            if p and Path(p).is_file() and p.endswith(".parquet"):
                try:
                    self.targets.update(pq.read_schema(p).names)
                except Exception:  # unreadable files are reported when the step reads them
                    pass

    def instruments(self, s) -> list[dict]:

        if s is None:
            return []
        if not isinstance(s, list):
            self.add("P005", f"Section 'instruments' is {type(s).__name__}; expected a list of instrument ids.")
            return []
        shipped = set(list_instruments()["id"])
        out = []
        for k, entry in enumerate(s, start=1):
            spec = {"instrument": entry} if isinstance(entry, str) else dict(entry) if isinstance(entry, Mapping) else {}
            ins_id = spec.get("instrument")
            if not ins_id:
                self.add("P005", f"instruments entry {k} is {entry!r}; expected an instrument id or "
                                 "{instrument: ID, scores: [...]}.")
                continue
            if ins_id not in shipped:
                p = Path(ins_id)
                p = p if p.is_absolute() else self.base / p
                if p.suffix in (".yaml", ".yml") and p.is_file():
                    spec["instrument"] = str(p.resolve())
                else:
                    self.add("P005", f"instruments entry {k} names instrument {ins_id!r}, which is neither shipped "
                                     "nor a YAML file.", remedy=f"Use one of {', '.join(sorted(shipped))}.")
                    continue
            try:
                ins = load_instrument(spec["instrument"])
            except CimstatsError as exc:
                self.add("P005", f"instruments entry {k} ({ins_id}) cannot be loaded: {exc}")
                continue
            bad = [x for x in spec.get("scores") or [] if x not in ins.score_ids]
            if bad:
                self.add("P005", f"instruments entry {k} ({ins_id}) asks for scores {', '.join(map(repr, bad))}, "
                                 f"which it does not define.", remedy=f"Its scores are {', '.join(ins.score_ids)}.")
            if self.targets:
                absent = [i for i in ins.item_ids if i not in self.targets and i not in (spec.get("items") or {})]
                wanted = spec.get("scores")
                if wanted and not bad:
                    need = set()
                    for sid in wanted:
                        need.update(_score_items(ins, sid))
                    absent = [i for i in absent if i in need]
                if absent:
                    self.add("P007", f"instruments entry {k} ({ins_id}) needs items {', '.join(absent)}, which the "
                                     "data dictionary does not define.",
                             remedy="Map them with items: {ITEM: COLUMN} or add them to the dictionary.")
            spec.setdefault("scores", None)
            spec.setdefault("items", None)
            out.append(spec)
        return out

    def networks(self, s) -> dict | None:

        if s is None or s is False:
            return None
        if s is True:
            s = {}
        if not isinstance(s, Mapping):
            self.add("P006", f"Section 'networks' is {s!r}; expected {{measures: all, change: true}}.")
            return None
        measures = s.get("measures", "all")
        funcs = set(measure_catalogue()["function"])
        if measures != "all":
            if not isinstance(measures, list):
                self.add("P006", f"networks.measures is {measures!r}; expected 'all' or a list of measure groups.")
                measures = "all"
            else:
                bad = [m for m in measures if m not in funcs]
                if bad:
                    self.add("P006", f"networks.measures names {', '.join(map(repr, bad))}, which are not measure "
                                     "groups.", remedy=f"Use {', '.join(sorted(funcs))}.")
        waves = s.get("change_waves", [0, 1])
        if not (isinstance(waves, list) and len(waves) == 2 and all(_whole(w, 0, 99) for w in waves)
                and waves[0] != waves[1]):
            self.add("P014", f"networks.change_waves is {_short(waves)}; expected two different whole wave "
                             "numbers from 0 to 99.", remedy="Write change_waves: [0, 1].")
            waves = [0, 1]
        return {"measures": measures, "change": bool(s.get("change", True)), "change_waves": list(waves)}

    def constructs(self, s, sections: dict) -> dict:
        """Named constructs (the construct table's schema); builds the run's construct table."""

        out: dict = {}
        if s is not None and not isinstance(s, Mapping):
            self.add("P015", f"Section 'constructs' is {_short(s)}; expected a mapping of names to "
                             "{kind: ..., ...} entries.")
            s = None
        for name, spec in (s or {}).items():
            problems = construct_problems(name, spec)
            for _, msg in problems:
                self.add("P015", msg, remedy="Use kind scale (instrument, score), network (measure), change "
                                             "(measure), wave_difference (of) or cluster_mean (of, by).")
            if not problems:
                out[str(name)] = dict(spec)
        try:
            table = ConstructTable(scale_constructs([x for x in sections.get("instruments") or []]))
            if sections.get("networks"):
                table = table.merged(ConstructTable(network_constructs(measure_catalogue(expand=True)["column"])))
            self.table = table.merged(out)
        except CimstatsError as exc:
            self.add("P015", str(exc))
        self._check_constructs(out)
        return out

    def _check_constructs(self, constructs: Mapping) -> None:
        """Instruments, scores and measures that named constructs use exist (and their items are in the data)."""

        shipped = set(list_instruments()["id"])
        net_cols = set(measure_catalogue(expand=True)["column"])
        change_cols = set(change_columns("ego"))
        for name, spec in constructs.items():
            kind = spec.get("kind")
            if kind == "scale":
                ins = spec.get("instrument")
                if ins not in shipped:
                    self.add("P005", f"construct {name!r} uses instrument {ins!r}, which is not shipped.",
                             remedy=f"Use one of {', '.join(sorted(shipped))}.")
                    continue
                inst = load_instrument(ins)
                if spec.get("score") not in inst.score_ids:
                    self.add("P005", f"construct {name!r} uses score {spec.get('score')!r} of {ins}, which it does "
                                     f"not define.", remedy=f"Its scores are {', '.join(inst.score_ids)}.")
                elif self.targets:
                    mapping = spec.get("items") if isinstance(spec.get("items"), Mapping) else {}
                    absent = [i for i in _score_items(inst, spec["score"]) if mapping.get(i, i) not in self.targets]
                    if absent:
                        self.add("P007", f"construct {name!r} scores {ins} items {', '.join(absent)}, which the "
                                         "data dictionary does not define.")
            elif kind in ("cluster_mean", "national_quantile", "education_group") and self.targets:
                known = set(self.targets) | set(constructs) | set(self.table or ())
                absent = [str(spec.get(k)) for k in ("of", "by") if spec.get(k) and spec.get(k) not in known]
                if absent:
                    self.add("P007", f"construct {name!r} ({kind}) uses {', '.join(map(repr, absent))}, which "
                                     "neither the data dictionary nor the plan's constructs define.",
                             remedy="Name a harmonised variable (of: the variable, by: the cluster identifier).")
            elif kind == "network" and spec.get("measure") not in net_cols:
                self.add("P006", f"construct {name!r} uses network measure {spec.get('measure')!r}, which is not "
                                 "an ego-level measure.", remedy="See cimstats.networks.measure_catalogue(expand=True).")
            elif kind == "change" and spec.get("measure") not in change_cols:
                self.add("P006", f"construct {name!r} uses change measure {spec.get('measure')!r}, which "
                                 "cimstats.networks.change does not compute.",
                         remedy=f"Use one of {', '.join(sorted(change_cols))}.")

    def mechanisms(self, s, sections: dict) -> dict | None:

        if s is None or s is False:
            return None
        if not isinstance(s, Mapping):
            s = {"plan": s}
        known = {"plan", "adjust", "n_boot", "level"}
        for k in s:
            if k not in known:
                self.add("P001", f"mechanisms has an unknown key {k!r}.", remedy=f"Use {', '.join(sorted(known))}.")
        value = s.get("plan", "default")
        out = {"plan": None, "plan_file": None, "adjust": s.get("adjust", "holm"),
               "n_boot": s.get("n_boot", 2000), "level": s.get("level")}
        for _, msg, remedy in option_problems(adjust=out["adjust"], n_boot=out["n_boot"], level=out["level"],
                                              seed=None, prefix="mechanisms.", suffix=""):
            self.add("P012", msg, remedy=remedy)
        if value == "default":
            doc = yaml.safe_load(resources.files("cimstats.mechanisms").joinpath("default_plan.yaml")
                                 .read_text(encoding="utf-8"))
            out["plan_file"] = "default"
        elif isinstance(value, (str, Path)):
            p = self.path(value, "mechanisms.plan")
            if p is None or not Path(p).is_file():
                return out
            out["plan_file"] = p
            try:
                doc = load_yaml(read_plan_text(Path(p), "mechanism plan"), f"mechanisms.plan '{value}'")
            except PlanError as exc:
                self.add("P012", str(exc))
                return out
        elif isinstance(value, Mapping):
            doc = copy.deepcopy(dict(value))
        else:
            self.add("P012", f"mechanisms.plan is {value!r}; expected default, a YAML file or a mapping.")
            return out
        try:
            self.mechanism_plan = read_mechanism_plan(doc, source=str(out["plan_file"] or "mechanisms.plan"),
                                                      constructs=self.table)
            out["plan"] = doc
        except PlanError as exc:
            if exc.report is not None and len(exc.report):
                self.rep.extend(exc.report.issues)
            else:
                self.add("P012", str(exc))
        if isinstance(doc, Mapping):
            self._check_hypothesis_variables(doc)
        return out

    def _check_hypothesis_variables(self, doc: Mapping) -> None:
        """Every variable a hypothesis's model uses must come from the dictionary or the construct table.

        Works on the mechanism plan as written, so these problems are reported
        together with the plan's own (even when it has other errors).
        """

        constructs = doc.get("constructs") if isinstance(doc.get("constructs"), Mapping) else {}
        models = doc.get("models") if isinstance(doc.get("models"), Mapping) else {}
        hyps = doc.get("hypotheses") if isinstance(doc.get("hypotheses"), list) else []
        self._check_constructs({k: v for k, v in constructs.items() if isinstance(v, Mapping)})
        defined = set(constructs) | set(self.table or ())
        if not self.targets:
            return  # no dictionary or dataset to check against (reported elsewhere)
        by_level = {"change": set(change_columns("ego")), "alter_change": set(change_columns("alter"))}
        for h in hyps:
            if not isinstance(h, Mapping) or not isinstance(models.get(h.get("model")), Mapping):
                continue  # reported by the mechanism plan's own check
            spec = models[h["model"]]
            names = _model_variables(spec)
            level_cols = by_level.get(str(spec.get("level", "ego")), set())
            absent = [n for n in names if n not in self.targets and n not in defined and n not in level_cols]
            if absent:
                self.add("P007", f"hypothesis {h.get('id')!r} (model {h['model']!r}) uses "
                                 f"{', '.join(map(repr, absent))}, which neither the data dictionary nor the plan's "
                                 "constructs define.",
                         remedy="Correct the name, add the variable to the dictionary, or define it as a construct.")

    def qualitative(self, s) -> dict | None:
        if s is None or s is False:
            return None
        if not isinstance(s, Mapping):
            self.add("P013", f"Section 'qualitative' is {s!r}; expected {{codebook: FILE, excerpts: FILE}}.")
            return None
        out: dict = {"codebook": None, "excerpts": None, "mapping": None}
        for key in ("codebook", "excerpts", "mapping"):
            v = s.get(key)
            if v is None:
                continue
            out[key] = "demo" if v == "demo" and key != "mapping" else self.path(v, f"qualitative.{key}")
        if out["codebook"] is None:
            self.add("P013", "qualitative names no codebook (codebook: FILE or codebook: demo).")
        ex = out["excerpts"]
        if ex and ex != "demo" and ex.endswith(".qdpx") and out["mapping"] is None:
            self.add("P013", "qualitative.excerpts is a .qdpx project but no code -> theme mapping is given.",
                     remedy="Add mapping: FILE (see cimstats.integrate.mapping_template).")
        for k in s:
            if k not in out:
                self.add("P001", f"qualitative has an unknown key {k!r}.", remedy="Use codebook, excerpts, mapping.")
        return out

    def joint_displays(self, s, sections: dict) -> list[dict]:

        if s is None:
            return []
        if not isinstance(s, list):
            self.add("P009", f"Section 'joint_displays' is {type(s).__name__}; expected a list of {{kind: ...}}.")
            return []
        needs_results = {"side_by_side", "statistics_by_theme", "convergence"}
        out = []
        for k, entry in enumerate(s, start=1):
            spec = {"kind": entry} if isinstance(entry, str) else dict(entry) if isinstance(entry, Mapping) else {}
            kind = spec.get("kind")
            if kind not in DISPLAY_KINDS:
                self.add("P009", f"joint_displays entry {k} has kind {kind!r}.",
                         remedy=f"Use one of {', '.join(DISPLAY_KINDS)}.")
                continue
            for opt in spec:
                if opt not in _DISPLAY_OPTIONS:
                    self.add("P009", f"joint_displays entry {k} ({kind}) has an unknown option {opt!r}.",
                             remedy=f"Use {', '.join(sorted(_DISPLAY_OPTIONS))}.")
            for opt, (lo, hi) in _DISPLAY_RANGES.items():
                v = spec.get(opt)
                if opt in spec and not _whole(v, lo, hi) and not (opt == "max_quote_chars" and v is None):
                    self.add("P014", f"joint_displays entry {k} ({kind}) has {opt} {_short(v)}; expected a whole "
                                     f"number from {lo} to {hi}.")
            if kind in needs_results and sections.get("mechanisms") is None:
                self.add("P009", f"joint_displays entry {k} ({kind}) needs the mechanism table, but the plan has "
                                 "no mechanisms section.")
            if sections.get("qualitative") is None:
                self.add("P009", f"joint_displays entry {k} ({kind}) needs themes, but the plan has no qualitative "
                                 "section.")
            if "reviews" in spec:
                spec["reviews"] = self.reviews(spec["reviews"], f"joint_displays entry {k} ({kind}) reviews")
            coders = spec.get("coders")
            if "coders" in spec and not (isinstance(coders, list) and len(coders) == 2
                                         and all(isinstance(c, str) and c.strip() for c in coders)):
                self.add("P009", f"joint_displays entry {k} ({kind}) has coders {_short(coders)}; expected the "
                                 "names of two coders, as in [coder_a, coder_b].")
            if "expect" in spec:
                self.expect(spec["expect"], f"joint_displays entry {k} ({kind})", kind,
                            sections.get("qualitative") or {})
            if kind == "themes_by_group" and not spec.get("group_by"):
                self.add("P009", f"joint_displays entry {k} (themes_by_group) needs group_by.")
            cols = [spec["group_by"]] if spec.get("group_by") else []
            prof = spec.get("profile") or []
            cols += list(prof) if isinstance(prof, (list, Mapping)) else []
            exp = spec.get("expect")
            if isinstance(exp, Mapping):
                cols += [c for sides in exp.values() if isinstance(sides, Mapping) for c in sides
                         if c not in cols]
            if self.targets:
                extra = set(self.table or ())
                mech = sections.get("mechanisms") or {}
                if mech.get("plan"):
                    extra.update((mech["plan"].get("constructs") or {}).keys())
                absent = [c for c in cols if c not in self.targets and c not in extra]
                if absent:
                    self.add("P007", f"joint_displays entry {k} ({kind}) uses {', '.join(map(repr, absent))}, which "
                                     "neither the data dictionary nor the plan's scale scores and network measures "
                                     "define.")
            out.append(spec)
        return out

    def expect(self, value, what: str, kind: str, qualitative: Mapping) -> None:
        """A case-oriented display's ``expect``: theme id -> {survey column: high or low} (``P009``)."""
        if kind != "case_oriented":
            self.add("P009", f"{what} has the option expect, which only case_oriented displays use.",
                     remedy="Remove expect or use it on a case_oriented display.")
            return
        shape = "a mapping of theme ids to {column: high or low}, as in {T1: {ce: high}}"
        if not isinstance(value, Mapping) or not value:
            self.add("P009", f"{what} has expect {_short(value)}; expected {shape}.")
            return
        for theme, sides in value.items():
            if not isinstance(sides, Mapping) or not sides:
                self.add("P009", f"{what} has expect.{theme} {_short(sides)}; expected {shape}.")
                continue
            for col, side in sides.items():
                if str(side).strip().lower() not in ("high", "low"):
                    self.add("P009", f"{what} has expect.{theme}.{col} {_short(side)}; expected high or low.")
        known = _codebook_theme_ids(qualitative.get("codebook"))
        absent = [str(t) for t in value if known is not None and str(t) not in known]
        if absent:
            self.add("P009", f"{what} has expect for theme(s) {', '.join(map(repr, absent))}, which the codebook "
                             "does not define.", remedy=f"Use theme ids of the codebook: {', '.join(sorted(known))}.")

    def reviews(self, value, what: str) -> str | None:
        """A review file of a joint display: its path (relative to the plan), read once to report its problems."""
        path = self.path(value, what)
        if path is None or not Path(path).is_file():
            return path
        try:
            read_reviews(path)
        except CimstatsError as e:
            self.add("P009", f"{what}: {e}", remedy="Correct the review file (see cimstats.integrate.review_template).")
        return path

    def imputation(self, s, sections: dict) -> dict | None:
        """The ``imputation`` section (``P021``): m, seed, iterations, method, carry, donors."""
        if s is None or s is False:
            return None
        for msg in imputation_problems(s):
            self.add("P021", msg, remedy="See the section 'imputation' in the documentation of the analysis plan.")
        if not isinstance(s, Mapping):
            return None
        if sections.get("mechanisms") is None:
            self.add("P021", "The plan has an imputation section but no mechanisms section; imputation serves the "
                             "mechanism tests.", remedy="Add a mechanisms section or remove the imputation section.")
        names = list((s.get("method") or {}) if isinstance(s.get("method"), Mapping) else []) + \
            [c for c in (s.get("carry") or []) if isinstance(c, str)]
        unknown = [n for n in names if self.targets and n not in self.targets]
        if unknown:
            self.add("P021", f"imputation names {', '.join(map(repr, unknown))}, which the data dictionary does not "
                             "define.", remedy="Name variables of the harmonised patient table.")
        return {"m": s.get("m", 20), "seed": s.get("seed", 1), "iterations": s.get("iterations", 10),
                "method": dict(s.get("method") or {}) if isinstance(s.get("method"), Mapping) else {},
                "carry": list(s.get("carry") or []) if isinstance(s.get("carry"), (list, tuple)) else [],
                "donors": s.get("donors", 5)}

    def outputs(self, s) -> dict:
        out = copy.deepcopy(DEFAULT_OUTPUTS)
        if s is None:
            return out
        if not isinstance(s, Mapping):
            self.add("P010", f"Section 'outputs' is {s!r}; expected {{data: [...], tables: [...], figures: [...]}}.")
            return out
        allowed = {"data": DATA_FORMATS, "tables": TABLE_FORMATS, "figures": FIGURE_FORMATS}
        for k, v in s.items():
            if k == "report":
                out["report"] = bool(v)
                continue
            if k not in allowed:
                self.add("P001", f"outputs has an unknown key {k!r}.", remedy="Use data, tables, figures, report.")
                continue
            if v is not None and not isinstance(v, (str, list)):
                self.add("P010", f"outputs.{k} is {_short(v)}; expected a list of formats such as "
                                 f"[{', '.join(allowed[k][:2])}].", remedy=f"Use {', '.join(allowed[k])}.")
                continue
            vals = [v] if isinstance(v, str) else list(v or [])
            bad = [f for f in vals if not isinstance(f, str) or f.lower().lstrip(".") not in allowed[k]]
            if bad:
                self.add("P010", f"outputs.{k} names format(s) {', '.join(map(repr, bad))}.",
                         remedy=f"Use {', '.join(allowed[k])}.")
            out[k] = [f.lower().lstrip(".") for f in vals if f not in bad]
        return out


def plan_accept_codes(plan) -> list[str]:
    """The harmonisation codes an analysis plan accepts (its ``accept:`` list), without checking the rest.

    ``cimstats dictionary check --plan PLAN`` uses this, so that the check
    reports each issue with the severity ``cimstats run PLAN`` gives it.

    Raises
    ------
    PlanError
        The plan cannot be read, or ``accept`` names something that is not a
        harmonisation code (``P016``).

    Examples
    --------
    >>> plan_accept_codes({"accept": ["h206", "H206"]})
    ['H206']
    """
    doc, _, source, _ = _load(plan, None)
    doc = doc if isinstance(doc, Mapping) else {}
    rep = Report()
    codes = _accept_codes(doc.get("accept"), _Checker(rep, source, Path(".")))
    if rep.has_errors:
        raise PlanError(f"The analysis plan '{source}' has {len(rep.errors)} problem(s) in its accept list (first: "
                        f"{rep.errors[0].message}); fix them and run again.", report=rep)
    return codes


def _accept_codes(value, chk: "_Checker") -> list[str]:
    """The ``accept:`` list: harmonisation codes (upper case, each once); anything else is ``P016``."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        chk.add("P016", f"Section 'accept' is {_short(value)}; expected a list of harmonisation codes such as "
                        "[H206].", remedy="Write accept: [H206].")
        return []
    out: list[str] = []
    for v in items:
        code = str(v).strip().upper() if isinstance(v, str) else None
        if code not in SEVERITY:
            chk.add("P016", f"accept names {_short(v)}, which is not a harmonisation code.",
                    remedy=f"Use codes of cimstats.dictionary.codes.SEVERITY ({', '.join(sorted(SEVERITY))}).")
        elif code not in out:
            out.append(code)
    return out


def _short(v, limit: int = 60) -> str:
    """``repr`` of a plan value, shortened for a message."""
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _score_items(ins, score_id: str) -> list[str]:
    """Items a score needs (scores combining other scores expanded)."""
    s = ins.score(score_id)
    if s.items:
        return list(s.items)
    out: list[str] = []
    for sub in s.scores:
        out += _score_items(ins, sub)
    return out
