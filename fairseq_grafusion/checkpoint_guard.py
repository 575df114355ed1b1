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

* **A checkpoint of the run's own task and dictionary.**  ``--restore-file`` (or
  ``checkpoint_last.pt``) of another task (a ``sa_graph_pretrain`` checkpoint given to an
  ``xmrc_span`` run) or trained with another ``dict.txt`` is one line before fairseq loads it
  (fine-tuning from pre-training goes through ``--pretrained-sagraph``).

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
    last = restore_path(cfg.save_dir, cfg.restore_file, suffix)
    best = os.path.join(cfg.save_dir, f"checkpoint_best{suffix}.pt")
    told = cfg.reset_optimizer or cfg.reset_lr_scheduler or cfg.reset_meters or cfg.reset_dataloader
    if os.path.exists(last) or not os.path.exists(best) or told:
        return
    raise GraFusionError(
        f"{cfg.save_dir} holds {os.path.basename(best)} but no {os.path.basename(last)}: this run "
        f"would start from update 0 and overwrite {os.path.basename(best)} with an early model; "
        f"continue from it with --restore-file {best}, or start anew in another --save-dir "
        "(or pass --reset-meters to start anew here)")


def _task_name(task):
    from fairseq.tasks import TASK_REGISTRY

    return next((name for name, cls in TASK_REGISTRY.items() if cls is type(task)), None)


def restore_path(save_dir, restore_file, suffix=""):
    """The file ``fairseq-train`` restores from (``checkpoint_utils.load_checkpoint``'s rule):
    ``SAVE_DIR/checkpoint_last{suffix}.pt`` for the default ``--restore-file``, else that file."""
    if restore_file == "checkpoint_last.pt":
        return os.path.join(save_dir, f"checkpoint_last{suffix}.pt")
    return restore_file


def check_restore_file(cfg, trainer):
    """The checkpoint fairseq is about to restore was trained with this run's task and dictionary
    (read through mmap: only its config is looked at; an unreadable file is left to fairseq's
    loader, which names it)."""
    from . import checkpoint_compat, checkpoint_policy
    from .data.fingerprints import check_model_dictionary

    suffix = trainer.checkpoint_suffix or ""
    path = restore_path(cfg.save_dir, cfg.restore_file, suffix)
    option = "checkpoint_last.pt" if cfg.restore_file == "checkpoint_last.pt" else f"--restore-file {path}"
    if not os.path.isfile(path):
        return
    try:
        with checkpoint_compat.trusted_globals():
            state = torch_load_config(path)
    except Exception:
        return
    task = trainer.task
    try:
        task_name = checkpoint_policy.resolve(state, option).task
    except GraFusionError:
        return  # the loader's check refuses it, with the reason
    ours = _task_name(task)
    if task_name and ours and task_name != ours:
        hint = (f"; to fine-tune from a pre-training checkpoint give --pretrained-sagraph {path}"
                if task_name == "sa_graph_pretrain" else "")
        raise GraFusionError(f"{option}: a checkpoint of task {task_name!r}, this run trains "
                             f"{ours!r}: it cannot be resumed{hint}")
    check_model_dictionary(checkpoint_compat.trained_dictionary(state),
                           os.path.join(task.cfg.data, "dict.txt"), path,
                           getattr(task, "dictionary_sha256", None))


def torch_load_config(path):
    """A checkpoint's dict with its tensors memory-mapped (nothing read but what is looked at)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def install():
    from fairseq import checkpoint_utils
    from fairseq.file_io import PathManager

    from . import checkpoint_compat, checkpoint_policy

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
        if not _is_ours(trainer.task):
            return original(cfg, trainer, **kwargs)
        remove_stale_temporaries(cfg.save_dir)
        check_fresh_start(cfg, trainer)
        check_restore_file(cfg, trainer)
        # resuming, --restore-file: ours; --finetune-from-model: ours or an XLM-R release
        allowed = (checkpoint_policy.ours(), checkpoint_policy.xlmr_start(label=""))
        try:
            with checkpoint_policy.expecting(*allowed):
                return original(cfg, trainer, **kwargs)
        except checkpoint_compat.UnreadableCheckpoint as e:
            raise GraFusionError(f"{e}{checkpoint_compat.restore_hint(e.path)}") from None

    load_checkpoint._grafusion = True
    checkpoint_utils.load_checkpoint = load_checkpoint
    checkpoint_utils.PathManager = AtomicCopyPathManager
