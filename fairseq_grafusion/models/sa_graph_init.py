"""Initialising fine-tuning from a ``sa_graph_pretrain`` checkpoint (``--pretrained-sagraph``, the
+adp variant)."""
import logging
import os

from fairseq import checkpoint_utils

from .. import checkpoint_policy
from ..errors import GraFusionError
from .grafusion import HEADS


def load_pretrained_sa_graph(model, path, dictionary):
    """Initialise a fine-tuning ``model`` from a ``sa_graph_pretrain`` checkpoint (``+adp``).

    Embeddings, bottom / SA / top layers and every SA-Graph parameter are copied; the checkpoint's
    pre-training heads are dropped and the model keeps its fresh span heads (both done by
    ``GraFusionModel.upgrade_state_dict_named``, so loading stays ``strict=True``).  The model must
    have the checkpoint's sizes and ``--graph``; anything else is a one-line
    :class:`GraFusionError`.
    """
    if not os.path.isfile(path):
        raise GraFusionError(f"--pretrained-sagraph {path}: no such checkpoint file")
    allowed = checkpoint_policy.ours(("sa_graph_pretrain",), label="--pretrained-sagraph")
    with checkpoint_policy.expecting(allowed):
        state = checkpoint_utils.load_checkpoint_to_cpu(path)
    theirs = state.get("model") or {}
    if not any(k.startswith("pretrain_heads.") for k in theirs):
        raise GraFusionError(f"--pretrained-sagraph {path}: not a sa_graph_pretrain checkpoint "
                             "(it has no pre-training heads)")
    own = model.state_dict()
    body = lambda keys: {k for k in keys if k.split(".", 1)[0] not in HEADS}  # noqa: E731
    missing, unexpected = sorted(body(own) - body(theirs)), sorted(body(theirs) - body(own))
    if missing or unexpected:
        cfg = state.get("cfg")
        saved = (cfg.get("model") if cfg is not None else None) or {}
        arch = f"{saved.get('arch', saved.get('_name', '?'))}, --graph {saved.get('graph', '?')}"
        what = f"lacks {missing[0]}" if missing else f"has {unexpected[0]}, which the model lacks"
        raise GraFusionError(f"--pretrained-sagraph {path} ({arch}) does not fit the model: it {what}"
                             " (fine-tune with the pre-training's --arch, sizes and --graph)")
    vocab = theirs["embed_tokens.weight"].shape[0]
    if vocab != len(dictionary):
        raise GraFusionError(f"--pretrained-sagraph {path}: the checkpoint has {vocab} embeddings, "
                             f"the data's dictionary {len(dictionary)} symbols (with <mask>); "
                             "binarize both with the same dict.txt")
    for key in sorted(body(own)):
        if theirs[key].shape != own[key].shape:
            raise GraFusionError(f"--pretrained-sagraph {path}: {key} has shape "
                                 f"{tuple(theirs[key].shape)}, the model {tuple(own[key].shape)}")
    model.load_state_dict(theirs, strict=True)
    logging.getLogger(__name__).info("initialised from SA-Graph pre-training checkpoint %s", path)
    return model
