"""What every span-extraction model of the plugin shares: XLM-R's embeddings (fairseq RoBERTa
names, so XLM-R checkpoints load), the span logits of eq. 5, and loading for the hub.

A model's ``forward(src_tokens, tgt_tokens, ...)`` returns ``{"tgt_start", "tgt_end"[,
"src_start", "src_end"]}``, each (B, L) with -inf on padding; the task, the criteria, prediction
and the hub rely on nothing else.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint
from fairseq.models import BaseFairseqModel
from fairseq.modules import LayerNorm, PositionalEmbedding


class SpanModel(BaseFairseqModel):
    """Base of :class:`~.grafusion.GraFusionModel` and :class:`~.filter.FilterModel`."""

    def __init__(self, cfg, dictionary):
        super().__init__()
        self.cfg = cfg
        dim = cfg.encoder_embed_dim
        self.padding_idx = dictionary.pad()
        self.embed_tokens = nn.Embedding(len(dictionary), dim, self.padding_idx)
        self.embed_positions = PositionalEmbedding(cfg.max_positions, dim, self.padding_idx,
                                                   learned=True)
        self.layernorm_embedding = LayerNorm(dim)

    @classmethod
    def build_model(cls, cfg, task):
        """``--pretrained-xlmr`` (and ``--pretrained-sagraph``) are loaded by the task, and only
        when the model is not being rebuilt from a checkpoint."""
        return cls(cfg, task.source_dictionary)

    @classmethod
    def from_pretrained(cls, model_name_or_path, checkpoint_file="checkpoint_best.pt",
                        data_name_or_path=".", **kwargs):
        """A :class:`~fairseq_grafusion.hub.GraFusionHubInterface` with ``answer(question,
        context, *, source_question=None, source_context=None, top_k=1, max_answer_len=...)``;
        ``kwargs`` go to :func:`fairseq_grafusion.hub.from_pretrained`."""
        from ..hub import from_pretrained

        return from_pretrained(model_name_or_path, checkpoint_file, data_name_or_path, **kwargs)

    def max_positions(self):
        return self.cfg.max_positions

    def embed(self, tokens):
        """Token + learned position embeddings, as XLM-R's encoder computes them."""
        pad = tokens.eq(self.padding_idx)
        x = self.embed_tokens(tokens) + self.embed_positions(tokens)
        x = F.dropout(self.layernorm_embedding(x), self.cfg.dropout, self.training)
        return x.masked_fill(pad.unsqueeze(-1), 0), pad

    def run_layer(self, layer, *args, **kwargs):
        """``layer(*args, **kwargs)``, with activation checkpointing when training with
        ``--checkpoint-activations`` (the dropout RNG state is replayed, so gradients are those
        of the plain run)."""
        if getattr(self.cfg, "checkpoint_activations", False) and self.training \
                and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(layer, *args, use_reentrant=False, **kwargs)
        return layer(*args, **kwargs)

    def span_logits(self, head, x, pad):
        logits = head(x).masked_fill(pad.unsqueeze(-1), float("-inf"))
        return logits[..., 0], logits[..., 1]
