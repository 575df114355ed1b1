"""What loading the plugin changes in the process (imported by ``tasks/``, ``models/`` and
``criterions/``, so fairseq's ``--user-dir`` runs it):

* a :class:`~.errors.GraFusionError` reaching the top is printed as one line
  (``fairseq-grafusion: error: ...``) instead of a traceback (:func:`.errors.install_excepthook`);
* fairseq's checkpoint loader is :func:`.checkpoint_compat.load_checkpoint_to_cpu`:
  ``weights_only=True`` with the one class fairseq checkpoints need, and what fairseq would
  build from the file checked against the load's allow-list before anything is built
  (:mod:`.checkpoint_policy`); checkpoint copies are atomic, a damaged
  checkpoint is one line, a fresh start over ``checkpoint_best.pt`` is refused
  (:mod:`.checkpoint_guard`);
* fairseq's batch-prefetch threads are stopped at exit (:mod:`.clean_exit`).
"""
from . import checkpoint_compat, checkpoint_guard, clean_exit  # noqa: F401  (clean_exit: atexit)
from .errors import install_excepthook

install_excepthook()
checkpoint_compat.install()
checkpoint_guard.install()
