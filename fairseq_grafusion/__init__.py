"""fairseq-grafusion: GraFusion-MRC as a fairseq plugin (``--user-dir fairseq_grafusion``).

Importing the package registers the model ``grafusion`` (architectures ``grafusion_base``,
``grafusion_large``, ``grafusion_tiny``), the task and criterion ``xmrc_span``, lets torch >= 2.6
load fairseq checkpoints (safely: :mod:`.checkpoint_compat`), makes checkpoint copies atomic and
refuses a fresh start over a best checkpoint (:mod:`.checkpoint_guard`), stops fairseq's
prefetch threads cleanly at exit, and prints
:class:`GraFusionError` as one line.
"""
import logging

from .errors import GraFusionError, install_excepthook

install_excepthook()
# fairseq's text_to_speech task logs "Please install tensorboardX" on import: noise for our commands
logging.getLogger("fairseq.tasks.text_to_speech").setLevel(logging.WARNING)

from . import checkpoint_compat, checkpoint_guard, clean_exit  # noqa: E402,F401  (clean_exit: an atexit hook)

checkpoint_compat.install()
checkpoint_guard.install()

from . import criterions, models, tasks  # noqa: E402,F401  (registration)

__all__ = ["GraFusionError"]
