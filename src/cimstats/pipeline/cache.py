"""Content hashes, the step cache and atomic publication of a step's outputs.

A step's *input hash* is the SHA-256 of its id, the package version, the plan
sections it reads (canonical JSON) and the content hash of every input file.
After a step has run, its record ``OUT/.cache/<step>.json`` keeps that hash and
the content hash of every file it published. A later run trusts the step (and
skips it) only when the input hash is the same and every recorded output is
still there with the recorded content.

A step writes into a fresh staging folder under ``OUT/.cache/``; only when it
has finished are its files moved into ``OUT`` and then its record written.
Every file is checked to land inside ``OUT`` without passing through a
symbolic link (:func:`cimstats._files.inside`) before anything is moved. A
run that stops part-way (an error, Ctrl-C, a power cut) leaves either no new
files or files without a record, which the next run does not trust and
replaces.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from cimstats._files import atomic_write, inside
from cimstats.errors import PlanError

__all__ = ["file_hash", "files_hash", "input_hash", "StepCache"]

CACHE_DIR = ".cache"
_CHUNK = 1 << 20


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def files_hash(paths: Mapping[str, str | os.PathLike]) -> dict[str, str]:
    """Name -> content hash for each existing file (missing files get ``"missing"``)."""
    out = {}
    for name, p in sorted(paths.items()):
        out[name] = file_hash(p) if Path(p).is_file() else "missing"
    return out


def input_hash(step_id: str, version: str, sections: Mapping, files: Mapping[str, str]) -> str:
    """The hash a step's cache record is keyed by."""
    doc = {"step": step_id, "version": version, "sections": sections, "files": dict(sorted(files.items()))}
    text = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _walk(root: Path) -> list[str]:
    out = []
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            out.append(Path(dirpath, n).relative_to(root).as_posix())
    return sorted(out)


class StepCache:
    """The cache folder of one output folder: step records, staging folders, publication."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.dir = self.out / CACHE_DIR

    def ensure(self) -> None:
        inside(self.out, f"{CACHE_DIR}/record.json", error=PlanError)  # refuses a .cache that is a link
        self.dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ records
    def record_path(self, step_id: str) -> Path:
        return self.dir / f"{step_id}.json"

    def load(self, step_id: str) -> dict | None:
        p = self.record_path(step_id)
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # an unreadable record is not trusted

    def is_fresh(self, step_id: str, ihash: str) -> bool:
        """True when the step's record has this input hash and every output it lists is intact."""
        rec = self.load(step_id)
        if not rec or rec.get("input_hash") != ihash:
            return False
        for rel, h in rec.get("outputs", {}).items():
            p = self.out / rel
            if not p.is_file() or file_hash(p) != h:
                return False
        return True

    def forget(self, step_id: str) -> None:
        self.record_path(step_id).unlink(missing_ok=True)

    # ------------------------------------------------------------------ staging and publication
    def stage(self, step_id: str) -> Path:
        """A new empty staging folder for one step (inside the cache, so renames stay on one file system)."""
        self.ensure()
        return Path(tempfile.mkdtemp(prefix=f"stage-{step_id}-", dir=self.dir))

    def discard(self, stage: Path) -> None:
        shutil.rmtree(stage, ignore_errors=True)

    def publish(self, step_id: str, stage: Path, ihash: str, info: Mapping | None = None) -> dict[str, str]:
        """Move a finished step's files into place, remove its stale outputs, then write its record.

        Returns output path (relative to OUT) -> content hash.
        """
        old = (self.load(step_id) or {}).get("outputs", {})
        self.forget(step_id)  # from here until the new record is written, nothing of this step is trusted
        rels = _walk(stage)
        outputs = {}
        for rel in rels:
            outputs[rel] = file_hash(stage / rel)
        dests = {rel: inside(self.out, rel, error=PlanError) for rel in rels}  # all checked before any is moved
        for rel in rels:
            dests[rel].parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, dests[rel])
        for rel in old:
            if rel not in outputs:
                try:
                    stale = inside(self.out, rel, error=PlanError)
                except PlanError:
                    continue  # a record naming a file outside OUT is not trusted: nothing outside is removed
                stale.unlink(missing_ok=True)
                _prune_empty(stale, self.out)
        self.discard(stage)
        rec = {"step": step_id, "input_hash": ihash, "outputs": outputs, "info": dict(info or {})}
        atomic_write(self.record_path(step_id), json.dumps(rec, indent=1, sort_keys=True, default=str))
        return outputs

    def clear_stages(self) -> None:
        """Remove staging folders left by a run that was killed (never trusted, never published)."""
        if self.dir.is_dir():
            for p in self.dir.glob("stage-*"):
                shutil.rmtree(p, ignore_errors=True)


def _prune_empty(path: Path, root: Path) -> None:
    d = path.parent
    while d != root and d.is_dir() and not any(d.iterdir()):
        d.rmdir()
        d = d.parent


def hash_tree(paths: Iterable[Path], root: Path | None = None) -> dict[str, str]:
    """Content hashes of files (a folder contributes every file under it), keyed by path relative to ``root``."""
    out = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for rel in _walk(p):
                key = (p / rel).relative_to(root).as_posix() if root else (p / rel).as_posix()
                out[key] = file_hash(p / rel)
        elif p.is_file():
            key = p.relative_to(root).as_posix() if root else p.as_posix()
            out[key] = file_hash(p)
        else:
            key = p.relative_to(root).as_posix() if root else p.as_posix()
            out[key] = "missing"
    return out
