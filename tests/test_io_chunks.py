"""iter_survey: chunk by chunk gives the same survey as reading the whole file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import LABELLED, need

from cimstats.errors import SurveyReadError
from cimstats.io import Survey, VariableMeta, iter_survey, read_survey, write_survey


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    rng = np.random.default_rng(7)
    n = 1003
    raw = pd.DataFrame({
        "id": np.arange(n, dtype=float),
        "q1": rng.choice([1.0, 2.0, 3.0, 9.0, 99.0, np.nan], size=n),
        "town": rng.choice(["Leeds", "Oslo", "Sofia"], size=n).astype(object),
    })
    meta = {"q1": VariableMeta("q1", value_labels={1: "low", 2: "mid", 3: "high", 9: "don't know"},
                               missing_codes=(9, 99), measure="ordinal"),
            "town": VariableMeta("town", storage="string")}
    s = Survey.from_raw(raw, meta)
    folder = tmp_path_factory.mktemp("chunks")
    paths = {}
    for fmt in ("sav", "dta", "csv", "parquet"):
        paths[fmt] = folder / f"big.{fmt}"
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write_survey(s, paths[fmt])
    return s, paths


@pytest.mark.parametrize("fmt", ["sav", "dta", "csv", "parquet"])
def test_chunks_add_up_to_the_whole_file(generated, fmt):
    s, paths = generated
    whole = read_survey(paths[fmt])
    chunks = list(iter_survey(paths[fmt], chunksize=300))
    assert [len(c) for c in chunks] == [300, 300, 300, 103]
    data = pd.concat([c.data for c in chunks])
    pd.testing.assert_frame_equal(data, whole.data, check_dtype=False)
    missing = pd.concat([c.missing.reindex(columns=whole.missing.columns) for c in chunks])
    assert missing["q1"].tolist() == whole.missing["q1"].tolist()
    assert all(c.meta["q1"] == whole.meta["q1"] for c in chunks)


def test_chunks_of_a_shared_file():
    path = need(LABELLED / "pyreadstat" / "basic_sample_large.sav")
    whole = read_survey(path)
    chunks = list(iter_survey(path, chunksize=100))
    assert sum(len(c) for c in chunks) == len(whole)
    pd.testing.assert_frame_equal(pd.concat([c.data for c in chunks]), whole.data)


def test_bad_chunksize(generated):
    _, paths = generated
    with pytest.raises(SurveyReadError, match="chunksize"):
        next(iter_survey(paths["sav"], chunksize=0))
