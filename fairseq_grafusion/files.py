"""Writing files atomically: the one helper every writer of the project uses.

A file is written under a temporary name next to its final path and moved into place with
:func:`os.replace` only once it is complete, so an interrupted or failed run never leaves a
half-written file, and a reader never sees one.  (:class:`~.data.PairWriter` does the same for
the many files of a binary split.)  No torch import: the pipeline's readers and writers use it.
"""
import contextlib
import json
import os
import uuid

from .errors import GraFusionError


def _cannot_write(path, error):
    return GraFusionError(f"cannot write {path}: {error.strerror or error}")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it to ``path`` only on success (the
    temporary file is removed on any error).  A directory that cannot be made or a rename that
    fails is a one-line :class:`GraFusionError` naming ``path``."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    except OSError as e:
        raise _cannot_write(path, e) from None
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path, obj, indent=1):
    """``obj`` as UTF-8 JSON (non-ASCII kept) and a newline, atomically."""
    try:
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=indent)
            f.write("\n")
    except OSError as e:
        raise _cannot_write(path, e) from None


def write_lines(path, lines):
    """One line per string, atomically."""
    try:
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
    except OSError as e:
        raise _cannot_write(path, e) from None
