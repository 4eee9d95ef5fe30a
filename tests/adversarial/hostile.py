"""Builders of hostile inputs for the adversarial tests, each made inside the test from a small valid file.

Nothing here is read from disk ahead of time: every lying header, zip bomb,
deep nesting or binary plan is written into the test's temporary folder.
``run_limited`` runs a risky call in a child Python whose address space is
capped, so a regression fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
#: address-space cap of the child process running a risky call (bytes)
MEMORY_CAP = 2_500_000_000
NS = "urn:QDA-XML:project:1.0"


# -- running a risky call with bounded memory and time ------------------------------------------------
def run_limited(code: str, *, timeout: float = 120) -> dict:
    """Run ``code`` in a child Python capped at :data:`MEMORY_CAP` bytes; it must set ``result``.

    Returns ``{"error": class name or None, "message": str, "seconds": float, "result": ...}``.
    """
    prog = textwrap.dedent("""
        import json, resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
        out = {{"error": None, "message": "", "result": None}}
        t0 = time.perf_counter()
        try:
        {body}
            out["result"] = result
        except BaseException as exc:
            out["error"], out["message"] = type(exc).__name__, str(exc)
        out["seconds"] = time.perf_counter() - t0
        print(json.dumps(out, default=str))
    """).format(cap=MEMORY_CAP, body=textwrap.indent(textwrap.dedent(code), "    "))
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=timeout, env=env)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"the child process printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(lines[-1])


# -- survey files whose header lies about the number of rows ------------------------------------------
def lying_survey(folder: Path, fmt: str, rows: int) -> Path:
    """A 3-row file of format ``fmt`` (sav, zsav, dta) whose header declares ``rows`` rows."""
    import pyreadstat

    df = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    path = folder / f"lying.{fmt}"
    if fmt == "dta":
        pyreadstat.write_dta(df, str(path))
        b = bytearray(path.read_bytes())
        i = b.index(b"<N>") + 3  # release 118/119: 8-byte little-endian N after <N>
        assert b.startswith(b"<stata_dta>") and b"<byteorder>LSF" in b[:80]
        b[i:i + 8] = struct.pack("<q", rows)
    else:
        pyreadstat.write_sav(df, str(path), compress=(fmt == "zsav"))
        b = bytearray(path.read_bytes())
        assert int.from_bytes(b[64:68], "little") in (2, 3)  # little-endian layout code
        b[80:84] = struct.pack("<i", rows)  # ncases, after the 60-byte product name and four int32 fields
    path.write_bytes(bytes(b))
    return path


# -- zip archives built byte by byte ------------------------------------------------------------------
def raw_zip(path: Path, members: list[dict]) -> Path:
    """Write a zip archive from members given as ``{name, data (as stored), size, crc, method, flags}``."""
    out = bytearray()
    central = bytearray()
    for m in members:
        name = m["name"].encode()
        offset = len(out)
        fields = dict(method=m.get("method", 8), flags=m.get("flags", 0), crc=m["crc"],
                      csize=len(m["data"]), size=m["size"])
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, fields["flags"], fields["method"], 0, 0x21,
                           fields["crc"], fields["csize"], fields["size"], len(name), 0) + name + m["data"]
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, fields["flags"], fields["method"], 0, 0x21,
                               fields["crc"], fields["csize"], fields["size"], len(name), 0, 0, 0, 0, 0,
                               offset) + name
    cd_offset = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), cd_offset, 0)
    path.write_bytes(bytes(out))
    return path


def deflated(data: bytes) -> dict:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return {"data": c.compress(data) + c.flush(), "size": len(data), "crc": zlib.crc32(data), "method": 8}


def qde(body: str = "", **attrs) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f'<?xml version="1.0" encoding="utf-8"?><Project xmlns="{NS}" name="hostile"{extra}>{body}</Project>'


def qdpx(path: Path, project: str, members: dict[str, bytes] | None = None) -> Path:
    """A well-formed .qdpx holding ``project`` as project.qde (plus ``members``: name -> content)."""
    entries = [{"name": "project.qde", **deflated(project.encode())}]
    entries += [{"name": n, **deflated(d)} for n, d in (members or {}).items()]
    return raw_zip(path, entries)


def bomb_qdpx(path: Path, gigabytes: int = 1) -> Path:
    """A ~1 MB .qdpx whose project.qde inflates to ``gigabytes`` GiB of spaces inside a <Description>.

    The deflate stream is one compressed MiB repeated (a full flush makes the pieces independent), so the
    archive is built in well under a second; its CRC is that of the real content.
    """
    head = f'<Project xmlns="{NS}" name="bomb"><Description>'.encode()
    tail = b"</Description></Project>"
    chunk = b" " * (1 << 20)
    n = 1024 * gigabytes
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    piece = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    last = c.compress(tail) + c.flush()
    crc = zlib.crc32(head)
    for _ in range(n):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(tail, crc)
    data = first + piece * n + last
    return raw_zip(path, [{"name": "project.qde", "data": data, "size": len(head) + n * len(chunk) + len(tail),
                           "crc": crc, "method": 8}])


def text_project(start: str | None, end: str | None = "5") -> str:
    """A project with one inline text source and one coded selection with the given positions."""
    pos = "".join(f' {k}="{v}"' for k, v in (("startPosition", start), ("endPosition", end)) if v is not None)
    return qde(
        '<CodeBook><Codes><Code guid="c1" name="Trust" isCodable="true"/></Codes></CodeBook>'
        '<Sources><TextSource guid="s1" name="Interview 1"><PlainTextContent>Hello world</PlainTextContent>'
        f'<PlainTextSelection guid="sel1"{pos}><Coding guid="k1"><CodeRef targetGUID="c1"/></Coding>'
        '</PlainTextSelection></TextSource></Sources>'
    )


def deep_codes_project(depth: int) -> str:
    opening = "".join(f'<Code guid="c{i}" name="level {i}" isCodable="true">' for i in range(depth))
    return qde(f"<CodeBook><Codes>{opening}{'</Code>' * depth}</Codes></CodeBook>")


# -- dictionaries and plans ---------------------------------------------------------------------------
def dictionary(folder: Path, *, target_type: str = "decimal", rule: str = "direct", source: str = "v",
               arguments: str = "") -> Path:
    """A one-study, one-target dictionary (with its data file ``en.csv``) whose only mapping is the one given."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"study": "EN", "file": "en.csv"}]).to_csv(folder / "studies.csv", index=False)
    pd.DataFrame([{"name": "y", "type": target_type}]).to_csv(folder / "variables.csv", index=False)
    pd.DataFrame(columns=["variable", "code", "label"]).to_csv(folder / "categories.csv", index=False)
    pd.DataFrame([{"target": "y", "study": "EN", "rule": rule, "source": source, "arguments": arguments}]).to_csv(
        folder / "mappings.csv", index=False)
    pd.DataFrame({"v": [1.0, 2.0, 3.0], "w": [4.0, 5.0, 6.0]}).to_csv(folder / "en.csv", index=False)
    return folder


def plan_dict(**sections) -> dict:
    """A plan that reads the shipped demo dictionary from an already harmonised (absent) dataset, plus ``sections``."""
    return {"sources": {"demo": True, "dictionary": "demo"}, **sections}
