"""The package skeleton: lazy exports, the error tree, the CLI's error handling."""

import pandas as pd
import pytest

import cimstats
from cimstats.errors import CimstatsError, DictionaryError, Report
from cimstats.io import Survey, VariableMeta


def test_version_flag(cli):
    out = cli("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"cimstats {cimstats.__version__}"


def test_every_public_name_resolves():
    import types

    verbs = {"read_survey", "write_survey", "iter_survey", "harmonise", "score_scale", "lmm", "anova",
             "sem", "invariance", "mediation", "read_qdpx", "joint_display"}
    for name in cimstats.__all__:
        value = getattr(cimstats, name)
        if name in verbs:
            assert callable(value) and not isinstance(value, types.ModuleType), name
    # a verb that shares its name with a submodule stays the verb after the submodule is imported
    import importlib

    importlib.import_module("cimstats.models.sem.invariance")
    assert callable(cimstats.invariance) and callable(cimstats.models.sem.invariance)


def test_unknown_public_name_is_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        cimstats.nonsense  # noqa: B018


def test_errors_inherit_builtins():
    assert issubclass(DictionaryError, ValueError)
    assert issubclass(DictionaryError, CimstatsError)


def test_report_collects_and_summarises():
    r = Report()
    r.add("D001", "Rule 'recod' is unknown.", file="mappings.csv", row=4, column="rule", remedy="Use 'recode'.")
    r.add("D900", "Variable has no label.", severity="warning")
    assert r.has_errors and len(r.errors) == 1
    text = r.summary()
    assert "mappings.csv, row 4, column 'rule'" in text and "Remedy: Use 'recode'." in text


def test_survey_records_declared_missing_codes_and_restores_them():
    raw = pd.DataFrame({"q1": [1, 2, 99, -5, 3], "name": ["a", "b", "NA", "c", "d"]})
    meta = {
        "q1": VariableMeta("q1", missing_codes=(99,), missing_ranges=((-9, -1),)),
        "name": VariableMeta("name", storage="string", missing_codes=("NA",)),
    }
    s = Survey.from_raw(raw, meta)
    assert s.data["q1"].isna().tolist() == [False, False, True, True, False]
    assert s.missing["q1"].tolist() == [None, None, 99, -5, None]
    assert s.missing["name"].tolist() == [None, None, "NA", None, None]
    back = s.raw()
    assert back["q1"].tolist() == [1, 2, 99, -5, 3]
    assert back["name"].tolist() == ["a", "b", "NA", "c", "d"]


def test_survey_labels_keep_code_order():
    s = Survey(pd.DataFrame({"x": [3, 1, 2, 1]}),
               {"x": VariableMeta("x", value_labels={3: "Often", 1: "Never", 2: "Sometimes"}, measure="ordinal")})
    lab = s.labelled("x")
    assert list(lab.cat.categories) == ["Never", "Sometimes", "Often"]
    assert lab.cat.ordered


def test_survey_rejects_duplicate_columns():
    df = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(CimstatsError, match="duplicate column names"):
        Survey(df)


def test_unknown_variable_names_the_available_ones():
    s = Survey(pd.DataFrame({"age": [50], "sex": [1]}))
    with pytest.raises(CimstatsError, match="'agee' is not a variable.*available: age, sex"):
        s.variable("agee")


def test_outputs_get_ordinary_permissions_and_failures_leave_nothing(tmp_path):
    import os
    import stat

    from cimstats._files import atomic_write_with
    from cimstats.render import TableSpec, to_html

    old = os.umask(0o022)
    try:
        s = Survey(pd.DataFrame({"x": [1.0, 2.0]}))
        cimstats.write_survey(s, tmp_path / "a.sav")
        to_html(TableSpec.from_frame(pd.DataFrame({"x": [1]})), tmp_path / "t.html")
        for name in ("a.sav", "t.html"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name

        def broken(tmp):
            open(tmp, "w").write("half")
            raise RuntimeError("disk full")

        with pytest.raises(RuntimeError):
            atomic_write_with(tmp_path / "b.csv", broken)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sav", "t.html"]
    finally:
        os.umask(old)
