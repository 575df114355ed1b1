"""Processes the pipeline starts (eflomal, the ``--workers`` pool) end when the pipeline ends.

A run killed with SIGKILL runs no handler, so its children would live on: an orphaned eflomal
keeps a core busy for minutes or hours and writes into a directory a later run is using.  On
Linux each child asks the kernel to kill it when its parent dies (``prctl(PR_SET_PDEATHSIG,
SIGKILL)``, set in the child before it runs anything), which holds for every way the parent can
end; :func:`run` also kills its child when the parent stops on an exception (Ctrl-C included).
Elsewhere only the latter applies.
"""
import ctypes
import functools
import os
import signal
import subprocess
import sys

_PR_SET_PDEATHSIG = 1


def _prctl():
    """libc's ``prctl``, looked up in the parent (a forked child then only calls it), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(parent_pid, prctl):
    """In a child: ask the kernel to SIGKILL it when its parent dies; if the parent
    ``parent_pid`` is already gone (it died before the request was made), exit at once."""
    if prctl is None:
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def child_setup(initializer=None, initargs=()):
    """A :class:`multiprocessing.Pool` initializer (fork context) that ties each worker to this
    process, then runs ``initializer(*initargs)``."""
    return functools.partial(_init_worker, os.getpid(), _prctl(), initializer, initargs)


def _init_worker(parent_pid, prctl, initializer, initargs):
    die_with_parent(parent_pid, prctl)
    if initializer:
        initializer(*initargs)


def run(args, cwd=None, env=None, pass_fds=()):
    """Run ``args`` to its end (as :func:`subprocess.call`), tied to this process: killed when
    this process dies or stops on an exception; ``pass_fds`` stay open in the child.  Returns
    the exit status."""
    parent, prctl = os.getpid(), _prctl()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, pass_fds=pass_fds,
                            preexec_fn=lambda: die_with_parent(parent, prctl))
    try:
        return proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
