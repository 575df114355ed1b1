"""Initialisation from an XLM-R (fairseq RoBERTa) checkpoint (docs/design.md, "Model").

XLM-R layer 0 initialises both bottom layers, layers ``1..N`` the SA-Transformer layers and the last
layer both top layers; embeddings are shared.  The converter accepts the released layout
(``decoder.sentence_encoder.*``, ``emb_layer_norm``, fused ``in_proj_weight``) as well as
today's (``encoder.sentence_encoder.*``, ``layernorm_embedding``); RoBERTa's LM head is dropped.
"""
import logging
import os
import re

import torch

from .. import checkpoint_policy, hf_xlmr
from ..errors import GraFusionError

logger = logging.getLogger(__name__)

_LAYER = re.compile(r"^encoder\.sentence_encoder\.layers\.(\d+)\.(.+)$")


def is_xlmr_state(state_dict):
    return any(k.startswith(("encoder.sentence_encoder.", "decoder.sentence_encoder."))
               for k in state_dict)


def _normalise(state_dict):
    """Rename old RoBERTa keys to today's and split fused attention projections."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("decoder."):
            key = "encoder." + key[len("decoder."):]
        key = key.replace(".emb_layer_norm.", ".layernorm_embedding.")
        if key.endswith("self_attn.in_proj_weight") or key.endswith("self_attn.in_proj_bias"):
            stem, kind = key.rsplit(".in_proj_", 1)
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                out[f"{stem}.{name}.{kind}"] = part
            continue
        out[key] = value
    return out


def xlmr_parts(state_dict, source="the checkpoint"):
    """An XLM-R state dict as ``(embeddings, layers)``: the embedding tensors under our names
    (``embed_tokens.weight``, ...) and per encoder layer its tensors by parameter name."""
    state = _normalise(state_dict)
    layers = {}
    for key, value in state.items():
        m = _LAYER.match(key)
        if m:
            layers.setdefault(int(m.group(1)), {})[m.group(2)] = value
    if sorted(layers) != list(range(len(layers))) or not layers:
        raise GraFusionError(f"{source}: no consecutive encoder layers found")
    embeddings = {}
    for name in ("embed_tokens.weight", "embed_positions.weight",
                 "layernorm_embedding.weight", "layernorm_embedding.bias"):
        key = "encoder.sentence_encoder." + name
        if key not in state:
            raise GraFusionError(f"{source}: parameter {key} is missing")
        embeddings[name] = state[key]
    return embeddings, [layers[i] for i in range(len(layers))]


def place_layers(embeddings, layers, targets):
    """``targets[i]``: the module names that XLM-R layer ``i`` initialises."""
    out = dict(embeddings)
    for i, names in targets.items():
        for module in names:
            for param, value in layers[i].items():
                out[f"{module}.{param}"] = value
    return out


def xlmr_to_grafusion(state_dict, sa_layers, fusion, source="the checkpoint"):
    """Map an XLM-R state dict onto GraFusion parameter names (see module docstring)."""
    embeddings, layers = xlmr_parts(state_dict, source)
    if len(layers) != sa_layers + 2:
        raise GraFusionError(
            f"{source} has {len(layers)} layers but the model needs 1 + {sa_layers} SA + 1 = "
            f"{sa_layers + 2} (choose the architecture that matches, e.g. grafusion_base for "
            f"xlmr.base, grafusion_large for xlmr.large)")
    last = len(layers) - 1
    targets = {0: ["tgt_bottom"] + (["src_bottom"] if fusion else []),
               last: ["tgt_top"] + (["src_top"] if fusion else [])}
    for i in range(1, last):
        targets[i] = [f"sa_layers.{i - 1}"]
    return place_layers(embeddings, layers, targets)


def load_xlmr(model, directory, dictionary, init_span_heads=False):
    """Initialise ``model`` from ``directory``: an XLM-R release in fairseq's format (``model.pt``
    + ``dict.txt``) or HuggingFace's (:mod:`.hf_xlmr`), checking that the task's dictionary is the
    checkpoint's.  ``init_span_heads``: HF's ``qa_outputs`` (a model fine-tuned on SQuAD)
    initialise every span head (``--init-span-heads-from-pretrained``)."""
    fmt = hf_xlmr.release_format(directory)
    state = _hf_state(model, directory, dictionary) if fmt == "huggingface" \
        else _fairseq_state(directory, dictionary)
    source = state.pop("_source")
    qa_head = {k: state.pop(k) for k in hf_xlmr.QA_HEAD if k in state}
    model.load_state_dict(state, strict=True)
    logger.info("initialised from XLM-R checkpoint %s (%s format)", source, fmt)
    if init_span_heads:
        _init_span_heads(model, qa_head, source)
    return model


def _fairseq_state(directory, dictionary):
    from fairseq import checkpoint_utils
    from fairseq.data import Dictionary

    ckpt, dict_path = os.path.join(directory, "model.pt"), os.path.join(directory, "dict.txt")
    if not os.path.isfile(dict_path):
        raise GraFusionError(f"--pretrained-xlmr {directory}: dict.txt is missing")
    theirs = Dictionary.load(dict_path).symbols
    ours = dictionary.symbols[:-1] if dictionary.symbols[-1] == "<mask>" else dictionary.symbols
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            raise GraFusionError(
                f"dictionary mismatch: symbol {i} is {a!r} in the data's dictionary but {b!r} in "
                f"{dict_path}; binarize the data with the checkpoint's dict.txt")
    if len(ours) != len(theirs):
        raise GraFusionError(f"dictionary mismatch: the data's dictionary has {len(ours)} symbols, "
                             f"{dict_path} has {len(theirs)}")
    with checkpoint_policy.expecting(checkpoint_policy.xlmr_start()):  # its weights, nothing built
        state = checkpoint_utils.load_checkpoint_to_cpu(ckpt)
    return {**state["model"], "_source": ckpt}


def _hf_state(model, directory, dictionary):
    config = hf_xlmr.read_config(directory)
    hf_xlmr.check_sizes(directory, config, model.cfg)
    symbols, vocab_source = hf_xlmr.vocabulary(directory)
    hf_xlmr.check_vocabulary(symbols, vocab_source, dictionary, "the data's dictionary")
    weights, path = hf_xlmr.read_weights(directory)
    state = hf_xlmr.to_fairseq(weights, path)
    hf_xlmr.check_against_config(state, config, directory)
    return {**state, "_source": path}


def _init_span_heads(model, qa_head, source):
    """HF's ``qa_outputs`` (rows: start, end) into each span head (eq. 5's W, one per stream)."""
    heads = [(name, m) for name, m in model.named_children() if name.endswith("span_head")]
    if len(qa_head) != 2:
        raise GraFusionError(f"--init-span-heads-from-pretrained: {source} has no qa_outputs (a "
                             f"XLMRobertaForQuestionAnswering model has)")
    if not heads:
        raise GraFusionError("--init-span-heads-from-pretrained: this model has no span heads")
    with torch.no_grad():
        for _, head in heads:
            head.weight.copy_(qa_head["qa_outputs.weight"])
            head.bias.copy_(qa_head["qa_outputs.bias"])
    logger.info("span heads %s initialised from %s's qa_outputs", ", ".join(n for n, _ in heads), source)


def check_embeddings(converted, model_state, source):
    """One-line errors for a vocabulary or size mismatch, before torch's long message."""
    for key, value in converted.items():
        if key not in model_state:
            continue
        want = model_state[key].shape
        if value.shape != want:
            what = ("the dictionary does not match the checkpoint: it has "
                    f"{want[0]} symbols (with <mask>) but {source} has {value.shape[0]} embeddings"
                    if key == "embed_tokens.weight" else
                    f"{source}: {key} has shape {tuple(value.shape)}, the model {tuple(want)}")
            raise GraFusionError(what)


def fill_missing(converted, model_state):
    """Parameters XLM-R lacks (SA-Graph, span heads) keep the model's fresh initialisation."""
    added = [k for k in model_state if k not in converted]
    for key in added:
        converted[key] = model_state[key].detach().clone()
    if added:
        logger.info("not in the XLM-R checkpoint, freshly initialised: %d tensors (%s ...)",
                    len(added), ", ".join(added[:4]))
    return converted

