"""Loading checkpoints safely: nothing in a checkpoint runs code, and nothing but our models is
built from one.

Two dangers, two guards:

* **Unpickling.**  Every load goes through ``torch.load(..., weights_only=True)``, which refuses
  pickled classes.  fairseq checkpoints in the old format (XLM-R's ``model.pt``, fairseq's
  translation models) and checkpoints of a criterion without a dataclass hold one class,
  ``argparse.Namespace``; it is allowed, and only while *our* loads run (:func:`trusted_globals`),
  not process-wide.  fairseq's own loader (``fairseq-train`` resuming, ``--finetune-from-model``,
  ``--pretrained-xlmr``) is wrapped the same way by :func:`install`.  torch < 2.6 does not default
  to ``weights_only`` inside fairseq: such a torch is refused with one line.
* **Building.**  fairseq builds whatever model a checkpoint's configuration names, and some
  architectures ``eval()`` configuration strings (``fconv``'s layer specs).  Before anything is
  built, :func:`check_grafusion` requires one of our tasks and an architecture of one of our
  models (``grafusion``, ``filter``), and
  :func:`check_translation` a fairseq transformer of the direction asked for ``--mt-*-model``.
"""
import argparse
import contextlib
import functools
import os

import torch

from .errors import GraFusionError

TRUSTED_GLOBALS = (argparse.Namespace,)
OUR_TASKS = ("xmrc_span", "sa_graph_pretrain")
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


def load_state(path, what="checkpoint"):
    """The checkpoint dict of ``path``, loaded with ``weights_only=True``; one line if the file is
    missing, damaged, or holds anything but tensors, containers, scalars and Namespaces."""
    if not os.path.isfile(path):
        raise GraFusionError(f"{what} {path} does not exist")
    try:
        with trusted_globals():
            state = torch.load(path, map_location="cpu", weights_only=True)
    except GraFusionError:
        raise
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise GraFusionError(f"{path}: {describe_load_error(e)}") from None
    if not isinstance(state, dict):
        raise GraFusionError(f"{path}: not a fairseq checkpoint (a {type(state).__name__})")
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
    first = (lines or [type(exc).__name__])[0][:200]
    return f"not a fairseq checkpoint, or a damaged one ({type(exc).__name__}: {first})"


def _section(state, name):
    """``cfg.<name>`` (new format) or the old format's ``args``; {} if absent."""
    cfg = state.get("cfg")
    if isinstance(cfg, dict) or hasattr(cfg, "get"):
        section = cfg.get(name)
        if section is not None:
            return section if hasattr(section, "get") else vars(section)
    args = state.get("args")
    if args is not None:
        return vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    return {}


def names(state):
    """``(task name, model name, architecture)`` a checkpoint says it was trained with."""
    task = _section(state, "task")
    model = _section(state, "model")
    task_name = task.get("_name") or task.get("task")
    arch = model.get("arch") or model.get("_name")
    model_name = model.get("_name") or arch
    return task_name, model_name, arch


def trained_dictionary(state):
    """The sha256 of the ``dict.txt`` a checkpoint was trained with (None before it was recorded)."""
    task_state = state.get("task_state")
    return task_state.get("dictionary_sha256") if isinstance(task_state, dict) else None


def check_grafusion(state, path, tasks=("xmrc_span",)):
    """Refuse, before anything is built, a checkpoint that is not one of our models."""
    from fairseq.models import ARCH_MODEL_REGISTRY

    from .models.span_model import SpanModel

    task_name, model_name, arch = names(state)
    if task_name not in tasks:
        raise GraFusionError(f"{path} was trained with task {task_name!r}, not "
                             f"{' or '.join(tasks)}; predict needs a fine-tuned span-extraction "
                             "checkpoint of fairseq-grafusion")
    cls = ARCH_MODEL_REGISTRY.get(arch)
    if cls is None or not issubclass(cls, SpanModel):
        raise GraFusionError(f"{path}: model {model_name!r} (arch {arch!r}) is not a "
                             "fairseq-grafusion model; refused before building it")


def check_translation(state, path, source_lang=None, target_lang=None, option="--mt-model",
                      data=None):
    """Refuse an ``option`` checkpoint that is not a fairseq transformer translation model, or
    one that translates another direction than ``source_lang`` -> ``target_lang``: as its
    ``cfg.task.source_lang`` / ``target_lang`` say, or, when fairseq-train inferred them from the
    data directory and stored none, as its embedding tables say (the encoder's rows are the
    source dictionary's size, the decoder's the target's: ``data/dict.{lang}.txt``; dictionaries
    of one size cannot tell)."""
    from fairseq.models import ARCH_MODEL_REGISTRY
    from fairseq.models.transformer import TransformerModel

    task_name, model_name, arch = names(state)
    cls = ARCH_MODEL_REGISTRY.get(arch)
    if not (task_name or "").startswith("translation") or cls is None \
            or not issubclass(cls, TransformerModel):
        raise GraFusionError(f"{option} {path}: task {task_name!r}, arch {arch!r} is not a "
                             "fairseq transformer translation model; refused before building it")
    if source_lang is None:
        return
    task = _section(state, "task")
    trained, how = (task.get("source_lang"), task.get("target_lang")), "cfg.task.source_lang/target_lang"
    if None in trained and data is not None:
        trained, how = _direction_from_embeddings(state, data, source_lang, target_lang), \
            "its embedding tables' sizes"
    if trained and None not in trained and tuple(trained) != (source_lang, target_lang):
        raise GraFusionError(f"{option} {path}: the checkpoint translates {trained[0]}->{trained[1]} "
                             f"({how}), but {source_lang}->{target_lang} is asked for: give a "
                             "model of that direction")


def _direction_from_embeddings(state, data, source_lang, target_lang):
    """``(source, target)`` the embedding sizes show, of the two languages; None if they cannot
    tell (equal dictionary sizes, a dictionary or a table missing)."""
    from fairseq.data import Dictionary

    weights = state.get("model") or {}
    rows = [weights.get(f"{part}.embed_tokens.weight") for part in ("encoder", "decoder")]
    sizes = {}
    for lang in (source_lang, target_lang):
        dict_path = os.path.join(data, f"dict.{lang}.txt")
        if not os.path.isfile(dict_path):
            return None
        sizes[lang] = len(Dictionary.load(dict_path))
    if any(r is None for r in rows) or sizes[source_lang] == sizes[target_lang]:
        return None
    found = {(a, b) for a in sizes for b in sizes if a != b
             and (sizes[a], sizes[b]) == (rows[0].shape[0], rows[1].shape[0])}
    return found.pop() if len(found) == 1 else None


def install():
    """Run fairseq's own checkpoint loader with the trusted globals (torch >= 2.6 loads with
    ``weights_only=True`` by default), and say which file is damaged when it fails."""
    from fairseq import checkpoint_utils

    original = checkpoint_utils.load_checkpoint_to_cpu
    if getattr(original, "_grafusion", False):
        return

    @functools.wraps(original)
    def load_checkpoint_to_cpu(path, *args, **kwargs):
        with trusted_globals():
            try:
                return original(path, *args, **kwargs)
            except (OSError, RuntimeError, EOFError, ValueError) as e:
                if isinstance(e, FileNotFoundError) or type(e).__name__ == "UnpicklingError" \
                        or "PytorchStreamReader" in str(e) or isinstance(e, EOFError):
                    raise GraFusionError(f"{path}: {describe_load_error(e)}"
                                         f"{restore_hint(path)}") from None
                raise

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
