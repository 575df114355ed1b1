"""What loading the plugin changes in the process, all of it in :func:`install`.

fairseq's ``--user-dir`` imports ``tasks/`` and ``models/``; both call :func:`install`, as does
``import fairseq_grafusion.plugin``.  It is idempotent.  Every change:

=====================================================  ===========================================
patched                                                what a run sees
=====================================================  ===========================================
``fairseq.checkpoint_utils.load_checkpoint_to_cpu``    :func:`.checkpoint_compat.load_checkpoint_to_cpu`:
                                                       the file read once with ``weights_only``, and
                                                       what fairseq would build from it checked
                                                       (:mod:`.checkpoint_policy`) where the load
                                                       or the process expects one of ours; another
                                                       task's file in a plain fairseq run is loaded
                                                       as fairseq loads it
``fairseq.checkpoint_utils.load_checkpoint``           for our tasks only (:mod:`.checkpoint_guard`):
                                                       no fresh start over ``checkpoint_best.pt``,
                                                       a resumed file of the run's task and
                                                       dictionary, a damaged file in one line; other
                                                       tasks call fairseq's own
``fairseq.checkpoint_utils.PathManager.copy``          checkpoint copies (``checkpoint_last.pt``
                                                       after ``checkpoint_best.pt``) written to a
                                                       temporary name and renamed: the same files,
                                                       never a truncated one
``sys.excepthook``                                     a :class:`~.errors.GraFusionError` (and, once
                                                       one of our tasks is set up, an ``OSError``)
                                                       printed as one line; anything else as Python
                                                       prints it
``atexit``                                             fairseq's prefetch threads stopped before the
                                                       interpreter finalizes (:mod:`.clean_exit`)
logger ``fairseq.tasks.text_to_speech``                level WARNING, set when the package is
                                                       imported (before fairseq, so it takes effect
                                                       when our commands or the hub import fairseq):
                                                       no "Please install tensorboardX" INFO line;
                                                       fairseq-train imports fairseq first and logs it
=====================================================  ===========================================

Nothing else: the rest is registration (tasks, models, architectures, criteria) through fairseq's
own registries, and what only our tasks do they do from their own hooks (``add_args`` /
``setup_task``: :func:`.checkpoint_policy.claim_process`).
"""
from . import checkpoint_compat, checkpoint_guard, clean_exit
from .errors import install_excepthook

_installed = []


def install():
    """Make every change of the table above, once per process."""
    if _installed:
        return
    install_excepthook()
    checkpoint_compat.install()
    checkpoint_guard.install()
    clean_exit.install()
    _installed.append(True)
