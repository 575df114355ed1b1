"""What loading the plugin changes in the process (imported by ``tasks/``, ``models/`` and
``criterions/``, so fairseq's ``--user-dir`` runs it):

* a :class:`~.errors.GraFusionError` reaching the top is printed as one line
  (``fairseq-grafusion: error: ...``) instead of a traceback (:func:`.errors.install_excepthook`);
* torch >= 2.6 may load fairseq checkpoints (:mod:`.checkpoint_compat`);
* fairseq's batch-prefetch threads are stopped at exit (:mod:`.clean_exit`).
"""
from . import checkpoint_compat, clean_exit  # noqa: F401  (clean_exit: an atexit hook)
from .errors import install_excepthook

install_excepthook()
checkpoint_compat.allow_fairseq_checkpoints()
