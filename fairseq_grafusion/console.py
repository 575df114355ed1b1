"""What every command shares (the ``grafusion-*`` commands of :mod:`.cli` and
``grafusion-preprocess``): the one way out (:func:`run`) and the log format.  Commands share
through this module, never through one another."""
import logging
import sys
import warnings

from .errors import GraFusionError, error_line, os_error_line, wants_traceback


def setup_logging():
    """INFO lines of our own, fairseq's batching chatter and loader warnings silenced."""
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
                        level=logging.INFO, stream=sys.stderr, force=True)
    for name in ("fairseq", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")  # fairseq's loader on CPU


def run(prog, main, argv=None):
    """``main(argv)``, the one way out of every command: a :class:`GraFusionError`, or an
    :class:`OSError` no code of ours caught (named by its file), becomes one line on stderr and
    exit status 1 (``GRAFUSION_TRACEBACK=1`` keeps the traceback), Ctrl-C exit status 130."""
    try:
        return main(argv)
    except (GraFusionError, OSError) as e:
        if wants_traceback():
            raise
        sys.stderr.write(error_line(prog, e if isinstance(e, GraFusionError) else os_error_line(e)))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        sys.exit(130)
