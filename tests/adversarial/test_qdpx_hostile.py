"""Hostile .qdpx archives: zip bombs, broken members and malformed project.qde all end in one QDAImportError."""

from __future__ import annotations

import io
import zipfile

import pytest

from cimstats.errors import QDAImportError
from cimstats.integrate import read_qdpx
from cimstats.integrate import qdpx as qdpx_module

from hostile import (bomb_qdpx, deep_codes_project, deflated, qde, qdpx, raw_zip, run_limited, text_project)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return bomb_qdpx(tmp_path_factory.mktemp("bomb") / "bomb.qdpx")


def test_a_zip_bomb_is_refused_before_it_is_inflated(bomb):
    assert bomb.stat().st_size < 2 * 1024 * 1024
    out = run_limited(f"""
        from cimstats.integrate import read_qdpx
        result = read_qdpx({str(bomb)!r}).summary()
    """)
    assert out["error"] == "QDAImportError", out
    assert "project.qde" in out["message"] and "bomb.qdpx" in out["message"]
    assert "max_member_bytes" in out["message"]
    assert out["seconds"] < 10


def test_the_compression_ratio_is_capped_when_the_size_cap_is_raised(bomb):
    with pytest.raises(QDAImportError, match="max_compression_ratio"):
        read_qdpx(bomb, max_member_bytes=2**40)


def test_caps_are_keyword_arguments_with_documented_defaults(tmp_path):
    p = qdpx(tmp_path / "ok.qdpx", qde("<Description>" + "x" * 5000 + "</Description>"))
    assert read_qdpx(p).name == "hostile"
    with pytest.raises(QDAImportError, match="max_member_bytes"):
        read_qdpx(p, max_member_bytes=1000)
    doc = read_qdpx.__doc__
    assert f"default {qdpx_module.MAX_MEMBER_BYTES}" in doc and f"default {qdpx_module.MAX_COMPRESSION_RATIO}" in doc
    with pytest.raises(QDAImportError, match="max_compression_ratio"):
        read_qdpx(p, max_compression_ratio=0)


def test_a_source_text_member_is_capped_too(tmp_path):
    body = ('<Sources><TextSource guid="s1" name="Big" plainTextPath="internal://big.txt"/></Sources>')
    p = qdpx(tmp_path / "src.qdpx", qde(body), {"Sources/big.txt": b"a" * 4096})
    assert read_qdpx(p).source_text("Big") == "a" * 4096
    with pytest.raises(QDAImportError, match="big.txt"):
        read_qdpx(p, max_member_bytes=3000)


def test_the_streamed_reader_stops_at_the_cap_whatever_the_header_says():
    reader = qdpx_module._CappedReader(io.BytesIO(b"x" * 5000), 4096, 200, None, "Member 'm' of 'a.qdpx'")
    with pytest.raises(QDAImportError, match="more than 4096 bytes"):
        reader.read_all()
    big = 3 * 1024 * 1024
    reader = qdpx_module._CappedReader(io.BytesIO(b" " * big), 2**40, 200, 1000, "Member 'm' of 'a.qdpx'")
    with pytest.raises(QDAImportError, match="200 times"):
        reader.read_all()


def test_a_bare_project_file_above_the_cap_is_refused(tmp_path):
    p = tmp_path / "project.qde"
    p.write_text(qde("<Description>" + "x" * 5000 + "</Description>"), encoding="utf-8")
    assert read_qdpx(p).name == "hostile"
    with pytest.raises(QDAImportError, match="max_member_bytes"):
        read_qdpx(p, max_member_bytes=1000)


@pytest.mark.parametrize("start", ["abc", "1.5", None, "9" * 30, "1e3", "٣"])
def test_a_selection_position_that_is_not_a_whole_number_is_named(tmp_path, start):
    p = qdpx(tmp_path / "pos.qdpx", text_project(start))
    with pytest.raises(QDAImportError) as e:
        read_qdpx(p)
    msg = str(e.value)
    assert "pos.qdpx" in msg and "PlainTextSelection" in msg and "sel1" in msg and "startPosition" in msg
    assert len(msg.splitlines()) == 1


def test_a_valid_and_an_outside_position_still_read(tmp_path):
    proj = read_qdpx(qdpx(tmp_path / "ok.qdpx", text_project("0", "5")))
    assert proj.codings["text"].tolist() == ["Hello"]
    proj = read_qdpx(qdpx(tmp_path / "out.qdpx", text_project("3", "999999999999999")))
    assert [i.code for i in proj.report] == ["Q040"]


def test_a_code_without_guid_is_named(tmp_path):
    p = qdpx(tmp_path / "guid.qdpx", qde('<CodeBook><Codes><Code name="Trust"/></Codes></CodeBook>'))
    with pytest.raises(QDAImportError, match=r"guid\.qdpx.*<Code> 'Trust' \(line 1\) has no guid"):
        read_qdpx(p)


def test_codes_nested_1500_deep_are_read_without_recursion(tmp_path):
    proj = read_qdpx(qdpx(tmp_path / "deep.qdpx", deep_codes_project(1500)))
    assert len(proj.codes) == 1500
    assert proj.codes["level"].tolist() == list(range(1500))
    assert proj.codes["parent"].iloc[1:].tolist() == proj.codes["guid"].iloc[:-1].tolist()


def test_codes_deeper_than_the_xml_parser_allows_are_a_clean_error(tmp_path):
    with pytest.raises(QDAImportError, match="not well-formed XML"):
        read_qdpx(qdpx(tmp_path / "deeper.qdpx", deep_codes_project(20_000)))


def _member(**kw):
    m = deflated(qde().encode())
    m.update(name="project.qde", **kw)
    return m


@pytest.mark.parametrize("what, member, pattern", [
    ("corrupt deflate", dict(data=b"\xff" * 64), "cannot be decompressed"),
    ("unsupported method", dict(method=98), "compression method"),
    ("encrypted", dict(flags=1), "encrypted"),
    ("wrong checksum", dict(crc=12345), "cannot be decompressed"),
])
def test_a_broken_member_is_named(tmp_path, what, member, pattern):
    p = raw_zip(tmp_path / "broken.qdpx", [_member(**member)])
    with pytest.raises(QDAImportError, match=pattern) as e:
        read_qdpx(p)
    assert "'project.qde'" in str(e.value) and "broken.qdpx" in str(e.value)


def test_a_broken_source_member_is_named(tmp_path):
    body = '<Sources><TextSource guid="s1" name="Doc" plainTextPath="internal://doc.txt"/></Sources>'
    good = {"name": "project.qde", **deflated(qde(body).encode())}
    bad = {"name": "Sources/doc.txt", **deflated(b"some text"), "data": b"\x00" * 9}
    with pytest.raises(QDAImportError, match="'Sources/doc.txt'"):
        read_qdpx(raw_zip(tmp_path / "src.qdpx", [good, bad]))


def test_a_folder_or_device_is_not_a_project(tmp_path):
    with pytest.raises(QDAImportError, match="is a folder"):
        read_qdpx(tmp_path)
    import os

    if os.path.exists("/dev/zero"):  # an endless file: read in a child process with capped memory
        out = run_limited("""
            from cimstats.integrate import read_qdpx
            result = read_qdpx("/dev/zero").summary()
        """)
        assert out["error"] == "QDAImportError" and "not a regular file" in out["message"], out


def test_the_archive_is_closed_after_an_error(tmp_path, monkeypatch):
    closed = []
    real = zipfile.ZipFile.close

    def close(self):
        closed.append(True)
        return real(self)

    monkeypatch.setattr(zipfile.ZipFile, "close", close)
    with pytest.raises(QDAImportError):
        read_qdpx(qdpx(tmp_path / "guid.qdpx", qde('<CodeBook><Codes><Code name="x"/></Codes></CodeBook>')))
    assert closed
