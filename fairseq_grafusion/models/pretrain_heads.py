"""Output heads of SA-Graph pre-training (paper section 3.4), registered on a
:class:`~fairseq_grafusion.models.grafusion.GraFusionModel` by the ``sa_graph_pretrain`` task
(:meth:`GraFusionModel.register_pretraining_heads`) and dropped again when the pre-trained weights
initialise fine-tuning.

* ``lm`` -- the TLM head, RoBERTa's ``RobertaLMHead``: ``dense -> gelu -> LayerNorm -> E^T + b``
  with the output projection tied to the input embeddings ``E``.  Its parameter names are
  RoBERTa's (``dense``, ``layer_norm``, ``bias``), so an XLM-R checkpoint's ``lm_head``
  initialises it.
* ``sa`` -- the vocabulary classifier of the graph-node recovery loss ``L_SA``.  The paper feeds
  the aggregate of a masked word's neighbours to "a linear classifier over the whole vocabulary";
  a word of XLM-R is several pieces, so the classifier input for piece ``k`` of the word is the
  aggregate plus a learnt embedding of ``k`` (as SpanBERT's span-boundary objective does), then
  the same transform as the LM head and the tied vocabulary projection with its own bias.  Tying
  keeps the head small: an untied ``d x |V|`` classifier would add 192M (base) / 256M (large)
  parameters that fine-tuning throws away.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq import utils
from fairseq.modules import LayerNorm


class TiedVocabularyHead(nn.Module):
    """``E^T LayerNorm(act(dense(x))) + bias``; ``E`` (the embedding matrix) is passed to forward."""

    def __init__(self, dim, vocab_size, activation_fn="gelu"):
        super().__init__()
        self.dense = nn.Linear(dim, dim)
        self.activation_fn = utils.get_activation_fn(activation_fn)
        self.layer_norm = LayerNorm(dim)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, x, embed_weight):
        x = self.layer_norm(self.activation_fn(self.dense(x)))
        return F.linear(x, embed_weight) + self.bias


class SARecoveryHead(TiedVocabularyHead):
    """Vocabulary logits of piece ``k`` of a masked word from its neighbours' aggregate."""

    def __init__(self, dim, vocab_size, activation_fn="gelu", max_pieces=16):
        super().__init__(dim, vocab_size, activation_fn)
        self.max_pieces = max_pieces
        self.piece_embed = nn.Embedding(max_pieces, dim)

    def forward(self, aggregate, piece_index, embed_weight):
        piece = self.piece_embed(piece_index.clamp(max=self.max_pieces - 1))
        return super().forward(aggregate + piece, embed_weight)


class PretrainingHeads(nn.Module):
    """``lm`` (TLM) and ``sa`` (L_SA) heads; both tie their output to the input embeddings."""

    def __init__(self, dim, vocab_size, activation_fn="gelu"):
        super().__init__()
        self.lm = TiedVocabularyHead(dim, vocab_size, activation_fn)
        self.sa = SARecoveryHead(dim, vocab_size, activation_fn)


def load_pretrained_sagraph(model, path, dictionary):
    """Initialise a fine-tuning ``model`` from a ``sa_graph_pretrain`` checkpoint (``+adp``).

    Embeddings, bottom / SA / top layers and every SA-Graph parameter are copied; the checkpoint's
    pre-training heads are dropped and the model keeps its fresh span heads (both done by
    ``GraFusionModel.upgrade_state_dict_named``, so loading stays ``strict=True``).  The model must
    have the checkpoint's sizes and ``--graph``; anything else is a one-line
    :class:`GraFusionError`.
    """
    import logging
    import os

    from fairseq import checkpoint_utils

    from ..errors import GraFusionError
    from .grafusion import HEADS

    if not os.path.isfile(path):
        raise GraFusionError(f"--pretrained-sagraph {path}: no such checkpoint file")
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
