"""No checkpoint is lost: what the plugin changes in fairseq's checkpointing for its tasks.

* **Atomic copies.**  fairseq writes the first checkpoint of a save atomically (``.tmp`` +
  rename) but *copies* it to the others (``checkpoint_last.pt`` after ``checkpoint_best.pt``)
  with ``shutil.copyfile``: a kill during the copy leaves a truncated ``checkpoint_last.pt``.
  The copy goes to a temporary name and is renamed into place, so a kill leaves the previous
  file whole; temporary files of a killed run are removed when the next run starts.
* **No silent fresh start over a best checkpoint.**  A run that finds no
  ``checkpoint_last.pt`` starts from update 0 and, as soon as it validates, overwrites
  ``checkpoint_best.pt`` with an early, worse model.  Where ``checkpoint_best.pt`` exists, such a
  run stops with one line, unless told (``--restore-file`` a checkpoint, or any ``--reset-*``).

Damaged checkpoints are reported by :mod:`.checkpoint_compat` (file named, newest readable
checkpoint suggested).  The atomic copy serves every task of the process (it changes nothing but
the order of writes); the start-up checks run only for our tasks.
"""
import functools
import glob
import logging
import os
import shutil

from .errors import GraFusionError

logger = logging.getLogger(__name__)
OUR_TASKS = ("XMRCSpanTask", "SAGraphPretrainTask")


def _is_ours(task):
    return any(cls.__name__ in OUR_TASKS for cls in type(task).__mro__)


def atomic_copy(src_path, dst_path, overwrite=False):
    """``shutil.copyfile`` to a temporary name next to ``dst_path``, then an atomic rename."""
    if os.path.exists(dst_path) and not overwrite:
        return False
    tmp = f"{dst_path}.tmp-copy-{os.getpid()}"
    try:
        shutil.copyfile(src_path, tmp)
        os.replace(tmp, dst_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return True


def remove_stale_temporaries(save_dir):
    """``checkpoint*.pt.tmp*`` left by a killed run (nothing else writes such names)."""
    stale = glob.glob(os.path.join(save_dir, "checkpoint*.pt.tmp*"))
    for path in stale:
        os.remove(path)
    if stale:
        logger.info("removed %d temporary checkpoint files of an interrupted run", len(stale))


def check_fresh_start(cfg, trainer):
    """Refuse to start from update 0 in a directory that holds ``checkpoint_best.pt``."""
    if cfg.restore_file != "checkpoint_last.pt" or cfg.finetune_from_model is not None \
            or getattr(cfg, "continue_once", None):
        return
    suffix = trainer.checkpoint_suffix or ""
    last = os.path.join(cfg.save_dir, f"checkpoint_last{suffix}.pt")
    best = os.path.join(cfg.save_dir, f"checkpoint_best{suffix}.pt")
    told = cfg.reset_optimizer or cfg.reset_lr_scheduler or cfg.reset_meters or cfg.reset_dataloader
    if os.path.exists(last) or not os.path.exists(best) or told:
        return
    raise GraFusionError(
        f"{cfg.save_dir} holds {os.path.basename(best)} but no {os.path.basename(last)}: this run "
        f"would start from update 0 and overwrite {os.path.basename(best)} with an early model; "
        f"continue from it with --restore-file {best}, or start anew in another --save-dir "
        "(or pass --reset-meters to start anew here)")


def install():
    from fairseq import checkpoint_utils
    from fairseq.file_io import PathManager

    if getattr(checkpoint_utils.load_checkpoint, "_grafusion", False):
        return

    class AtomicCopyPathManager(PathManager):
        @staticmethod
        def copy(src_path, dst_path, overwrite=False):
            if not os.path.exists(os.path.dirname(os.path.abspath(dst_path))):
                return PathManager.copy(src_path, dst_path, overwrite)
            return atomic_copy(src_path, dst_path, overwrite)

    original = checkpoint_utils.load_checkpoint

    @functools.wraps(original)
    def load_checkpoint(cfg, trainer, **kwargs):
        if _is_ours(trainer.task):
            remove_stale_temporaries(cfg.save_dir)
            check_fresh_start(cfg, trainer)
        return original(cfg, trainer, **kwargs)

    load_checkpoint._grafusion = True
    checkpoint_utils.load_checkpoint = load_checkpoint
    checkpoint_utils.PathManager = AtomicCopyPathManager
