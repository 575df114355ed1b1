"""What the plugin's models share as configuration: XLM-R's encoder (:class:`EncoderConfig`, the
base of ``GraFusionConfig`` and ``FilterConfig``) and XLM-R's sizes (:data:`XLMR_SIZES`), from
which every named architecture (``grafusion_base``, ``filter_large``, ...) takes its own."""
from dataclasses import dataclass, field, fields
from typing import NamedTuple, Optional

from fairseq import utils
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.utils import safe_getattr


class Sizes(NamedTuple):
    dim: int  # d
    ffn: int  # FFN inner dimension
    heads: int
    layers: int  # L, XLM-R's transformer layers


# xlmr.base and xlmr.large; "tiny" for the tests, the bundled sample and the ablation
XLMR_SIZES = {"base": Sizes(768, 3072, 12, 12), "large": Sizes(1024, 4096, 16, 24),
              "tiny": Sizes(64, 128, 4, 4)}


@dataclass
class EncoderConfig(FairseqDataclass):
    encoder_embed_dim: int = field(default=XLMR_SIZES["base"].dim, metadata={"help": "model dimension d"})
    encoder_ffn_embed_dim: int = field(default=XLMR_SIZES["base"].ffn, metadata={"help": "FFN inner dimension"})
    encoder_attention_heads: int = field(default=XLMR_SIZES["base"].heads, metadata={"help": "attention heads"})
    activation_fn: ChoiceEnum(utils.get_available_activation_fns()) = field(default="gelu")
    dropout: float = field(default=0.1)
    attention_dropout: float = field(default=0.1)
    activation_dropout: float = field(default=0.0)
    max_positions: int = field(default=512, metadata={"help": "max tokens per language stream"})
    pretrained_xlmr: Optional[str] = field(default=None, metadata={
        "help": "XLM-R directory to start from: fairseq's release (model.pt, dict.txt) or HuggingFace's "
                "(config.json, model.safetensors or pytorch_model.bin, sentencepiece.bpe.model)"})
    init_span_heads_from_pretrained: bool = field(default=False, metadata={
        "help": "with a HuggingFace XLMRobertaForQuestionAnswering --pretrained-xlmr (fine-tuned on "
                "SQuAD): its qa_outputs initialise the span head of every stream"})
    checkpoint_activations: bool = field(default=False, metadata={
        "help": "checkpoint activations at each layer: keep only each layer's input and recompute "
                "the rest in the backward pass; saves memory at the cost of about one more "
                "forward pass (fairseq's --checkpoint-activations)"})


_FILLED = ("activation_fn", "dropout", "attention_dropout", "activation_dropout", "max_positions")


def layer_kwargs(cfg):
    """The keyword arguments every transformer layer of a model gets from its config."""
    return dict(dropout=cfg.dropout, attention_dropout=cfg.attention_dropout,
                activation_dropout=cfg.activation_dropout, activation_fn=cfg.activation_fn)


def fill_sizes(args, size, **own):
    """An architecture function's body: the options the command line left unset get XLM-R
    ``size``'s dimensions, the model's ``own`` values and :class:`EncoderConfig`'s defaults."""
    sizes = XLMR_SIZES[size]
    defaults = {f.name: f.default for f in fields(EncoderConfig) if f.name in _FILLED}
    values = {"encoder_embed_dim": sizes.dim, "encoder_ffn_embed_dim": sizes.ffn,
              "encoder_attention_heads": sizes.heads, **own, **defaults}
    for name, value in values.items():
        setattr(args, name, safe_getattr(args, name, value))
