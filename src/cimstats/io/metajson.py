"""Survey metadata as JSON, for formats without native labels (Parquet, CSV).

cimstats writes the metadata of every variable (label, value labels in code
order, measure, declared missing codes and ranges, storage, display format)
into Parquet key-value metadata under the key ``cimstats`` and, for CSV, into
a sidecar file ``<name>.csv.meta.json``; reading such a file restores them.
Codes keep their type (numbers stay numbers, ``".a"`` stays text) because value
labels are stored as ``[code, label]`` pairs rather than as a JSON object.

Examples
--------
>>> from cimstats.io.survey import VariableMeta
>>> m = VariableMeta("q1", label="Pain", value_labels={1: "None", 2: "Some", ".a": "Refused"},
...                  missing_codes=(".a",), measure="ordinal")
>>> meta_from_json(meta_to_json({"q1": m}, None))[0]["q1"] == m
True
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

from cimstats.errors import MetadataError
from cimstats.io.survey import SourceInfo, VariableMeta

SCHEMA_VERSION = 1
KEY = "cimstats"


def _code(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _uncode(v: Any, numeric_context: bool) -> Any:
    if numeric_context and v in ("inf", "-inf"):
        return float(v)
    return v


def meta_to_json(
    meta: Mapping[str, VariableMeta],
    source: SourceInfo | None,
    *,
    companions: Mapping[str, str] | None = None,
) -> str:
    """Serialise variable metadata (and the file label/encoding) to a JSON string."""
    variables = {}
    for name, m in meta.items():
        variables[name] = {
            "label": m.label,
            "value_labels": [[_code(k), v] for k, v in m.value_labels.items()],
            "measure": m.measure,
            "missing_codes": [_code(c) for c in m.missing_codes],
            "missing_ranges": [[_code(lo), _code(hi)] for lo, hi in m.missing_ranges],
            "storage": m.storage,
            "display_format": m.display_format,
            "width": m.width,
        }
    doc = {
        "schema": f"cimstats-survey-metadata/{SCHEMA_VERSION}",
        "file_label": source.file_label if source else None,
        "source_format": source.format if source else None,
        "encoding": source.encoding if source else None,
        "variables": variables,
        "missing_code_columns": dict(companions or {}),
    }
    return json.dumps(doc, ensure_ascii=False, allow_nan=False)


def meta_from_json(text: str | bytes, *, where: str = "the metadata") -> tuple[dict[str, VariableMeta], dict]:
    """Parse :func:`meta_to_json` output: ``(meta per variable, file-level fields)``.

    Raises
    ------
    MetadataError
        When ``text`` is not JSON, not a cimstats metadata document, or nests
        arrays or objects too deeply to parse.
    """
    try:
        doc = json.loads(text)
        if not str(doc.get("schema", "")).startswith("cimstats-survey-metadata/"):
            raise ValueError("not a cimstats metadata document")
        meta = {}
        for name, v in doc["variables"].items():
            storage = v.get("storage") or "numeric"
            num = storage == "numeric"
            meta[name] = VariableMeta(
                name,
                label=v.get("label"),
                value_labels={_uncode(k, num): lab for k, lab in v.get("value_labels", [])},
                measure=v.get("measure"),
                missing_codes=tuple(_uncode(c, num) for c in v.get("missing_codes", [])),
                missing_ranges=tuple((_uncode(lo, num), _uncode(hi, num)) for lo, hi in v.get("missing_ranges", [])),
                storage=storage,
                display_format=v.get("display_format"),
                width=v.get("width"),
            )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MetadataError(
            f"{where} is not valid cimstats survey metadata ({str(exc)[:160]}); remove it or rewrite the file with "
            "write_survey."
        ) from None
    except RecursionError:
        raise MetadataError(
            f"{where} nests JSON arrays or objects too deeply to be cimstats survey metadata (which needs four "
            "levels); remove it or rewrite the file with write_survey."
        ) from None
    extra = {k: doc.get(k) for k in ("file_label", "source_format", "encoding", "missing_code_columns")}
    return meta, extra
