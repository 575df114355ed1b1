"""One run per output directory, and what a killed run left there removed by the next one.

:func:`hold` takes an exclusive, non-blocking ``flock`` on ``OUT/.grafusion-preprocess.lock``
(``.grafusion-preprocess.shard{i}of{K}.lock`` for a shard: shards of one data set run side by
side, each writing only its own files) and writes the holder into it: process id, host, start
time and command.  A second run on the same directory fails at once with one line naming that
holder.  The kernel drops the lock when the holder's process ends, however it ends (a killed run
leaves no stale lock; the file stays and the next holder overwrites it).

Holding the lock, :func:`hold` removes the temporary files and directories a killed run left
under ``OUT`` (names ending in ``.tmp-XXXXXXXX``: :class:`fairseq_grafusion.files.AtomicFiles`,
eflomal's working directory), those of the same shard only.  ``flock`` needs a local file system
or one that supports it (NFS v4 does).
"""
import contextlib
import datetime
import fcntl
import os
import re
import shutil
import socket
import sys

from fairseq_grafusion.errors import GraFusionError

from .runner import log

_TEMPORARY = re.compile(r"\.tmp-[0-9a-f]{8}$")


def lock_path(out, suffix=""):
    return os.path.join(out, f".grafusion-preprocess{suffix}.lock")


def holder_line(command):
    """What the lock file says about its holder."""
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"pid {os.getpid()} on {socket.gethostname()}, started {started}: {command}"


@contextlib.contextmanager
def hold(out, suffix="", command=None):
    """Hold ``out`` for this run (see the module docstring); removes stale temporary files."""
    try:
        os.makedirs(out, exist_ok=True)
        fd = os.open(lock_path(out, suffix), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise GraFusionError(f"--out {out}: cannot create its lock file ({e.strerror or e})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "holder not yet written"
            raise GraFusionError(f"--out {out} is in use by another grafusion-preprocess ({holder}); "
                                 "wait for it to finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, (holder_line(command or " ".join(sys.argv)) + "\n").encode("utf-8"))
        removed = remove_temporary(out, suffix)
        if removed:
            log(f"removed {removed} temporary files of an interrupted run under {out}")
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race with a waiting run)


def _ours(name, suffix):
    """Whether a temporary file belongs to this run's shard (``suffix``) or to the whole data."""
    return suffix in name if suffix else ".shard" not in name


def remove_temporary(out, suffix=""):
    """Remove ``*.tmp-XXXXXXXX`` files and directories of this shard under ``out``; their count."""
    removed = 0
    for directory, dirs, files in os.walk(out):
        for name in list(dirs):
            if _TEMPORARY.search(name) and _ours(name, suffix):
                shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
                dirs.remove(name)
                removed += 1
        for name in files:
            if _TEMPORARY.search(name) and _ours(name, suffix):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(directory, name))
                removed += 1
    return removed
