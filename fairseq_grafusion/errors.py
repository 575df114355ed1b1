"""One exception type for every user-facing error of the plugin and its commands.

A :class:`GraFusionError` carries a one-line message that names what is wrong (the file, the line
or example id, the option).  Importing :mod:`fairseq_grafusion` installs an exception hook that
prints such errors as ``fairseq-grafusion: error: <message>`` instead of a traceback, so that
``fairseq-train --user-dir fairseq_grafusion`` and the ``grafusion-*`` commands fail with one
readable line.  Every other exception keeps Python's usual traceback.
"""
import os
import sys


class GraFusionError(ValueError):
    """A user-facing error: bad input, a missing file, an option that does not fit."""


def one_line(exc):
    """The message of a GraFusionError, also when a DataLoader worker re-raised it (torch then
    wraps the worker's whole traceback into the message; its last line is the original)."""
    message = str(exc).strip()
    if "Original Traceback" in message:
        message = message.splitlines()[-1].split("GraFusionError: ", 1)[-1]
    return message


def _excepthook(exc_type, exc, tb, _previous=sys.excepthook):
    if issubclass(exc_type, GraFusionError) and not os.environ.get("GRAFUSION_TRACEBACK"):
        sys.stderr.write(f"fairseq-grafusion: error: {one_line(exc)}\n")
        sys.stderr.flush()
        return
    _previous(exc_type, exc, tb)


def install_excepthook():
    """Print :class:`GraFusionError` as one line (set GRAFUSION_TRACEBACK=1 for the traceback)."""
    if getattr(sys.excepthook, "__name__", "") != "_excepthook":
        sys.excepthook = _excepthook
