"""Shared set-up of the ``grafusion-*`` commands."""
import logging
import sys
import warnings

from ..errors import GraFusionError, one_line


def setup_logging():
    """INFO lines of our own, fairseq's batching chatter and loader warnings silenced."""
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
                        level=logging.INFO, stream=sys.stderr, force=True)
    for name in ("fairseq", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")  # fairseq's loader on CPU


def run(prog, main, argv=None):
    """``main(argv)``; a :class:`GraFusionError` becomes one line on stderr and exit status 1."""
    try:
        main(argv)
    except GraFusionError as e:
        sys.stderr.write(f"{prog}: error: {one_line(e)}\n")
        sys.exit(1)
