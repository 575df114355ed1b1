"""One exception type for every user-facing error of the plugin and its commands.

A :class:`GraFusionError` carries a one-line message that names what is wrong (the file, the line
or example id, the option).  Both ways out of a process print it the same way, as
``PROG: error: <message>`` (:func:`error_line`): the ``grafusion-*`` commands exit through
``fairseq_grafusion.console.run``, and ``fairseq-train --user-dir fairseq_grafusion`` gets an
exception hook (installed when fairseq loads the plugin, :func:`.hooks.install`) that prints such
errors instead of a traceback.  An :class:`OSError` that no code of ours caught (a file that
cannot be read or written) is one line too, naming the file (:func:`os_error_line`): always in
the ``grafusion-*`` commands, and in a fairseq command once it runs one of the plugin's tasks.
Every other exception keeps Python's usual traceback; ``GRAFUSION_TRACEBACK=1`` shows it for a
GraFusionError too.

This module imports nothing heavy: the pipeline's readers use it without torch.
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


def error_line(prog, exc):
    """``PROG: error: <message>``, the one line every way out prints."""
    return f"{prog}: error: {one_line(exc)}\n"


def os_error_line(exc):
    """An :class:`OSError` no code of ours turned into a GraFusionError, as one line naming the
    file(s) it was about: ``cannot write /out/x: No space left on device (errno 28)``."""
    files = " -> ".join(str(f) for f in (exc.filename, getattr(exc, "filename2", None)) if f)
    reason = exc.strerror or str(exc) or type(exc).__name__
    code = f" (errno {exc.errno})" if exc.errno else ""
    return f"{files}: {reason}{code}" if files else f"{reason}{code}"


_ONE_LINE = [GraFusionError]


def one_line_for(exc_type):
    """Print ``exc_type`` (an OSError, in a process that runs the plugin's task) as one line too."""
    if exc_type not in _ONE_LINE:
        _ONE_LINE.append(exc_type)


def wants_traceback():
    return bool(os.environ.get("GRAFUSION_TRACEBACK"))


def _excepthook(exc_type, exc, tb, _previous=sys.excepthook):
    if issubclass(exc_type, tuple(_ONE_LINE)) and not wants_traceback():
        message = exc if isinstance(exc, GraFusionError) else os_error_line(exc)
        sys.stderr.write(error_line("fairseq-grafusion", message))
        sys.stderr.flush()
        return
    _previous(exc_type, exc, tb)


def install_excepthook():
    """Print :class:`GraFusionError` as one line (set GRAFUSION_TRACEBACK=1 for the traceback)."""
    if getattr(sys.excepthook, "__name__", "") != "_excepthook":
        sys.excepthook = _excepthook
