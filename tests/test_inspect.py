"""``cimstats inspect`` and the codebook on every shared real file."""

from __future__ import annotations

import pandas as pd
import pyreadstat
import pytest
from conftest import LABELLED, need

from cimstats.cli.main import main
from cimstats.io import codebook, read_survey, write_codebook
from cimstats.io.codebook import COLUMNS

READERS = {
    "sav": pyreadstat.read_sav, "zsav": pyreadstat.read_sav, "por": pyreadstat.read_por,
    "dta": pyreadstat.read_dta, "sas7bdat": pyreadstat.read_sas7bdat, "xpt": pyreadstat.read_xport,
}


def _files():
    if not LABELLED.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{LABELLED} is absent"))]
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}")
            for p in sorted(LABELLED.rglob("*")) if p.suffix.lstrip(".") in READERS]


def _code(v) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


@pytest.mark.parametrize("path", _files())
def test_inspect_prints_a_correct_codebook(path, capsys):
    fmt = path.suffix.lstrip(".")
    extra = ["--dates-as-numbers"] if path.name == "datetime.sav" else []
    assert main(["inspect", str(path), *extra]) == 0
    text = capsys.readouterr().out
    kw = {"disable_datetime_conversion": True} if extra else {}
    plain, meta = READERS[fmt](str(path), **kw)  # declared codes as NaN
    kept, _ = READERS[fmt](str(path), user_missing=True, **kw) if fmt in ("sav", "zsav", "dta", "sas7bdat") \
        else (plain, meta)
    assert f"{len(plain)} rows x {plain.shape[1]} variables" in text
    lines = text.splitlines()
    for name in plain.columns:
        block_start = next(i for i, ln in enumerate(lines) if ln.split("  ")[0].split(" [")[0] == name)
        block = "\n".join(lines[block_start:block_start + 6])
        label = meta.column_names_to_labels.get(name)
        if label:
            assert f'"{label}"' in lines[block_start]
        for code, lab in (meta.variable_value_labels.get(name) or {}).items():
            shown = "." + code if fmt == "dta" and isinstance(code, str) and kept[name].dtype != "str" \
                and meta.readstat_variable_types[name] != "string" else _code(code)
            assert f"{shown} = {lab}" in block, (name, shown, lab)
        for r in (meta.missing_ranges or {}).get(name, []):
            lo, hi = _code(r["lo"]).rstrip(), _code(r["hi"]).rstrip()
            assert (lo if lo == hi else f"{lo} to {hi}") in block
        n_valid = int(plain[name].notna().sum())
        n_any = int(kept[name].notna().sum())
        n_declared = n_any - n_valid
        n_system = len(plain) - n_any
        assert (f"n valid {n_valid}, declared missing {n_declared}, system missing {n_system}") in block, name


def test_codebook_columns_and_counts():
    s = read_survey(need(LABELLED / "pyreadstat" / "basic_sample_missing.sav"))
    cb = s.codebook()
    assert list(cb.columns) == COLUMNS
    row = cb.set_index("name").loc["myord"]
    assert row["value_labels"] == "-1 = missing; 1 = low; 2 = medium; 3 = high"
    assert row["missing_codes"] == "-1; -2; -3"
    assert row["n_declared_missing"] == int(s.missing["myord"].notna().sum())
    assert row["n_valid"] + row["n_declared_missing"] + row["n_system_missing"] == len(s)
    assert row["top_categories"].startswith("low (")
    num = cb.set_index("name").loc["mynum"]
    assert num["missing_codes"] == "-1; 2000 to 3000"
    assert num["min"] == s.data["mynum"].min() and num["max"] == s.data["mynum"].max()


def test_codebook_variables_subset():
    s = read_survey(need(LABELLED / "pyreadstat" / "basic_sample.sav"))
    assert codebook(s, variables=["myord", "mychar"])["name"].tolist() == ["myord", "mychar"]


@pytest.mark.parametrize("ext", ["csv", "xlsx", "html"])
def test_inspect_writes_the_codebook(ext, tmp_path, capsys):
    path = need(LABELLED / "pyreadstat" / "basic_sample_missing.sav")
    out = tmp_path / f"codebook.{ext}"
    assert main(["inspect", str(path), "--out", str(out), "--variables", "myord", "mynum"]) == 0
    assert "myord" in capsys.readouterr().out
    if ext == "csv":
        back = pd.read_csv(out)
    elif ext == "xlsx":
        back = pd.read_excel(out)
    else:
        text = out.read_text(encoding="utf-8")
        assert "<table" in text and "2000 to 3000" in text
        back = pd.read_html(__import__("io").StringIO(text))[0]
    assert back["name"].tolist() == ["myord", "mynum"]
    assert list(back.columns) == COLUMNS


def test_html_codebook_escapes_labels(tmp_path):
    import pandas as pd

    from cimstats.io import Survey, VariableMeta

    s = Survey(pd.DataFrame({"x": [1]}), {"x": VariableMeta("x", label="<script>alert(1)</script>")})
    write_codebook(s.codebook(), tmp_path / "cb.html")
    text = (tmp_path / "cb.html").read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_inspect_help_and_subprocess(cli):
    out = cli("inspect", "--help")
    assert out.returncode == 0 and "--out" in out.stdout and "--variables" in out.stdout
    path = LABELLED / "haven" / "labelled-num-na.sav"
    if path.exists():
        out = cli("inspect", str(path))
        assert out.returncode == 0 and "missing codes: 9" in out.stdout
