"""Loading checkpoints safely: nothing in a checkpoint runs code, and nothing but what the load
allows is built from one.

Two dangers, two guards, both in one loader (:func:`load_checkpoint_to_cpu`, which
:func:`install` makes fairseq's own, so every path that builds from a file goes through it):

* **Unpickling.**  The file is read with ``torch.load(..., weights_only=True)``, which refuses
  pickled classes.  fairseq checkpoints in the old format (XLM-R's ``model.pt``, fairseq's
  translation models) hold one class, ``argparse.Namespace``; it is allowed, and only while a
  load runs (:func:`trusted_globals`), not process-wide.  torch < 2.6 is refused with one line.
* **Building.**  fairseq builds whatever its rules read from the file's configuration, and some
  classes ``eval()`` configuration strings.  Before anything of the file reaches OmegaConf or a
  builder, :mod:`.checkpoint_policy` resolves what fairseq will build, exactly as fairseq does,
  and refuses it unless the load's allow-list has it.
"""
import argparse
import contextlib
import os

import torch

from .errors import GraFusionError

TRUSTED_GLOBALS = (argparse.Namespace,)
_FAIRSEQ_LOADER = []  # fairseq's own load_checkpoint_to_cpu, kept by install()
MIN_TORCH = (2, 6)


def torch_version():
    return tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])


def check_torch():
    if torch_version() < MIN_TORCH:
        raise GraFusionError(
            f"torch {torch.__version__} loads fairseq checkpoints without weights_only, so a "
            f"checkpoint could run code; fairseq-grafusion needs torch >= "
            f"{'.'.join(map(str, MIN_TORCH))}")


@contextlib.contextmanager
def trusted_globals():
    """Allow ``argparse.Namespace`` in ``weights_only`` loads for the duration of the block."""
    check_torch()
    with torch.serialization.safe_globals(list(TRUSTED_GLOBALS)):
        yield


class UnreadableCheckpoint(GraFusionError):
    """A checkpoint file that is missing, damaged, or holds pickled objects (``path``: the file)."""

    def __init__(self, message, path):
        super().__init__(message)
        self.path = path


def load_state(path, what="checkpoint", mmap=False):
    """The checkpoint dict of ``path``, loaded with ``weights_only=True``; one line
    (:class:`UnreadableCheckpoint`) if the file is missing, damaged, or holds anything but
    tensors, containers, scalars and Namespaces.  With ``mmap`` the tensors are mapped from the
    file, read only where used (a model loaded for prediction never reads the checkpoint's
    optimizer state, two thirds of it with Adam); a legacy-format file is read whole."""
    if not os.path.isfile(path):
        raise UnreadableCheckpoint(f"{what} {path} does not exist", path)
    if mmap:
        try:
            with trusted_globals():
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            if isinstance(state, dict):
                return state
        except GraFusionError:
            raise
        except Exception:  # a legacy (non-zip) file, or a damaged one: the whole read says which
            pass
    try:
        with trusted_globals():
            state = torch.load(path, map_location="cpu", weights_only=True)
    except GraFusionError:
        raise
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise UnreadableCheckpoint(f"{path}: {describe_load_error(e)}", path) from None
    if not isinstance(state, dict):
        raise UnreadableCheckpoint(f"{path}: not a fairseq checkpoint (a {type(state).__name__})", path)
    return state


def describe_load_error(exc):
    text = str(exc)
    found = next((line.strip() for line in text.splitlines() if "GLOBAL" in line), "")
    if found:  # weights_only met a class or function it does not allow
        return ("refused: the file holds pickled objects that a checkpoint does not need "
                f"({found}); it was not loaded")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if "Weights only load failed" in text:  # torch's advice is not ours to give: its reason only
        lines = [line for line in lines if not line.startswith(("Weights only", "Please file",
                                                                 "Check the doc"))]
    first = (lines or [type(exc).__name__])[0].split("  (Could this error message")[0][:200]
    return f"not a fairseq checkpoint, or a damaged one ({type(exc).__name__}: {first})"


def trained_dictionary(state):
    """The sha256 of the ``dict.txt`` a checkpoint was trained with (None before it was recorded)."""
    task_state = state.get("task_state")
    return task_state.get("dictionary_sha256") if isinstance(task_state, dict) else None


def load_checkpoint_to_cpu(path, arg_overrides=None, load_on_all_ranks=False, mmap=False):
    """fairseq's ``checkpoint_utils.load_checkpoint_to_cpu`` with the plugin's two guards: the
    file is read once, with ``weights_only=True`` (:func:`load_state`), and checked against the
    allow-list that applies (:mod:`.checkpoint_policy`) *before* anything of it is handed to
    OmegaConf or fairseq; then fairseq's own steps (the caller's overrides, its upgrade of old
    formats) run, and the names fairseq will build from are checked once more.  ``mmap``: the
    tensors are mapped, not read (:func:`load_state`; prediction, which needs the weights only)."""
    from fairseq import checkpoint_utils
    from fairseq.file_io import PathManager

    from . import checkpoint_policy

    local_path = PathManager.get_local_path(path)
    if local_path != path and PathManager.path_requires_pathmanager(path):
        try:  # fairseq's own rule: a cached copy of a remote file may be stale
            os.remove(local_path)
        except FileNotFoundError:
            pass
        if load_on_all_ranks:
            torch.distributed.barrier()
        local_path = PathManager.get_local_path(path)
    if checkpoint_policy.guarded():
        state = load_state(local_path, mmap=mmap)
    else:  # a plain fairseq process: another task's file is loaded as fairseq alone loads it
        state = _state_naming_ours(local_path)
        if state is None:
            return _FAIRSEQ_LOADER[0](path, arg_overrides, load_on_all_ranks)
    allowed = checkpoint_policy.expected(state)
    plan = checkpoint_policy.check(state, path, allowed)[0] if allowed else None
    try:
        state = _fairseq_steps(state, arg_overrides, checkpoint_utils)
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        raise GraFusionError(f"{path}: not a fairseq checkpoint, or one fairseq cannot upgrade "
                             f"({type(e).__name__}: {str(e)[:120]})") from None
    if plan is not None:
        checkpoint_policy.check_built(state, path, plan)
    return state


def _state_naming_ours(path):
    """The checkpoint dict of ``path`` if it names one of our tasks, models or criteria, else
    None (also for a file that cannot be read as a checkpoint: fairseq's own loader reports it).
    The configuration is looked at through mmap first, so that another task's file is not read
    whole twice (a legacy-format file, which mmap cannot read, is)."""
    from . import checkpoint_policy

    try:
        with trusted_globals():
            peek = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        whole = False
    except GraFusionError:
        raise
    except Exception:
        try:
            peek, whole = load_state(path), True
        except UnreadableCheckpoint:
            return None
    if not isinstance(peek, dict) or not checkpoint_policy.names_ours(peek):
        return None
    return peek if whole else load_state(path)


def _fairseq_steps(state, arg_overrides, checkpoint_utils):
    """What fairseq 0.12's ``load_checkpoint_to_cpu`` does after ``torch.load``."""
    from fairseq.dataclass.utils import overwrite_args_by_name
    from omegaconf import OmegaConf

    if state.get("args") is not None and arg_overrides is not None:
        for name, value in arg_overrides.items():
            setattr(state["args"], name, value)
    if state.get("cfg") is not None:
        state["cfg"] = OmegaConf.create(state["cfg"], flags={"allow_objects": True})
        if arg_overrides is not None:
            overwrite_args_by_name(state["cfg"], arg_overrides)
    return checkpoint_utils._upgrade_state_dict(state)


def install():
    """Make fairseq's checkpoint loader :func:`load_checkpoint_to_cpu`: every model fairseq
    builds from a file (fairseq-train's resume and ``--finetune-from-model``, fairseq-validate,
    ``load_model_ensemble*``, the plugin's own loads) goes through it."""
    from fairseq import checkpoint_utils

    if getattr(checkpoint_utils.load_checkpoint_to_cpu, "_grafusion", False):
        return
    _FAIRSEQ_LOADER[:] = [checkpoint_utils.load_checkpoint_to_cpu]
    load_checkpoint_to_cpu._grafusion = True
    checkpoint_utils.load_checkpoint_to_cpu = load_checkpoint_to_cpu


def restore_hint(path):
    """'; restore from ...' naming the newest other checkpoint next to a damaged one."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        others = [os.path.join(directory, f) for f in os.listdir(directory)
                  if f.endswith(".pt") and f.startswith("checkpoint")
                  and os.path.join(directory, f) != os.path.abspath(path)]
    except OSError:
        return ""
    readable = []
    for other in sorted(others, key=os.path.getmtime, reverse=True):
        try:
            with trusted_globals():
                torch.load(other, map_location="cpu", weights_only=True)
            readable.append(other)
            break
        except Exception:
            continue
    if not readable:
        return "; no other readable checkpoint in the directory"
    return f"; the newest readable one is {readable[0]}: resume with --restore-file {readable[0]}"
