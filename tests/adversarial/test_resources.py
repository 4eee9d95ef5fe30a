"""Survey files that lie about their size, and paths that are not files, fail fast with one SurveyReadError."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from cimstats.errors import SurveyReadError
from cimstats.io import iter_survey, read_survey

from hostile import lying_survey, run_limited


@pytest.mark.parametrize("fmt, rows", [("sav", 10**9), ("zsav", 10**9), ("dta", 2**31 - 1)])
def test_a_header_declaring_more_rows_than_the_file_holds_is_refused(tmp_path, fmt, rows):
    path = lying_survey(tmp_path, fmt, rows)
    size = path.stat().st_size
    assert size < 2000
    out = run_limited(f"""
        from cimstats.io import read_survey
        result = len(read_survey({str(path)!r}))
    """)
    assert out["error"] == "SurveyReadError", out
    msg = out["message"]
    assert f"'{path.name}' declares {rows} rows" in msg and f"only {size} bytes" in msg, msg
    assert "allocate" not in msg and len(msg.splitlines()) == 1
    assert out["seconds"] < 10
    # reading in chunks allocates little, so it runs here; it must not trust the header either
    with pytest.raises(SurveyReadError, match=f"declares {rows} rows"):
        list(iter_survey(path))


@pytest.mark.parametrize("fmt, kw", [("sav", {}), ("sav", {"row_compress": True}), ("zsav", {"compress": True}),
                                     ("dta", {})])
def test_honest_files_of_every_compression_still_read(tmp_path, fmt, kw):
    import pyreadstat

    df = pd.DataFrame({"x": [float(i % 7) for i in range(20_000)], "s": ["a"] * 20_000})
    path = tmp_path / f"honest.{fmt}"
    (pyreadstat.write_dta if fmt == "dta" else pyreadstat.write_sav)(df, str(path), **kw)
    assert read_survey(path).data["x"].tolist() == df["x"].tolist()
    assert sum(len(c) for c in iter_survey(path, chunksize=7000)) == len(df)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero on this system")
def test_a_device_is_not_a_regular_file():
    with pytest.raises(SurveyReadError, match=r"'/dev/zero' is not a regular file") as e:
        read_survey("/dev/zero", format="sav")
    assert "empty" not in str(e.value) and "does not exist" not in str(e.value)
    with pytest.raises(SurveyReadError, match="not a regular file"):
        read_survey("/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "wave1.sav"
    os.mkfifo(fifo)
    # opening a pipe with no writer blocks, so the call runs in a child process with a time limit
    out = run_limited(f"""
        from cimstats.io import read_survey
        result = len(read_survey({str(fifo)!r}))
    """, timeout=60)
    assert out["error"] == "SurveyReadError" and "not a regular file" in out["message"], out
