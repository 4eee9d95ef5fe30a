"""Import of REFI-QDA project exchange files (.qdpx).

A .qdpx file, which NVivo, ATLAS.ti, MAXQDA and other qualitative-analysis
programs export, is a zip archive holding ``project.qde`` (XML in the
namespace ``urn:QDA-XML:project:1.0``) and a ``Sources/`` folder with the
documents. :func:`read_qdpx` turns it into a :class:`QDAProject` of tables.

Character positions
-------------------
Text selections address the plain-text source by ``startPosition`` and
``endPosition``. The standard counts characters (Unicode code points), but
some programs (NVivo among them) count UTF-16 code units, which differ as
soon as a source holds characters outside the Basic Multilingual Plane
(emoji, some scripts). ``positions="auto"`` (the default) uses code points
when they are the same for every selection, and otherwise chooses, per
source, the unit under which the selections start and end on word
boundaries more often; the unit used is reported in ``sources.position_unit``.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cimstats.errors import QDAImportError, Report
from cimstats.render.notebook import notebook_html

__all__ = ["QDAProject", "read_qdpx", "NAMESPACE"]

NAMESPACE = "urn:QDA-XML:project:1.0"
_NS = {"q": NAMESPACE}
_SOURCE_TAGS = ("TextSource", "PDFSource", "PictureSource", "AudioSource", "VideoSource")
_SELECTION_TAGS = {
    "PlainTextSelection": "text",
    "PDFSelection": "pdf",
    "PictureSelection": "picture",
    "AudioSelection": "audio",
    "VideoSelection": "video",
}

CODE_COLUMNS = ["guid", "name", "parent", "parent_name", "path", "level", "description", "is_codable", "color"]
CODING_COLUMNS = [
    "coding_guid", "selection_guid", "code_guid", "code_name", "code_path",
    "source_guid", "source", "kind", "start", "end", "text", "user_guid", "user", "created",
]
SOURCE_COLUMNS = ["guid", "name", "kind", "plain_text_path", "rich_text_path", "path",
                  "n_characters", "position_unit", "user_guid", "created"]
USER_COLUMNS = ["guid", "name", "id"]
CASE_COLUMNS = ["guid", "name", "description", "n_sources"]
CASE_SOURCE_COLUMNS = ["case_guid", "case", "source_guid", "source"]
CASE_VARIABLE_COLUMNS = ["case_guid", "case", "variable_guid", "variable", "type", "value"]
VARIABLE_COLUMNS = ["guid", "name", "type", "description"]


def _frame(rows: list[dict], columns: list[str]):
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class QDAProject:
    """A qualitative-analysis project read from a REFI-QDA exchange file.

    Attributes
    ----------
    name, origin : str
        Project name and the program that wrote it.
    codes : pandas.DataFrame
        One row per code: ``guid, name, parent`` (guid of the parent code or
        missing for top-level codes), ``parent_name, path`` (names from the
        top joined by ``" > "``), ``level`` (0 for top level),
        ``description, is_codable, color``.
    codings : pandas.DataFrame
        One row per coding of a selection with a code: ``coding_guid,
        selection_guid, code_guid, code_name, code_path, source_guid,
        source, kind`` (``text``, ``pdf``, ``picture``, ``audio``, ``video``,
        or ``source`` for whole-source codings), ``start, end`` (character
        positions for text), ``text`` (the selected text recovered from the
        plain-text source), ``user_guid, user`` (who coded it, falling back to
        who created the selection), ``created``.
    sources : pandas.DataFrame
        One row per source: ``guid, name, kind, plain_text_path,
        rich_text_path, path, n_characters, position_unit, user_guid, created``.
    users : pandas.DataFrame
        ``guid, name, id``.
    cases : pandas.DataFrame
        ``guid, name, description, n_sources``.
    case_sources : pandas.DataFrame
        Which sources belong to which case: ``case_guid, case, source_guid, source``.
    case_variables : pandas.DataFrame
        Long table ``case_guid, case, variable_guid, variable, type, value``.
    variables : pandas.DataFrame
        ``guid, name, type, description``.
    report : cimstats.errors.Report
        Problems found while reading (missing source files, selections
        outside their source, references to unknown codes); nothing is
        dropped silently.
    """

    name: str
    origin: str
    codes: Any
    codings: Any
    sources: Any
    users: Any
    cases: Any
    case_sources: Any
    case_variables: Any
    variables: Any
    report: Report = field(default_factory=Report)
    _texts: dict = field(default_factory=dict, repr=False, compare=False)

    def source_text(self, source: str) -> str:
        """The plain text of a source, by guid or name."""
        if source in self._texts:
            return self._texts[source]
        hit = self.sources.loc[self.sources["name"] == source, "guid"]
        if len(hit) == 1 and hit.iloc[0] in self._texts:
            return self._texts[hit.iloc[0]]
        raise QDAImportError(
            f"Source {source!r} has no plain text in project '{self.name}'; "
            f"known text sources: {', '.join(map(str, self.sources['name'].tolist())) or 'none'}."
        )

    def case_variable_table(self):
        """Case variables as a wide table, one row per case (``case`` column plus one column per variable)."""
        cv = self.case_variables
        if cv.empty:
            import pandas as pd

            return pd.DataFrame({"case_guid": self.cases["guid"], "case": self.cases["name"]})
        wide = cv.pivot_table(index=["case_guid", "case"], columns="variable", values="value", aggfunc="first")
        wide.columns.name = None
        return wide.reset_index()

    def codings_by_case(self):
        """Codings joined to cases through the sources each case holds.

        Returns the ``codings`` columns plus ``case_guid`` and ``case``; a
        coding in a source that belongs to no case has missing case columns.
        """
        cs = self.case_sources[["case_guid", "case", "source_guid"]]
        return self.codings.merge(cs, on="source_guid", how="left")

    def summary(self) -> str:
        """A short text description of the project."""
        return (
            f"QDA project '{self.name}' from {self.origin or 'unknown software'}: "
            f"{len(self.codes)} codes, {len(self.sources)} sources, {len(self.codings)} codings, "
            f"{len(self.users)} users, {len(self.cases)} cases"
            + (f"; {len(self.report)} problem(s) noted" if len(self.report) else "")
            + "."
        )

    def __repr__(self) -> str:  # pragma: no cover - display only
        return f"<QDAProject {self.summary()}>"

    def _repr_html_(self) -> str:
        return notebook_html("QDA project", lines=[self.summary()])


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _desc(el) -> str | None:
    d = el.find("q:Description", _NS)
    if d is None or d.text is None:
        return None
    return d.text


def _resolve_member(names: set[str], uri: str | None, base_path: str | None) -> str | None:
    """Map an ``internal://`` or ``relative://`` path to a zip member name, when present."""
    if not uri:
        return None
    if uri.startswith("internal://"):
        rel = uri[len("internal://"):]
        for cand in (f"sources/{rel}", f"Sources/{rel}", rel):
            if cand in names:
                return cand
        lowered = {n.lower(): n for n in names}
        return lowered.get(f"sources/{rel}".lower())
    if uri.startswith("relative://"):
        rel = uri[len("relative://"):]
        cand = posixpath.normpath(posixpath.join("sources", rel))
        lowered = {n.lower(): n for n in names}
        return lowered.get(cand.lower())
    return None


def _decode(raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    return raw.decode("utf-8")


#: default largest uncompressed size of one archive member (project.qde or a source text), in bytes
MAX_MEMBER_BYTES = 256 * 1024 * 1024
#: default largest ratio of a member's uncompressed to compressed size (checked above 1 MiB uncompressed)
MAX_COMPRESSION_RATIO = 200
_RATIO_FLOOR = 1024 * 1024
_CHUNK = 1024 * 1024
#: largest number of digits a selection position may have (positions are character counts)
_MAX_POSITION_DIGITS = 15


class _CappedReader:
    """A binary file object that stops with :class:`QDAImportError` once more than ``cap`` bytes came out."""

    def __init__(self, fh, cap: int, ratio_cap: float, packed: int | None, what: str):
        self.fh, self.cap, self.ratio_cap, self.packed, self.what = fh, cap, ratio_cap, packed, what
        self.n = 0

    def read(self, size: int = -1) -> bytes:
        size = _CHUNK if size is None or size < 0 else min(size, _CHUNK)
        block = self.fh.read(size)
        self.n += len(block)
        if self.n > self.cap:
            raise QDAImportError(
                f"{self.what} holds more than {self.cap} bytes uncompressed (the limit `max_member_bytes`); "
                "if the project really is that large, pass a larger `max_member_bytes=`."
            )
        if self.packed is not None and self.n > _RATIO_FLOOR and self.n > self.ratio_cap * max(self.packed, 1):
            raise QDAImportError(
                f"{self.what} expands more than {self.ratio_cap:g} times its compressed size (the limit "
                "`max_compression_ratio`), as a zip bomb does; if the archive is genuine, pass a larger "
                "`max_compression_ratio=`."
            )
        return block

    def read_all(self) -> bytes:
        parts = []
        while True:
            block = self.read(_CHUNK)
            if not block:
                return b"".join(parts)
            parts.append(block)


def _open_member(zf, info, p: Path, cap: int, ratio_cap: float) -> _CappedReader:
    """Open one archive member for reading, refusing sizes and ratios above the caps before any byte is inflated."""
    what = f"Member '{info.filename}' of '{p}'"
    if info.file_size > cap:
        raise QDAImportError(
            f"{what} declares {info.file_size} bytes uncompressed, more than the limit `max_member_bytes`={cap}; "
            "if the project really is that large, pass a larger `max_member_bytes=`."
        )
    if info.file_size > _RATIO_FLOOR and info.file_size > ratio_cap * max(info.compress_size, 1):
        raise QDAImportError(
            f"{what} declares {info.file_size} bytes packed into {info.compress_size}, more than "
            f"`max_compression_ratio`={ratio_cap:g} times smaller, as a zip bomb does; if the archive is genuine, "
            "pass a larger `max_compression_ratio=`."
        )
    if info.flag_bits & 0x1:
        raise QDAImportError(f"{what} is encrypted; export the project again without a password.")
    try:
        fh = zf.open(info)
    except NotImplementedError as exc:
        raise QDAImportError(
            f"{what} uses a compression method this reader does not support ({exc}); re-export the project "
            "(REFI-QDA archives use deflate)."
        ) from None
    except (RuntimeError, zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise QDAImportError(f"{what} cannot be opened ({exc}); the archive is corrupt or encrypted; re-export it.") from None
    return _CappedReader(fh, cap, ratio_cap, info.compress_size if info.compress_type != zipfile.ZIP_STORED else None,
                         what)


def _read_member(zf, info, p: Path, cap: int, ratio_cap: float) -> bytes:
    reader = _open_member(zf, info, p, cap, ratio_cap)
    try:
        return reader.read_all()
    except QDAImportError:
        raise
    except Exception as exc:  # zlib.error, BadZipFile (CRC), EOFError, NotImplementedError...
        raise _member_error(exc, p, info.filename) from None
    finally:
        reader.fh.close()


def _parse_member(etree, parser, zf, info, p: Path, cap: int, ratio_cap: float):
    """Parse ``project.qde`` straight from the archive, in pieces, within the caps."""
    reader = _open_member(zf, info, p, cap, ratio_cap)
    try:
        return etree.parse(reader, parser).getroot()
    except QDAImportError:
        raise
    except etree.XMLSyntaxError as exc:
        raise QDAImportError(f"project.qde in '{p}' is not well-formed XML ({exc}); re-export the project.") from None
    except Exception as exc:  # zlib.error, BadZipFile (CRC), EOFError...
        raise _member_error(exc, p, info.filename) from None
    finally:
        reader.fh.close()


def _member_error(exc: BaseException, p: Path, member: str) -> QDAImportError:
    return QDAImportError(
        f"Member '{member}' of '{p}' cannot be decompressed ({type(exc).__name__}: {exc}); the archive is "
        "corrupt or truncated; re-export the project as .qdpx."
    )


def _position(sel, attr: str, fname: str) -> int:
    """A selection's position attribute as a whole number, or a :class:`QDAImportError` naming the selection."""
    raw = sel.get(attr)
    text = (raw or "").strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isdigit() or not digits.isascii() or len(digits) > _MAX_POSITION_DIGITS:
        what = "has no" if raw is None else f"has {attr}={raw[:40]!r}, which is not a whole number of at most " \
                                             f"{_MAX_POSITION_DIGITS} digits, as its"
        raise QDAImportError(
            f"project.qde in '{fname}': <{_local(sel.tag)}> guid={sel.get('guid')!r} (line {sel.sourceline}) "
            f"{what} {attr if raw is None else 'value'}; expected a character or time position such as "
            f"{attr}=\"120\"; correct or re-export the project."
        )
    return int(text)


def _slice(text: str, start: int, end: int, unit: str, b16: bytes | None = None) -> str:
    if unit == "codepoint":
        return text[start:end]
    b = b16 if b16 is not None else text.encode("utf-16-le", "surrogatepass")
    return b[2 * start : 2 * end].decode("utf-16-le", "replace")


_ASTRAL = __import__("re").compile("[\U00010000-\U0010FFFF]")


def _boundary_score(text: str, spans: list[tuple[int, int]], unit: str) -> int:
    if unit == "codepoint":
        get = lambda a, b: text[a:b]  # noqa: E731
    else:
        b16 = text.encode("utf-16-le", "surrogatepass")
        get = lambda a, b: b16[2 * a : 2 * b].decode("utf-16-le", "replace")  # noqa: E731
    score = 0
    for s, e in spans:
        before = get(s - 1, s) if s > 0 else ""
        after = get(e, e + 1)
        score += (not before.isalnum()) + (not after.isalnum())
    return score


def read_qdpx(path, *, positions: str = "auto", validate: bool = False,
              max_member_bytes: int = MAX_MEMBER_BYTES,
              max_compression_ratio: float = MAX_COMPRESSION_RATIO) -> QDAProject:
    """Read a REFI-QDA project exchange file (.qdpx) into tables.

    Parameters
    ----------
    path : str or path-like
        The .qdpx file (a zip archive with ``project.qde`` and ``Sources/``).
        A bare ``project.qde`` XML file is also accepted (no source texts).
    positions : {"auto", "codepoint", "utf16"}
        How selection positions count characters (see the module notes).
    validate : bool
        Also validate ``project.qde`` against the REFI-QDA XML schema when
        one is given as ``validate=<path to .xsd>``; ``True`` is not
        accepted because the schema is not shipped.
    max_member_bytes : int, default 268435456 (256 MiB)
        Largest uncompressed size of ``project.qde`` or of one source text
        (a bare ``project.qde`` file included). Larger members are refused
        before they are read; members are read in pieces, so a member that
        claims to be small but is not is stopped at the limit too.
    max_compression_ratio : float, default 200
        Largest ratio of a member's uncompressed to compressed size, checked
        for members above 1 MiB uncompressed; text and XML rarely compress
        more than 20 to 1, so a larger ratio is the mark of a "zip bomb".

    Returns
    -------
    QDAProject
        With ``codes``, ``codings``, ``sources``, ``users``, ``cases``,
        ``case_sources``, ``case_variables``, ``variables`` tables and a
        ``report`` of problems found.

    Raises
    ------
    cimstats.errors.QDAImportError
        When the file is missing, a folder or not a regular file, not a zip
        archive, has no ``project.qde``, has a member above the size or
        compression limits, encrypted, corrupt or compressed with an
        unsupported method, or the XML is not a REFI-QDA project (a ``<Code>``
        without ``guid``, a selection position that is not a whole number).

    Examples
    --------
    >>> import io, zipfile, tempfile, pathlib
    >>> qde = ('<Project xmlns="urn:QDA-XML:project:1.0" name="p"><CodeBook><Codes>'
    ...        '<Code guid="a" name="Trust" isCodable="true"><Code guid="b" name="Timing" isCodable="true"/></Code>'
    ...        '</Codes></CodeBook></Project>')
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "x.qdpx"
    ...     with zipfile.ZipFile(p, "w") as z:
    ...         z.writestr("project.qde", qde)
    ...     proj = read_qdpx(p)
    >>> proj.codes[["name", "path"]].values.tolist()
    [['Trust', 'Trust'], ['Timing', 'Trust > Timing']]
    >>> proj.codes["parent_name"].isna().tolist()  # a top-level code has no parent
    [True, False]
    """
    from lxml import etree

    if positions not in ("auto", "codepoint", "utf16"):
        raise QDAImportError(f"`positions={positions!r}` is not known; expected 'auto', 'codepoint' or 'utf16'.")
    if not isinstance(path, (str, bytes)) and not hasattr(path, "__fspath__"):
        raise QDAImportError(f"`path` must be a file path to a .qdpx file; got {type(path).__name__}.")
    p = Path(path)
    if not p.exists():
        raise QDAImportError(f"The QDA project file '{p}' does not exist; check the path.")
    if p.is_dir():
        raise QDAImportError(f"'{p}' is a folder, not a QDA project file; give the path of the .qdpx file "
                             "(or of a project.qde file) inside it.")
    if not p.is_file():
        raise QDAImportError(f"'{p}' is not a regular file (it is a device, pipe or socket); give the path of a "
                             ".qdpx file saved on disk.")
    for name, v in (("max_member_bytes", max_member_bytes), ("max_compression_ratio", max_compression_ratio)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise QDAImportError(f"`{name}`={v!r} is not a positive number; pass e.g. {name}="
                                 f"{MAX_MEMBER_BYTES if name == 'max_member_bytes' else MAX_COMPRESSION_RATIO}.")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    names: set[str] = set()
    infos: dict = {}
    zf = None
    try:
        is_zip = zipfile.is_zipfile(p)
    except OSError as exc:
        raise QDAImportError(f"'{p}' cannot be opened ({exc.strerror}); check its permissions.") from None
    if is_zip:
        try:
            zf = zipfile.ZipFile(p)
            infos = {i.filename: i for i in zf.infolist()}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise QDAImportError(
                f"'{p}' could not be read as a zip archive ({exc}); the file is corrupt or truncated; re-export it."
            ) from None
        names = set(infos)
        qde_name = next((n for n in sorted(names) if n.lower() == "project.qde"), None)
        if qde_name is None:
            qde_candidates = [n for n in names if n.lower().endswith(".qde")]
            qde_name = qde_candidates[0] if len(qde_candidates) == 1 else None
        if qde_name is None:
            zf.close()
            raise QDAImportError(
                f"'{p}' is a zip archive without 'project.qde'; expected a REFI-QDA export "
                "(.qdpx) holding project.qde and Sources/; re-export the project from your QDA software."
            )
        try:
            root = _parse_member(etree, parser, zf, infos[qde_name], p, max_member_bytes, max_compression_ratio)
        except BaseException:
            zf.close()
            raise
    else:
        size = p.stat().st_size
        if size > max_member_bytes:
            raise QDAImportError(
                f"'{p}' holds {size} bytes, more than the limit `max_member_bytes`={max_member_bytes}; if the "
                "project really is that large, pass a larger `max_member_bytes=`."
            )
        with open(p, "rb") as fh:
            start = fh.read(4096)
        if start[:2] == b"PK":
            raise QDAImportError(
                f"'{p}' looks like a zip archive but is corrupt or truncated; re-export the project as .qdpx."
            )
        if not start.lstrip()[:1] == b"<" and not start.startswith(b"\xef\xbb\xbf"):
            raise QDAImportError(
                f"'{p}' is neither a zip archive (.qdpx) nor a project.qde XML file; expected a REFI-QDA export."
            )
        try:
            with open(p, "rb") as fh:
                root = etree.parse(_CappedReader(fh, max_member_bytes, max_compression_ratio, None, f"'{p}'"),
                                   parser).getroot()
        except etree.XMLSyntaxError as exc:
            raise QDAImportError(
                f"project.qde in '{p}' is not well-formed XML ({exc}); re-export the project."
            ) from None
    try:
        return _project(root, p, zf, infos, names, positions, validate, max_member_bytes, max_compression_ratio)
    finally:
        if zf is not None:
            zf.close()


def _project(root, p: Path, zf, infos: dict, names: set, positions: str, validate, max_member_bytes: int,
             max_compression_ratio: float) -> QDAProject:
    from lxml import etree

    if _local(root.tag) != "Project" or not root.tag.startswith("{" + NAMESPACE + "}"):
        raise QDAImportError(
            f"project.qde in '{p}' has root element {root.tag!r}; expected <Project> in namespace {NAMESPACE}."
        )
    if validate:
        if validate is True:
            raise QDAImportError("`validate=True` needs the schema: pass `validate=<path to Project.xsd>`.")
        schema = etree.XMLSchema(etree.parse(str(validate)))
        if not schema.validate(root):
            err = schema.error_log.last_error
            raise QDAImportError(
                f"project.qde in '{p}' does not follow the REFI-QDA schema (line {err.line}: {err.message}); "
                "import without `validate=` to read it anyway."
            )

    report = Report()
    fname = p.name
    users = []
    user_names: dict[str, str] = {}
    for u in root.findall("q:Users/q:User", _NS):
        users.append({"guid": u.get("guid"), "name": u.get("name"), "id": u.get("id")})
        user_names[u.get("guid")] = u.get("name")

    # ---------------------------------------------------------------- codes
    codes: list[dict] = []
    code_info: dict[str, dict] = {}

    codes_el = root.find("q:CodeBook/q:Codes", _NS)
    # depth-first, children in document order, without recursion (code trees may be deep)
    stack: list = [(c, None, 0) for c in reversed(codes_el.findall("q:Code", _NS))] if codes_el is not None else []
    while stack:
        c, parent, level = stack.pop()
        if not c.get("guid"):
            raise QDAImportError(
                f"project.qde in '{fname}': <Code> {c.get('name')!r} (line {c.sourceline}) has no guid attribute, "
                "so codings cannot refer to it; give it a guid or re-export the project."
            )
        row = {
            "guid": c.get("guid"),
            "name": c.get("name"),
            "parent": parent["guid"] if parent else None,
            "parent_name": parent["name"] if parent else None,
            "path": (parent["path"] + " > " if parent else "") + (c.get("name") or ""),
            "level": level,
            "description": _desc(c),
            "is_codable": (c.get("isCodable", "true").lower() in ("true", "1")),
            "color": c.get("color"),
        }
        if row["guid"] in code_info:
            report.add("Q010", f"Code guid {row['guid']} appears twice; both rows are kept.",
                       severity="warning", file=fname)
        codes.append(row)
        code_info[row["guid"]] = row
        stack.extend((child, row, level + 1) for child in reversed(c.findall("q:Code", _NS)))

    # -------------------------------------------------------------- sources
    sources: list[dict] = []
    codings: list[dict] = []
    texts: dict[str, str] = {}

    def add_coding(coding_el, sel_guid, src, kind, start, end, text, sel_user, sel_created):
        ref = coding_el.find("q:CodeRef", _NS)
        code_guid = ref.get("targetGUID") if ref is not None else None
        info = code_info.get(code_guid)
        if info is None:
            report.add("Q020", f"Coding {coding_el.get('guid')} refers to code {code_guid!r}, which is not in the codebook; "
                       "its code name is left missing.", severity="warning", file=fname)
        user_guid = coding_el.get("creatingUser") or sel_user
        codings.append({
            "coding_guid": coding_el.get("guid"),
            "selection_guid": sel_guid,
            "code_guid": code_guid,
            "code_name": info["name"] if info else None,
            "code_path": info["path"] if info else None,
            "source_guid": src["guid"],
            "source": src["name"],
            "kind": kind,
            "start": start,
            "end": end,
            "text": text,
            "user_guid": user_guid,
            "user": user_names.get(user_guid),
            "created": coding_el.get("creationDateTime") or sel_created,
        })

    src_parent = root.find("q:Sources", _NS)
    for s in (list(src_parent) if src_parent is not None else []):
        if not isinstance(s.tag, str):
            continue
        tag = _local(s.tag)
        if tag not in _SOURCE_TAGS:
            continue
        kind = tag[: -len("Source")].lower()
        row = {
            "guid": s.get("guid"),
            "name": s.get("name"),
            "kind": kind,
            "plain_text_path": s.get("plainTextPath"),
            "rich_text_path": s.get("richTextPath"),
            "path": s.get("path"),
            "n_characters": None,
            "position_unit": None,
            "user_guid": s.get("creatingUser"),
            "created": s.get("creationDateTime"),
        }
        # plain text: inline content, or the .txt member; PDF sources may carry a text Representation
        text_el = s if tag == "TextSource" else s.find("q:Representation", _NS)
        text = None
        if text_el is not None:
            inline = text_el.find("q:PlainTextContent", _NS)
            if inline is not None and inline.text is not None:
                text = inline.text
            else:
                member = _resolve_member(names, text_el.get("plainTextPath"), root.get("basePath"))
                if member is not None and zf is not None:
                    try:
                        text = _decode(_read_member(zf, infos[member], p, max_member_bytes, max_compression_ratio))
                    except UnicodeDecodeError:
                        report.add("Q030", f"Source '{row['name']}' ({member}) is not UTF-8/UTF-16 text; "
                                   "its selection texts are left missing.", file=fname)
                elif text_el.get("plainTextPath"):
                    report.add("Q031", f"Source '{row['name']}' names plain text {text_el.get('plainTextPath')!r}, "
                               "which is not inside the archive; its selection texts are left missing.",
                               severity="warning", file=fname)
        sels = []
        sel_parent = text_el if (tag == "PDFSource" and text_el is not None) else s
        for sel in list(s) + ([] if sel_parent is s else list(sel_parent)):
            if not isinstance(sel.tag, str):
                continue
            st = _local(sel.tag)
            if st in _SELECTION_TAGS:
                sels.append((sel, _SELECTION_TAGS[st]))
        if text is not None:
            texts[row["guid"]] = text
            row["n_characters"] = len(text)
            spans = [(_position(sel, "startPosition", fname), _position(sel, "endPosition", fname))
                     for sel, k in sels if k == "text"]
            has_astral = _ASTRAL.search(text) is not None
            if positions == "auto":
                if not has_astral or not spans:
                    unit = "codepoint"
                else:
                    unit = "utf16" if _boundary_score(text, spans, "utf16") > _boundary_score(text, spans, "codepoint") else "codepoint"
            else:
                unit = positions
            row["position_unit"] = unit
            b16 = text.encode("utf-16-le", "surrogatepass") if unit == "utf16" else None
            limit = len(text) if unit == "codepoint" else len(b16) // 2
        sources.append(row)
        for sel, k in sels:
            sel_user, sel_created = sel.get("creatingUser"), sel.get("creationDateTime")
            start = end = None
            sel_text = None
            if k == "text":
                start, end = _position(sel, "startPosition", fname), _position(sel, "endPosition", fname)
                if text is not None:
                    if not (0 <= start <= end <= limit):
                        report.add("Q040", f"Selection {sel.get('guid')} in source '{row['name']}' spans {start}-{end}, "
                                   f"outside the {limit} characters of the source; its text is left missing.",
                                   file=fname)
                    else:
                        sel_text = _slice(text, start, end, row["position_unit"], b16)
            elif k in ("audio", "video"):
                start, end = _position(sel, "begin", fname), _position(sel, "end", fname)
            cods = sel.findall("q:Coding", _NS)
            if not cods:
                report.add("Q050", f"Selection {sel.get('guid')} in source '{row['name']}' has no coding; it is not "
                           "listed in `codings`.", severity="info", file=fname)
            for cod in cods:
                add_coding(cod, sel.get("guid"), row, k, start, end, sel_text, sel_user, sel_created)
        # whole-source codings
        for cod in s.findall("q:Coding", _NS):
            add_coding(cod, None, row, "source", 0 if text is not None else None,
                       len(text) if text is not None else None, None, s.get("creatingUser"), s.get("creationDateTime"))

    # ---------------------------------------------------- variables and cases
    variables = []
    var_info: dict[str, dict] = {}
    for v in root.findall("q:Variables/q:Variable", _NS):
        r = {"guid": v.get("guid"), "name": v.get("name"), "type": v.get("typeOfVariable"), "description": _desc(v)}
        variables.append(r)
        var_info[r["guid"]] = r
    src_names = {r["guid"]: r["name"] for r in sources}
    cases, case_sources, case_vars = [], [], []
    for c in root.findall("q:Cases/q:Case", _NS):
        refs = c.findall("q:SourceRef", _NS)
        cases.append({"guid": c.get("guid"), "name": c.get("name"), "description": _desc(c), "n_sources": len(refs)})
        for r in refs:
            sg = r.get("targetGUID")
            case_sources.append({"case_guid": c.get("guid"), "case": c.get("name"), "source_guid": sg,
                                 "source": src_names.get(sg)})
        for vv in c.findall("q:VariableValue", _NS):
            vref = vv.find("q:VariableRef", _NS)
            vg = vref.get("targetGUID") if vref is not None else None
            info = var_info.get(vg, {})
            value = None
            vtype = info.get("type")
            for child in vv:
                if not isinstance(child.tag, str):
                    continue
                ln = _local(child.tag)
                if ln.endswith("Value") and ln != "VariableValue":
                    value = _convert(child.text, ln)
                    vtype = vtype or ln[: -len("Value")]
            case_vars.append({"case_guid": c.get("guid"), "case": c.get("name"), "variable_guid": vg,
                              "variable": info.get("name"), "type": vtype, "value": value})

    import pandas as pd

    codes_df = _frame(codes, CODE_COLUMNS)
    codes_df["level"] = codes_df["level"].astype("int64")
    codings_df = _frame(codings, CODING_COLUMNS)
    for col in ("start", "end"):
        codings_df[col] = pd.array(codings_df[col].tolist(), dtype="Int64")
    sources_df = _frame(sources, SOURCE_COLUMNS)
    sources_df["n_characters"] = pd.array(sources_df["n_characters"].tolist(), dtype="Int64")
    return QDAProject(
        name=root.get("name") or "",
        origin=root.get("origin") or "",
        codes=codes_df,
        codings=codings_df,
        sources=sources_df,
        users=_frame(users, USER_COLUMNS),
        cases=_frame(cases, CASE_COLUMNS),
        case_sources=_frame(case_sources, CASE_SOURCE_COLUMNS),
        case_variables=_frame(case_vars, CASE_VARIABLE_COLUMNS),
        variables=_frame(variables, VARIABLE_COLUMNS),
        report=report,
        _texts=texts,
    )


def _convert(text: str | None, kind: str):
    if text is None:
        return None
    try:
        if kind == "IntegerValue":
            return int(text)
        if kind == "FloatValue":
            return float(text)
        if kind == "BooleanValue":
            return text.strip().lower() in ("true", "1")
    except ValueError:
        return text
    return text
