"""Writing files atomically: the one helper every writer of the project uses.

A file is written under a temporary name next to its final path and moved into place with
:func:`os.replace` only once it is complete, so an interrupted or failed run never leaves a
half-written file, and a reader never sees one.  :class:`AtomicFiles` does it for a group of
files that appear together (the files of a binary split, :class:`~.data.PairWriter`),
:func:`atomic_path` for one.  A write that fails (a full disk: ``ENOSPC``) is one line naming the
file, and its temporary files are removed.  :func:`read_text` is the one way text input is read
(UTF-8, a byte-order mark skipped), :func:`resolved` the one way a command makes the paths it is
given absolute.  No torch import: the pipeline's readers and writers use it.
"""
import contextlib
import errno
import json
import os
import uuid

from .errors import GraFusionError


def resolved(path):
    """``path`` made absolute against the current directory; None (an option not given) and
    ``"-"`` (a side to translate) stay as they are.  Every command resolves the paths it is
    given once, where it reads its options: what a path names can then not change later (a
    child process started in another directory, a relative path stored and read elsewhere)."""
    return path if path in (None, "-") else os.path.abspath(path)


def _cannot_write(path, error):
    return GraFusionError(f"cannot write {path}: {error.strerror or error}")


def read_text(path, what="file"):
    """The text of ``path`` as every command reads its input: UTF-8, a leading byte-order mark
    skipped (Windows editors write one); one line naming ``path`` if it cannot be read."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except FileNotFoundError:
        raise GraFusionError(f"{what} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GraFusionError(f"{what} {path}: cannot read ({e})") from None


def is_write_error(error, tmp):
    """Whether an OSError came from writing ``tmp`` (no file named, or that file; a full disk or
    quota whatever file it names)."""
    return isinstance(error, OSError) and (error.filename in (None, tmp) or tmp in (
        getattr(error, "filename2", None),) or error.errno in (errno.ENOSPC, errno.EDQUOT))


class AtomicFiles:
    """Files that appear together or not at all: :meth:`path` gives each a temporary name,
    :meth:`commit` renames them all (in the order they were named: name a manifest last),
    :meth:`abort` removes them."""

    def __init__(self):
        self.pending = []  # (temporary, final)

    def path(self, final):
        tmp = f"{final}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            os.makedirs(os.path.dirname(os.path.abspath(final)), exist_ok=True)
        except OSError as e:
            raise _cannot_write(final, e) from None
        self.pending.append((tmp, final))
        return tmp

    def commit(self):
        for tmp, final in self.pending:
            os.replace(tmp, final)
        self.pending = []

    def abort(self):
        for tmp, _ in self.pending:
            if os.path.exists(tmp):
                os.remove(tmp)
        self.pending = []


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it to ``path`` only on success (the
    temporary file is removed on any error).  A directory that cannot be made or a rename that
    fails is a one-line :class:`GraFusionError` naming ``path``."""
    files = AtomicFiles()
    tmp = files.path(path)
    try:
        yield tmp
        files.commit()
    except BaseException as e:
        files.abort()
        if is_write_error(e, tmp):  # a full disk, a quota: one line, nothing left behind
            raise _cannot_write(path, e) from None
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
