"""Writing files so that a reader never sees half of one.

Every output cimstats writes goes to a temporary file in the destination folder
and is renamed into place only when complete, so a failure or an interruption
leaves the previous file (or nothing) behind. Outputs get the permissions a
plain ``open(path, "w")`` would give them.

When a writer runs inside :func:`writing_into` (the pipeline runs every step
that way), every path it writes through :func:`atomic_write_with` is first
checked with :func:`inside`: it must lie inside that folder, reached without
following a symbolic link. A path that would land outside is refused with one
sentence.

Examples
--------
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "table.csv")
>>> _ = atomic_write(path, "a,b\\n1,2\\n")
>>> open(path).read()
'a,b\\n1,2\\n'
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterator

from cimstats.errors import CimstatsError

__all__ = ["temp_beside", "publish", "atomic_write_with", "atomic_write", "inside", "writing_into"]


#: the folder every write must stay inside (set by :func:`writing_into`; ``None``: no restriction)
_ROOT: contextvars.ContextVar[tuple[Path, type] | None] = contextvars.ContextVar("cimstats_output_root", default=None)


def inside(root: str | os.PathLike, path: str | os.PathLike, *,
           error: type[CimstatsError] = CimstatsError) -> Path:
    """``path`` (relative paths are taken relative to ``root``) after checking that writing it stays in ``root``.

    The path is made absolute and normalised (``..`` removed), then it must
    lie inside ``root``, and no folder between ``root`` and the file may be a
    symbolic link (a link inside an output folder could send the file
    anywhere). ``root`` itself may be a link.

    Raises
    ------
    error
        The path lies outside ``root`` or passes through a symbolic link.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> inside(root, "models/m1_terms.csv").name
    'm1_terms.csv'
    >>> try:
    ...     inside(root, "models/../../ESCAPED_terms.csv")
    ... except CimstatsError as exc:
    ...     print("refused")
    refused
    """
    base = Path(os.path.abspath(root))
    p = Path(path)
    full = Path(os.path.normpath(p if p.is_absolute() else base / p))
    if full == base or base not in full.parents:
        raise error(f"The output '{path}' would be written to '{full}', outside the output folder '{base}'; "
                    "ids and names that become file names must not climb out of it (no '..', no absolute paths).")
    rel = full.relative_to(base)
    step = base
    for part in rel.parts[:-1]:
        step = step / part
        if step.is_symlink():
            raise error(f"The output folder '{base}' holds '{step.relative_to(base).as_posix()}', a symbolic link "
                        f"(to '{os.readlink(step)}'), and cimstats does not write through links inside an output "
                        "folder; remove the link or choose another output folder.")
    return full


@contextlib.contextmanager
def writing_into(root: str | os.PathLike, *, error: type[CimstatsError] = CimstatsError) -> Iterator[Path]:
    """Within this block, every :func:`atomic_write_with` must write inside ``root`` (see :func:`inside`)."""
    token = _ROOT.set((Path(os.path.abspath(root)), error))
    try:
        yield Path(root)
    finally:
        _ROOT.reset(token)


def _checked(path: str | os.PathLike) -> Path:
    held = _ROOT.get()
    if held is None:
        return Path(path)
    root, error = held
    return inside(root, os.path.abspath(path), error=error)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def temp_beside(path: str | os.PathLike, *, error: type[CimstatsError] = CimstatsError) -> Path:
    """A new empty temporary file in the folder of ``path`` (same file system, so renaming is atomic)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise error(f"Cannot write '{path}': the folder '{folder}' does not exist; create it first or choose another path.")
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.stem}.", suffix=f".part{path.suffix}")
    os.close(fd)
    return Path(name)


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Give a finished temporary file the usual permissions and rename it to ``path``."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
    return Path(path)


def atomic_write_with(path: str | os.PathLike, writer: Callable[[str], None], *,
                      error: type[CimstatsError] = CimstatsError) -> Path:
    """Call ``writer(tmp)`` on a temporary file beside ``path``, then put it in place.

    On any error the temporary file is removed and ``path`` is left as it was.
    Inside :func:`writing_into`, ``path`` is checked with :func:`inside` first.
    """
    path = _checked(path)
    tmp = temp_beside(path, error=error)
    try:
        writer(str(tmp))
        return publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str, *, encoding: str = "utf-8",
                 error: type[CimstatsError] = CimstatsError) -> Path:
    """Write ``data`` (bytes, or text encoded with ``encoding``) to ``path`` atomically."""
    payload = data.encode(encoding) if isinstance(data, str) else data

    def _write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_write_with(path, _write, error=error)


_CORE_DATE = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:(?:created|modified)>)")


def reproducible_office_file(data: bytes) -> bytes:
    """The same Word or Excel package with fixed dates, so the same table gives the same bytes on every run.

    Office files record when they were written (document properties and each
    zip member's time stamp); both are set to 1980-01-01 here.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            body = zin.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _CORE_DATE.sub(rb"\g<1>1980-01-01T00:00:00Z\g<2>", body)
            member = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = info.compress_type
            member.external_attr = info.external_attr
            zout.writestr(member, body)
    return out.getvalue()


def make_office_file_reproducible(path: str | os.PathLike) -> None:
    """Rewrite a just-written Word or Excel file in place with fixed dates (see :func:`reproducible_office_file`)."""
    p = Path(path)
    p.write_bytes(reproducible_office_file(p.read_bytes()))
