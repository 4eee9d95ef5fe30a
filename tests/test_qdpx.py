"""REFI-QDA (.qdpx) import: real exports from NVivo and ATLAS.ti, plus error paths and optional parts."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from conftest import QDPX, need

from cimstats.errors import QDAImportError
from cimstats.integrate import read_qdpx

NVIVO = "vaccine-scepticism-nvivo.qdpx"
TEXT_SOURCE = "68bbdc14-c361-4432-b4dd-ae1dbfc12890"


@pytest.fixture(scope="module")
def nvivo():
    return read_qdpx(need(QDPX / NVIVO))


def _raw_counts(path: Path) -> dict:
    """Count elements in project.qde with plain regular expressions (independent of the reader)."""
    with zipfile.ZipFile(path) as z:
        xml = z.read("project.qde").decode("utf-8")
    return {tag: len(re.findall(rf"<{tag}[\s>/]", xml)) for tag in ("Code", "PlainTextSelection", "Coding", "User",
                                                                      "TextSource", "Description")}


# ------------------------------------------------------------ the NVivo export
def test_nvivo_counts(nvivo):
    raw = _raw_counts(QDPX / NVIVO)
    # 152 codes as the README states; the file holds 303 coded selections and 2 users
    # (the README's "330 selections by 3 users" does not match the archive; counted here independently)
    assert len(nvivo.codes) == 152 == raw["Code"]
    assert len(nvivo.codings) == 303 == raw["Coding"] == raw["PlainTextSelection"]
    assert nvivo.codings["selection_guid"].nunique() == 303
    assert len(nvivo.users) == 2 == raw["User"]
    assert len(nvivo.sources) == 2 and set(nvivo.sources["kind"]) == {"text"}
    assert nvivo.origin.startswith("NVivo")
    assert len(nvivo.report) == 0
    assert nvivo.cases.empty and nvivo.case_variables.empty and nvivo.variables.empty


def test_nvivo_code_hierarchy(nvivo):
    codes = nvivo.codes
    assert codes["guid"].is_unique
    assert (codes["level"] == 0).sum() == 12
    assert codes["level"].max() == 3
    top = codes.loc[codes["name"] == "2. Attitűd szint az oltáshoz"].iloc[0]
    kids = codes.loc[codes["parent"] == top["guid"], "name"].tolist()
    assert kids == ["piros", "sárga", "zöld"]
    assert top["description"].startswith("Erősen szkeptikus (piros)\nEnyhén szkeptikus")
    child = codes.loc[codes["name"] == "sárga"].iloc[0]
    assert child["path"] == "2. Attitűd szint az oltáshoz > sárga" and child["parent_name"] == top["name"]
    # every parent guid exists
    assert set(codes["parent"].dropna()) <= set(codes["guid"])
    assert codes["description"].notna().sum() > 0


def test_nvivo_selection_texts_match_the_source(nvivo):
    cod = nvivo.codings
    assert cod["text"].notna().all()
    text = nvivo.source_text(TEXT_SOURCE)
    assert len(text) == int(nvivo.sources.set_index("guid").loc[TEXT_SOURCE, "n_characters"])
    # NVivo counts UTF-16 code units: the source has emoji, so code points would drift
    assert nvivo.sources.set_index("guid").loc[TEXT_SOURCE, "position_unit"] == "utf16"
    b16 = text.encode("utf-16-le", "surrogatepass")
    for r in cod.itertuples():
        assert r.text == b16[2 * r.start: 2 * r.end].decode("utf-16-le")
        assert r.end - r.start >= len(r.text)  # astral characters take two units
    # the first selection of the file, checked by hand against the source
    first = cod.iloc[0]
    assert (first.start, first.end) == (3137, 3284)
    assert first.text.startswith("Senkit nem lehet kötelezni oltásra")
    assert first.text.endswith("nem élhet.")
    assert first.code_name == "piros" and first.user == "Gergo"
    # coders select whole words: nearly every selection starts and ends at a word boundary
    starts = sum(1 for r in cod.itertuples() if r.start == 0 or not b16[2 * r.start - 2: 2 * r.start].decode("utf-16-le").isalnum())
    assert starts >= 300


def test_nvivo_selection_texts_appear_in_the_rich_text_source(nvivo):
    """Independent check: each selection occurs in the .docx version of the same source."""
    from lxml import etree

    with zipfile.ZipFile(QDPX / NVIVO) as z:
        inner = zipfile.ZipFile(io.BytesIO(z.read(f"Sources/{TEXT_SOURCE}.docx")))
        body = etree.fromstring(inner.read("word/document.xml"))
    rich = re.sub(r"\s+", "", "".join(body.itertext()))
    missing = [t for t in nvivo.codings["text"] if re.sub(r"\s+", "", t) not in rich]
    assert missing == []


def test_codepoint_positions_can_be_forced(nvivo):
    cp = read_qdpx(QDPX / NVIVO, positions="codepoint")
    assert (cp.sources["position_unit"] == "codepoint").all()
    assert (cp.codings["text"] != nvivo.codings["text"]).sum() > 0


def test_nvivo_validates_against_the_refi_schema():
    xsd = need(QDPX / "Project-mrt2019.xsd")
    proj = read_qdpx(QDPX / NVIVO, validate=xsd)
    assert len(proj.codes) == 152


def test_codings_by_case_and_summary(nvivo):
    by = nvivo.codings_by_case()
    assert len(by) == 303 and by["case"].isna().all()
    assert "152 codes" in nvivo.summary()


# ------------------------------------------------------------- ATLAS.ti exports
def test_atlas_code_hierarchy_without_sources():
    proj = read_qdpx(need(QDPX / "target-atlas-project.qdpx"))
    assert proj.codes["name"].tolist() == ["Commits", "2022-05-10T02:05:59Z 19e4dce", "2022-02-11T10:39:25Z cdbfd92"]
    assert proj.codes["level"].tolist() == [0, 1, 1]
    assert proj.codes["parent"].iloc[1] == proj.codes["guid"].iloc[0]
    assert proj.sources.empty and proj.codings.empty
    assert list(proj.codings.columns)[:6] == ["coding_guid", "selection_guid", "code_guid", "code_name", "code_path",
                                              "source_guid"]


def test_blank_project():
    proj = read_qdpx(need(QDPX / "blank-atlas-project.qdpx"))
    assert proj.name == "blank-atlas-project"
    assert proj.codes.empty and proj.codings.empty and proj.sources.empty
    assert len(proj.users) == 2
    assert list(proj.codes.columns) == ["guid", "name", "parent", "parent_name", "path", "level", "description",
                                        "is_codable", "color"]


# ------------------------------------------------------------ synthetic parts
NS = 'xmlns="urn:QDA-XML:project:1.0"'


def _qdpx(tmp_path, qde: str, files: dict | None = None, name="p.qdpx") -> Path:
    p = tmp_path / name
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("project.qde", qde)
        for k, v in (files or {}).items():
            z.writestr(k, v)
    return p


CASES_QDE = f"""<?xml version="1.0" encoding="utf-8"?>
<Project {NS} name="cases" origin="test">
 <Users><User guid="u1" name="Réka"/></Users>
 <CodeBook><Codes>
  <Code guid="c1" name="Bizalom" isCodable="true"><Description>Trust</Description>
   <Code guid="c2" name="Időzítés" isCodable="true"/></Code>
 </Codes></CodeBook>
 <Variables><Variable guid="v1" name="age" typeOfVariable="Integer"/>
  <Variable guid="v2" name="area" typeOfVariable="Text"/></Variables>
 <Cases>
  <Case guid="k1" name="EN-0001"><VariableValue><VariableRef targetGUID="v1"/><IntegerValue>63</IntegerValue></VariableValue>
   <VariableValue><VariableRef targetGUID="v2"/><TextValue>deprived</TextValue></VariableValue>
   <SourceRef targetGUID="s1"/></Case>
  <Case guid="k2" name="EN-0002"><SourceRef targetGUID="s2"/></Case>
 </Cases>
 <Sources>
  <TextSource guid="s1" name="interview 1" plainTextPath="internal://s1.txt">
   <PlainTextSelection guid="p1" startPosition="0" endPosition="7" creatingUser="u1">
    <Coding guid="g1" creatingUser="u1"><CodeRef targetGUID="c2"/></Coding></PlainTextSelection>
   <PlainTextSelection guid="p2" startPosition="8" endPosition="999">
    <Coding guid="g2"><CodeRef targetGUID="c1"/></Coding></PlainTextSelection>
   <PlainTextSelection guid="p3" startPosition="0" endPosition="3">
    <Coding guid="g3"><CodeRef targetGUID="nope"/></Coding></PlainTextSelection>
  </TextSource>
  <TextSource guid="s2" name="interview 2"><PlainTextContent>Új élet 👍 kezdődik</PlainTextContent>
   <PlainTextSelection guid="p4" startPosition="8" endPosition="18">
    <Coding guid="g4"><CodeRef targetGUID="c1"/></Coding></PlainTextSelection>
   <Coding guid="g5"><CodeRef targetGUID="c2"/></Coding>
  </TextSource>
  <TextSource guid="s3" name="missing file" plainTextPath="internal://gone.txt"/>
  <PictureSource guid="s4" name="photo" path="internal://x.png">
   <PictureSelection guid="p5" firstX="1" firstY="1" secondX="5" secondY="5">
    <Coding guid="g6"><CodeRef targetGUID="c1"/></Coding></PictureSelection></PictureSource>
 </Sources>
</Project>"""


def test_cases_variables_inline_text_and_problems(tmp_path):
    p = _qdpx(tmp_path, CASES_QDE, {"Sources/s1.txt": "\ufeffKözösen járunk sétálni.".encode("utf-8")})
    proj = read_qdpx(p)
    assert proj.cases["name"].tolist() == ["EN-0001", "EN-0002"]
    wide = proj.case_variable_table()
    assert wide.loc[wide["case"] == "EN-0001", "age"].iloc[0] == 63
    assert wide.loc[wide["case"] == "EN-0001", "area"].iloc[0] == "deprived"
    cod = proj.codings.set_index("coding_guid")
    assert cod.loc["g1", "text"] == "Közösen"  # BOM skipped, Hungarian letters kept
    assert cod.loc["g1", "code_path"] == "Bizalom > Időzítés" and cod.loc["g1", "user"] == "Réka"
    assert cod.loc["g2", "text"] is None or cod.loc["g2", "text"] != cod.loc["g2", "text"]  # out of range -> missing
    assert cod.loc["g3", "code_name"] is None or cod.loc["g3", "code_name"] != cod.loc["g3", "code_name"]
    assert cod.loc["g4", "text"] == "👍 kezdődik"  # auto picks code points here: they put the span on word boundaries
    assert cod.loc["g5", "kind"] == "source" and cod.loc["g6", "kind"] == "picture"
    codes = {i.code for i in proj.report}
    assert {"Q020", "Q031", "Q040"} <= codes
    by = proj.codings_by_case().set_index("coding_guid")
    assert by.loc["g1", "case"] == "EN-0001" and by.loc["g4", "case"] == "EN-0002"
    assert proj.source_text("interview 2") == "Új élet 👍 kezdődik"
    with pytest.raises(QDAImportError, match="no plain text"):
        proj.source_text("missing file")


def test_bare_project_qde_is_accepted(tmp_path):
    f = tmp_path / "project.qde"
    f.write_text(CASES_QDE, encoding="utf-8")
    proj = read_qdpx(f)
    assert len(proj.codes) == 2 and len(proj.codings) == 6


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda d: d / "none.qdpx", "does not exist"),
        (lambda d: _write(d / "bad.qdpx", b"PK\x03\x04garbage"), "corrupt"),
        (lambda d: _write(d / "text.qdpx", b"hello"), "neither a zip"),
        (lambda d: _qdpx(d, "<Project", name="broken.qdpx"), "not well-formed"),
        (lambda d: _qdpx(d, "<Project name='x'/>", name="nons.qdpx"), "namespace"),
    ],
)
def test_unreadable_files(tmp_path, make, match):
    with pytest.raises(QDAImportError, match=match):
        read_qdpx(make(tmp_path))


def test_zip_without_project_qde(tmp_path):
    p = tmp_path / "x.qdpx"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("Sources/a.txt", "x")
    with pytest.raises(QDAImportError, match="without 'project.qde'"):
        read_qdpx(p)


def test_truncated_real_export(tmp_path):
    src = need(QDPX / NVIVO).read_bytes()
    p = tmp_path / "cut.qdpx"
    p.write_bytes(src[: len(src) // 2])
    with pytest.raises(QDAImportError):
        read_qdpx(p)


def test_bad_arguments(tmp_path):
    p = _qdpx(tmp_path, CASES_QDE)
    with pytest.raises(QDAImportError, match="positions"):
        read_qdpx(p, positions="bytes")
    with pytest.raises(QDAImportError, match="schema"):
        read_qdpx(p, validate=True)


def test_cli_exports_tables(cli, tmp_path):
    src = need(QDPX / NVIVO)
    r = cli("qdpx", str(src), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "152 codes" in r.stdout and "303 codings" in r.stdout
    import pandas as pd

    codes = pd.read_csv(tmp_path / "out" / "codes.csv")
    assert len(codes) == 152
    tmpl = pd.read_csv(tmp_path / "out" / "mapping_template.csv")
    assert list(tmpl.columns) == ["code", "code_path", "code_name", "n_codings", "theme_id"]
    bad = cli("qdpx", str(tmp_path / "none.qdpx"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr
