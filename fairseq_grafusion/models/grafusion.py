"""GraFusion-MRC (paper section 3.1, Figure 2) as fairseq model ``grafusion``.

    bottom layer (one copy per language, eq. 1-2)
    -> N SA-Transformer layers over [A_s; A_t] with the SA-Graph bias G (eq. 3-4, 6-11)
    -> top layer (one copy per language) -> start/end heads per language (eq. 5)

``--graph none`` is fusion with G = 0, ``--graph align`` is +a, ``--graph align,dep`` is +ad;
``--no-fusion`` runs the target stream alone through the same layers.  The paper's baselines,
XLM-R translate-train and FILTER, are the model ``filter`` (:mod:`.filter`).  ``--share-sa-graph``
and ``--share-lang-layers`` set the parameter budget (docs/design.md, "Parameters").  Embeddings and
layers follow fairseq's RoBERTa so XLM-R checkpoints initialise the model (``--pretrained-xlmr
DIR``, or ``--finetune-from-model DIR/model.pt``).

Pre-training (section 3.4, task ``sa_graph_pretrain``) replaces the span heads by the TLM and
graph-node recovery heads (:meth:`GraFusionModel.register_pretraining_heads`); the pre-trained
weights initialise fine-tuning with ``--pretrained-sagraph CHECKPOINT`` (or fairseq's
``--finetune-from-model CHECKPOINT``): embeddings, all layers and the SA-Graph are copied, the
pre-training heads dropped and the span heads freshly initialised (``upgrade_state_dict_named``).
"""
import logging
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn
import torch.utils.checkpoint
from fairseq.dataclass import ChoiceEnum
from fairseq.models import register_model
from fairseq.modules.transformer_sentence_encoder import init_bert_params

from ..errors import GraFusionError
from ..modules import AGGREGATIONS, SAGraph, SATransformerLayer, TransformerLayer, word_graph
from . import xlmr_init
from .arch import register_arch
from .encoder_config import XLMR_SIZES, EncoderConfig, fill_sizes, layer_kwargs
from .pretrain_heads import PretrainingHeads
from .span_model import SpanModel

logger = logging.getLogger(__name__)

GRAPH_CHOICES = ("none", "align", "align,dep", "dep")
SHARE_LANG_CHOICES = ("none", "bottom", "top", "both")
SPAN_HEADS = ("tgt_span_head", "src_span_head")
HEADS = SPAN_HEADS + ("pretrain_heads",)  # top-level modules a checkpoint may have or lack


def parse_graph(value):
    """``--graph`` value -> (use_align, use_dep); order and spaces do not matter."""
    parts = sorted({p.strip() for p in str(value).split(",") if p.strip()})
    if parts in (["none"], []):
        return False, False
    if not set(parts) <= {"align", "dep"}:
        raise GraFusionError(
            f"unknown --graph value {value!r}: choose one of {', '.join(GRAPH_CHOICES)}")
    return "align" in parts, "dep" in parts


@dataclass
class GraFusionConfig(EncoderConfig):
    sa_layers: int = field(default=XLMR_SIZES["base"].layers - 2, metadata={
        "help": "N, the SA-Transformer layers between the bottom and the top layer"})
    graph: str = field(default="align,dep", metadata={
        "help": "SA-Graph edges: none (fusion with G = 0), align (+a), align,dep (+ad), dep"})
    graph_aggregation: ChoiceEnum(AGGREGATIONS) = field(default="mean", metadata={
        "help": "combination of f_a and f_d (eq. 8; appendix B)"})
    graph_bias_scale: Optional[float] = field(default=None, metadata={
        "help": "scale of G = scale * p_i.p_j (default 1/sqrt(d); the paper gives none)"})
    graph_bias_max: float = field(default=50.0, metadata={"help": "G is clamped to +-this"})
    no_fusion: bool = field(default=False, metadata={
        "help": "target stream only, no concatenation (for XLM-R translate-train on both "
                "streams: --arch xlmr_translate_train_*)"})
    # the option keeps its published spelling (scripts, stored configs): docs/design.md, "Naming"
    pretrained_sagraph: Optional[str] = field(default=None, metadata={
        "help": "a checkpoint of --task sa_graph_pretrain (the +adp variant): embeddings, layers "
                "and SA-Graph are copied, its pre-training heads dropped, span heads start fresh"})
    share_sa_graph: bool = field(default=False, metadata={
        "help": "one f_a, f_d and aggregation F for all SA layers, W_att / b_att per layer (eq. 7 "
                "indexes only W_att and G by layer); default: a full SA-Graph per layer"})
    share_lang_layers: ChoiceEnum(SHARE_LANG_CHOICES) = field(default="none", metadata={
        "help": "one bottom / top layer (or both) for the two languages instead of one copy per "
                "language (the parameter budget; see docs/design.md)"})


@register_model("grafusion", dataclass=GraFusionConfig)
class GraFusionModel(SpanModel):
    def __init__(self, cfg, dictionary):
        super().__init__(cfg, dictionary)
        dim, ffn, heads = cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim, cfg.encoder_attention_heads
        self.use_align, self.use_dep = parse_graph(cfg.graph)
        self.fusion = not cfg.no_fusion
        if not self.fusion and (self.use_align or self.use_dep):
            logger.info("--no-fusion: the SA-Graph is not used (--graph %s ignored)", cfg.graph)
            self.use_align = self.use_dep = False
        if not self.fusion and cfg.share_lang_layers != "none":
            logger.info("--no-fusion: one language stream (--share-lang-layers %s ignored)",
                        cfg.share_lang_layers)
        if cfg.sa_layers < 1:
            raise GraFusionError(f"--sa-layers must be at least 1, got {cfg.sa_layers}")
        if cfg.graph_bias_scale is not None and cfg.graph_bias_scale <= 0:
            raise GraFusionError(f"--graph-bias-scale must be positive, got {cfg.graph_bias_scale}")
        kw = layer_kwargs(cfg)
        self.tgt_bottom = TransformerLayer(dim, ffn, heads, **kw)
        self.sa_layers = nn.ModuleList(
            SATransformerLayer(dim, ffn, heads, graph=graph, **kw) for graph in self._build_graphs(cfg))
        self.tgt_top = TransformerLayer(dim, ffn, heads, **kw)
        self.tgt_span_head = nn.Linear(dim, 2)
        if self.fusion:  # --share-lang-layers: the same module under both names
            shared = cfg.share_lang_layers
            self.src_bottom = (self.tgt_bottom if shared in ("bottom", "both")
                               else TransformerLayer(dim, ffn, heads, **kw))
            self.src_top = (self.tgt_top if shared in ("top", "both")
                            else TransformerLayer(dim, ffn, heads, **kw))
            self.src_span_head = nn.Linear(dim, 2)
        self.apply(init_bert_params)
        self.pretrain_heads = None

    def register_pretraining_heads(self):
        """Pre-training (task ``sa_graph_pretrain``): add the TLM / L_SA heads and remove the span
        heads, so that every parameter gets a gradient (DDP) and checkpoints hold no unused
        tensors.  Called by the task before any checkpoint is loaded."""
        if self.pretrain_heads is not None:
            return self.pretrain_heads
        if not self.fusion:
            raise GraFusionError("sa_graph_pretrain needs both language streams: drop --no-fusion")
        for name in SPAN_HEADS:
            if hasattr(self, name):
                delattr(self, name)
        heads = PretrainingHeads(self.cfg.encoder_embed_dim, self.embed_tokens.num_embeddings,
                                 self.cfg.activation_fn)
        heads.apply(init_bert_params)
        self.pretrain_heads = heads.to(self.embed_tokens.weight)
        return self.pretrain_heads

    def _build_graphs(self, cfg):
        """One SA-Graph per SA layer (None without a graph); with ``--share-sa-graph`` the layers
        share the first one's ``f_a``, ``f_d`` and ``F`` and each keeps its ``W_att`` (eq. 7)."""
        graphs = []
        for _ in range(cfg.sa_layers):
            if not (self.use_align or self.use_dep):
                graphs.append(None)
                continue
            share = graphs[0] if cfg.share_sa_graph and graphs else None
            graphs.append(SAGraph(cfg.encoder_embed_dim, self.use_align, self.use_dep,
                                  aggregation=cfg.graph_aggregation, scale=cfg.graph_bias_scale,
                                  max_bias=cfg.graph_bias_max, share_from=share))
        return graphs

    @property
    def uses_graph(self):
        return self.use_align or self.use_dep

    def extract_features(self, src_tokens=None, tgt_tokens=None, word_ids=None, align_edges=None,
                         dep_edges=None, return_attention=False, num_words=None):
        """Final states of each stream after its top layer: ``{"tgt": (B, Lt, d), "tgt_pad"
        [, "src", "src_pad"]}``; ``return_attention`` adds the last SA layer's attention weights
        ``attn`` (B, H, T, T) and its bias ``graph_bias`` (B, T, T) over ``[S; T]``."""
        tgt, tgt_pad = self.embed(tgt_tokens)
        tgt, _ = self.run_layer(self.tgt_bottom, tgt, tgt_pad)
        if self.fusion:
            src, src_pad = self.embed(src_tokens)
            src, _ = self.run_layer(self.src_bottom, src, src_pad)
            x, pad = torch.cat([src, tgt], dim=1), torch.cat([src_pad, tgt_pad], dim=1)
        else:
            x, pad = tgt, tgt_pad
        graph_input = None
        if self.uses_graph:
            if word_ids is None:
                raise GraFusionError("--graph needs word_ids and edges in the batch")
            if num_words is None:  # once for every SA layer
                num_words = word_graph.count_words(word_ids, align_edges, dep_edges)
            graph_input = dict(word_ids=word_ids, align_edges=align_edges, dep_edges=dep_edges,
                               num_words=num_words)
        out = {}
        for i, layer in enumerate(self.sa_layers):
            last = i == len(self.sa_layers) - 1
            x, weights, bias = self.run_layer(layer, x, pad, graph_input,
                                              need_weights=return_attention and last)
            if return_attention and last:
                out["attn"], out["graph_bias"] = weights, bias
        if self.fusion:
            split = src_tokens.size(1)
            out["src"], _ = self.run_layer(self.src_top, x[:, :split], src_pad)
            out["tgt"], _ = self.run_layer(self.tgt_top, x[:, split:], tgt_pad)
            out["src_pad"] = src_pad
        else:
            out["tgt"], _ = self.run_layer(self.tgt_top, x, tgt_pad)
        out["tgt_pad"] = tgt_pad
        return out

    def pretraining_logits(self, src_tokens=None, tgt_tokens=None, word_ids=None, align_edges=None,
                           dep_edges=None, masked_tokens=None, num_words=None, **unused):
        """Pre-training (paper section 3.4): the TLM and ``L_SA`` logits of the masked pieces
        ``masked_tokens`` (B, Ls + Lt) over ``[S; T]``; see :meth:`PretrainingHeads.forward
        <fairseq_grafusion.models.pretrain_heads.PretrainingHeads.forward>`."""
        if self.pretrain_heads is None:
            raise GraFusionError("the model has no pre-training heads (--task sa_graph_pretrain adds them)")
        feats = self.extract_features(src_tokens, tgt_tokens, word_ids, align_edges, dep_edges,
                                      num_words=num_words)
        x = torch.cat([feats["src"], feats["tgt"]], dim=1)  # (B, Ls + Lt, d)
        return self.pretrain_heads(x, word_ids, align_edges, dep_edges, masked_tokens,
                                   self.embed_tokens.weight)

    def forward(self, src_tokens=None, tgt_tokens=None, word_ids=None, align_edges=None,
                dep_edges=None, return_attention=False, num_words=None, **unused):
        """Start/end logits per language: ``{"tgt_start", "tgt_end"[, "src_start", "src_end"]}``,
        each (B, L) with -inf on padding (plus ``attn`` / ``graph_bias`` if asked).  ``num_words``:
        the batch's word slots (its collater counts them), else counted here."""
        if self.pretrain_heads is not None:
            raise GraFusionError("this model carries pre-training heads, not span heads: use "
                                 "extract_features (criterion sa_graph_pretrain)")
        feats = self.extract_features(src_tokens, tgt_tokens, word_ids, align_edges, dep_edges,
                                      return_attention, num_words)
        out = {k: feats[k] for k in ("attn", "graph_bias") if k in feats}
        for lang in ("src", "tgt"):
            if lang in feats:
                head = getattr(self, f"{lang}_span_head")
                out[f"{lang}_start"], out[f"{lang}_end"] = self.span_logits(
                    head, feats[lang], feats[f"{lang}_pad"])
        return out

    def upgrade_state_dict_named(self, state_dict, name):
        """Accept an XLM-R / RoBERTa state dict (``--pretrained-xlmr``, ``--finetune-from-model``):
        rename its tensors and add what it lacks (fairseq loads with ``strict=True``)."""
        super().upgrade_state_dict_named(state_dict, name)
        if name:
            return
        if not xlmr_init.is_xlmr_state(state_dict):
            self._check_shared(state_dict)
            self._swap_heads(state_dict)
            return
        converted = xlmr_init.xlmr_to_grafusion(state_dict, len(self.sa_layers), self.fusion)
        if self.pretrain_heads is not None:  # RoBERTa's LM head initialises the TLM head
            for key, value in state_dict.items():
                for prefix in ("encoder.lm_head.", "decoder.lm_head."):
                    rest = key[len(prefix):]
                    if key.startswith(prefix) and rest != "weight":
                        converted[f"pretrain_heads.lm.{rest}"] = value
        own = self.state_dict()
        xlmr_init.check_embeddings(converted, own, "the XLM-R checkpoint")
        converted = xlmr_init.fill_missing(converted, own)
        state_dict.clear()
        state_dict.update(converted)

    def _check_shared(self, state_dict):
        """A module shared by ``--share-sa-graph`` / ``--share-lang-layers`` has several names in
        the state dict; a checkpoint trained without sharing has different tensors there, and
        loading would silently keep only one of them."""
        names = {}
        for name, param in self.named_parameters(remove_duplicate=False):
            names.setdefault(id(param), []).append(name)
        for group in names.values():
            present = [n for n in group if n in state_dict]
            for other in present[1:]:
                if not torch.equal(state_dict[present[0]], state_dict[other]):
                    raise GraFusionError(
                        f"the checkpoint has different tensors for {present[0]} and {other}, which "
                        "this model shares: it was trained without --share-sa-graph / "
                        "--share-lang-layers; build the model with the checkpoint's options")

    def _swap_heads(self, state_dict):
        """A GraFusion checkpoint with the other kind of heads (a pre-training checkpoint into a
        fine-tuning model, or the reverse): drop the heads this model lacks and give it fresh
        ones; everything else must match exactly (``strict=True``)."""
        own = self.state_dict()
        head_keys = lambda keys: {k for k in keys if k.split(".", 1)[0] in HEADS}  # noqa: E731
        theirs, ours = head_keys(state_dict), head_keys(own)
        if theirs == ours:
            return
        dropped = sorted(theirs - ours)
        for key in dropped:
            del state_dict[key]
        added = sorted(ours - theirs)
        for key in added:
            state_dict[key] = own[key].detach().clone()
        logger.info("checkpoint heads replaced: dropped %d tensors (%s), freshly initialised %d (%s)",
                    len(dropped), ", ".join(sorted({k.split(".")[0] for k in dropped})) or "-",
                    len(added), ", ".join(sorted({k.split(".")[0] for k in added})) or "-")


def _fill(args, size):
    """The bottom layer, N SA layers and the top layer take XLM-R's L layers: N = L - 2."""
    fill_sizes(args, size, sa_layers=XLMR_SIZES[size].layers - 2)


@register_arch("grafusion", "grafusion_base")
def grafusion_base(args):
    """XLM-R base: 1 + 10 SA + 1 layers, d=768, 12 heads, FFN 3072."""
    _fill(args, "base")


@register_arch("grafusion", "grafusion_large")
def grafusion_large(args):
    """XLM-R large: 1 + 22 SA + 1 layers, d=1024, 16 heads, FFN 4096."""
    _fill(args, "large")


@register_arch("grafusion", "grafusion_tiny")
def grafusion_tiny(args):
    """For tests and the bundled sample: 1 + 2 SA + 1 layers, d=64, 4 heads, FFN 128."""
    _fill(args, "tiny")
