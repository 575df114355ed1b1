"""The two baselines of the paper's Tables 1-2 as fairseq model ``filter``: FILTER (Fang et al.,
AAAI 2021) and XLM-R translate-train.

FILTER for question answering as its public code builds it (yuwfan/FILTER,
``src/transformers/modeling_xlm_roberta.py``: ``FilterModel``, ``FilterForQuestionAnswering``)::

    S, T -> XLM-R embeddings -> m local layers      (one copy, each language alone)
         -> k fusion layers over [A_s; A_t]
         -> L - m - k domain layers                (one copy, each language alone)
         -> one span head for both languages; loss = CE(T) + CE(S)

The ``L`` layers are XLM-R's, in order (local, fusion, domain).  ``filter_large``: m = 1, k = 20,
3 domain layers (``--filter_m 1 --filter_k 20`` in FILTER's ``train.sh`` for mlqa, xquad and
tydiqa).  FILTER's self-teaching loss is the criterion ``xmrc_span_self_teaching``.

With ``k = 0`` the languages never meet: each stream is an independent example through plain
XLM-R and one span head, i.e. XLM-R translate-train on the English originals plus their
translations (``xlmr_translate_train_*``); FILTER's ``run_xqa.py`` likewise runs plain XLM-R when
``filter_k == 0``.  A batch without ``src_tokens`` gives the target stream only.
"""
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from fairseq.models import register_model
from fairseq.modules.transformer_sentence_encoder import init_bert_params

from ..errors import GraFusionError
from ..modules import TransformerLayer
from . import xlmr_init
from .arch import register_arch
from .encoder_config import XLMR_SIZES, EncoderConfig, fill_sizes, layer_kwargs
from .span_model import SpanModel


@dataclass
class FilterConfig(EncoderConfig):
    encoder_layers: int = field(default=XLMR_SIZES["base"].layers, metadata={
        "help": "L, XLM-R's layers: m local + k fusion + (L - m - k) domain layers"})
    filter_m: int = field(default=1, metadata={
        "help": "m, local layers (shared by the languages, each language alone)"})
    filter_k: int = field(default=10, metadata={
        "help": "k, fusion layers over both languages; 0: the languages never meet (XLM-R "
                "translate-train)"})


@register_model("filter", dataclass=FilterConfig)
class FilterModel(SpanModel):
    def __init__(self, cfg, dictionary):
        super().__init__(cfg, dictionary)
        total, m, k = cfg.encoder_layers, cfg.filter_m, cfg.filter_k
        if total < 1 or m < 0 or k < 0 or m + k > total:
            raise GraFusionError(f"--filter-m {m} local + --filter-k {k} fusion layers do not fit "
                                 f"in --encoder-layers {total} (need 0 <= m, 0 <= k, m + k <= L)")
        kw = layer_kwargs(cfg)
        dims = (cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim, cfg.encoder_attention_heads)
        self.local = nn.ModuleList(TransformerLayer(*dims, **kw) for _ in range(m))
        self.fusion_layers = nn.ModuleList(TransformerLayer(*dims, **kw) for _ in range(k))
        self.domain = nn.ModuleList(TransformerLayer(*dims, **kw) for _ in range(total - m - k))
        self.span_head = nn.Linear(cfg.encoder_embed_dim, 2)  # FILTER's one qa_outputs
        self.apply(init_bert_params)

    @property
    def fusion(self):
        """Whether the languages meet (False: XLM-R translate-train)."""
        return len(self.fusion_layers) > 0

    def layer_names(self):
        """The module that XLM-R layer ``i`` initialises, for every ``i``."""
        return ([f"local.{i}" for i in range(len(self.local))]
                + [f"fusion_layers.{i}" for i in range(len(self.fusion_layers))]
                + [f"domain.{i}" for i in range(len(self.domain))])

    def extract_features(self, src_tokens=None, tgt_tokens=None, return_attention=False, **unused):
        """Final states of each stream ``{"tgt": (B, Lt, d), "tgt_pad"[, "src", "src_pad"]}``;
        ``return_attention`` adds the last fusion layer's weights ``attn`` (B, H, T, T) over
        ``[S; T]``."""
        streams = {"tgt": tgt_tokens}
        if src_tokens is not None:
            streams["src"] = src_tokens
        elif self.fusion:
            raise GraFusionError("FILTER (--filter-k > 0) reads both languages: the batch has no "
                                 "source stream")
        states = {}
        for lang, tokens in streams.items():  # local layers: one copy, each language alone
            x, pad = self.embed(tokens)
            for layer in self.local:
                x, _ = self.run_layer(layer, x, pad)
            states[lang] = (x, pad)
        out = {}
        if self.fusion:
            (src, src_pad), (tgt, tgt_pad) = states["src"], states["tgt"]
            x, pad = torch.cat([src, tgt], dim=1), torch.cat([src_pad, tgt_pad], dim=1)
            for i, layer in enumerate(self.fusion_layers):
                last = return_attention and i == len(self.fusion_layers) - 1
                x, weights = self.run_layer(layer, x, pad, need_weights=last)
                if last:
                    out["attn"] = weights
            split = src.size(1)
            states = {"src": (x[:, :split], src_pad), "tgt": (x[:, split:], tgt_pad)}
        for lang, (x, pad) in states.items():  # domain layers: one copy, each language alone
            for layer in self.domain:
                x, _ = self.run_layer(layer, x, pad)
            out[lang], out[f"{lang}_pad"] = x, pad
        return out

    def forward(self, src_tokens=None, tgt_tokens=None, return_attention=False, **unused):
        """Start/end logits per language from the one span head: ``{"tgt_start", "tgt_end"[,
        "src_start", "src_end"]}``, each (B, L) with -inf on padding (plus ``attn`` if asked)."""
        feats = self.extract_features(src_tokens, tgt_tokens, return_attention)
        out = {"attn": feats["attn"]} if "attn" in feats else {}
        for lang in ("src", "tgt"):
            if lang in feats:
                out[f"{lang}_start"], out[f"{lang}_end"] = self.span_logits(
                    self.span_head, feats[lang], feats[f"{lang}_pad"])
        return out

    def upgrade_state_dict_named(self, state_dict, name):
        """Accept an XLM-R / RoBERTa state dict: its layers in order become the local, fusion
        and domain layers; the span head starts fresh (fairseq loads with ``strict=True``)."""
        super().upgrade_state_dict_named(state_dict, name)
        if name or not xlmr_init.is_xlmr_state(state_dict):
            return
        source = "the XLM-R checkpoint"
        embeddings, layers = xlmr_init.xlmr_parts(state_dict, source)
        names = self.layer_names()
        if len(layers) != len(names):
            raise GraFusionError(
                f"{source} has {len(layers)} layers but the model has {len(names)} "
                f"(--encoder-layers; filter_base / xlmr_translate_train_base for xlmr.base, "
                f"filter_large / xlmr_translate_train_large for xlmr.large)")
        converted = xlmr_init.place_layers(embeddings, layers,
                                           {i: [n] for i, n in enumerate(names)})
        own = self.state_dict()
        xlmr_init.check_embeddings(converted, own, source)
        converted = xlmr_init.fill_missing(converted, own)
        state_dict.clear()
        state_dict.update(converted)


def _fill(args, size, m, k):
    """XLM-R ``size``'s L layers: m local, k fusion and L - m - k domain layers."""
    fill_sizes(args, size, encoder_layers=XLMR_SIZES[size].layers, filter_m=m, filter_k=k)


@register_arch("filter", "filter_large")
def filter_large(args):
    """XLM-R large, FILTER's QA split (train.sh): 1 local + 20 fusion + 3 domain layers."""
    _fill(args, "large", 1, 20)


@register_arch("filter", "filter_base")
def filter_base(args):
    """XLM-R base: 1 local + 10 fusion + 1 domain layers (ours: FILTER published no base split
    for QA; this is the fusion depth of grafusion_base)."""
    _fill(args, "base", 1, 10)


@register_arch("filter", "filter_tiny")
def filter_tiny(args):
    """For tests and the ablation: 1 local + 2 fusion + 1 domain layers, d=64, 4 heads."""
    _fill(args, "tiny", 1, 2)


@register_arch("filter", "xlmr_translate_train_large")
def xlmr_translate_train_large(args):
    """Plain XLM-R large (24 layers) with one span head; each language an independent example."""
    _fill(args, "large", XLMR_SIZES["large"].layers, 0)


@register_arch("filter", "xlmr_translate_train_base")
def xlmr_translate_train_base(args):
    """Plain XLM-R base (12 layers) with one span head; each language an independent example."""
    _fill(args, "base", XLMR_SIZES["base"].layers, 0)


@register_arch("filter", "xlmr_translate_train_tiny")
def xlmr_translate_train_tiny(args):
    """For tests and the ablation: 4 plain layers, d=64, 4 heads."""
    _fill(args, "tiny", XLMR_SIZES["tiny"].layers, 0)
