"""XLM-R in HuggingFace's format (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``
+ ``sentencepiece.bpe.model`` or ``tokenizer.json``), read into fairseq's RoBERTa layout and
written back (docs/design.md, "Model").

The mapping is the other direction of transformers' own fairseq-to-HF converter
(``convert_roberta_original_pytorch_checkpoint_to_pytorch.py``): :data:`EMBEDDINGS` and, per
layer, :data:`LAYER`.  HF's ``token_type_embeddings`` (fairseq has none) enters as its row 0 added
to every position embedding: every token has type 0, so the sum is what HF computes.  HF's
vocabulary is fairseq's dictionary: ``<s> <pad> </s> <unk>``, the SentencePiece pieces from id 3
on, ``<mask>`` last.  Nothing here imports ``transformers``, nor torch on import (the data
pipeline takes :func:`vocabulary_file`).
"""
import json
import os
import re

from .errors import GraFusionError
from .files import atomic_path

CONFIG, SAFETENSORS, PYTORCH_BIN = "config.json", "model.safetensors", "pytorch_model.bin"
SPM_FILE, TOKENIZER_JSON = "sentencepiece.bpe.model", "tokenizer.json"
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
MASK = "<mask>"
MODEL_TYPES = ("xlm-roberta",)
LAYER_NORM_EPS = 1e-5  # fairseq's LayerNorm; BertConfig's default (1e-12) is not XLM-R's

FAIRSEQ_ENCODER = "encoder.sentence_encoder."
# fairseq name (after ``encoder.sentence_encoder.``) -> HF name (after ``embeddings.``)
EMBEDDINGS = {"embed_tokens.weight": "word_embeddings.weight",
              "embed_positions.weight": "position_embeddings.weight",
              "layernorm_embedding.weight": "LayerNorm.weight",
              "layernorm_embedding.bias": "LayerNorm.bias"}
# one transformer layer: fairseq name -> HF name (after ``encoder.layer.<i>.``), weight and bias each
LAYER = {f"{ours}.{kind}": f"{theirs}.{kind}" for ours, theirs in (
    ("self_attn.q_proj", "attention.self.query"),
    ("self_attn.k_proj", "attention.self.key"),
    ("self_attn.v_proj", "attention.self.value"),
    ("self_attn.out_proj", "attention.output.dense"),
    ("self_attn_layer_norm", "attention.output.LayerNorm"),
    ("fc1", "intermediate.dense"),
    ("fc2", "output.dense"),
    ("final_layer_norm", "output.LayerNorm")) for kind in ("weight", "bias")}
# RoBERTa's LM head (only +adp's TLM head takes it), fairseq ``encoder.lm_head.<x>`` <- HF ``lm_head.<x>``;
# its output projection is the word embeddings in both (HF's file may leave the tied copy out)
LM_HEAD = ("dense.weight", "dense.bias", "layer_norm.weight", "layer_norm.bias", "bias")
QA_HEAD = ("qa_outputs.weight", "qa_outputs.bias")  # XLMRobertaForQuestionAnswering: (2, d), start then end
_HF_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")


def is_hf_directory(directory):
    return os.path.isfile(os.path.join(directory, CONFIG))


def release_format(directory, label="--pretrained-xlmr"):
    """``"fairseq"`` (``model.pt`` + ``dict.txt``) or ``"huggingface"``; one line naming what is
    missing otherwise."""
    if not os.path.isdir(directory):
        raise GraFusionError(f"{label} {directory}: not a directory")
    if os.path.isfile(os.path.join(directory, "model.pt")):
        return "fairseq"
    if is_hf_directory(directory):
        if not any(os.path.isfile(os.path.join(directory, f)) for f in (SAFETENSORS, PYTORCH_BIN)):
            raise GraFusionError(f"{label} {directory}: {CONFIG} but neither {SAFETENSORS} nor "
                                 f"{PYTORCH_BIN} (HuggingFace weights)")
        return "huggingface"
    raise GraFusionError(f"{label} {directory}: neither an XLM-R fairseq release (model.pt, dict.txt) nor "
                         f"a HuggingFace XLM-R directory ({CONFIG} + {SAFETENSORS} or {PYTORCH_BIN})")


def read_config(directory):
    """``config.json`` of an XLM-R model; one line naming the field if it is another model."""
    path = os.path.join(directory, CONFIG)
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise GraFusionError(f"{path}: cannot read the HuggingFace config ({e})") from None
    if not isinstance(config, dict):
        raise GraFusionError(f"{path}: not a HuggingFace config (a JSON {type(config).__name__})")
    kind = config.get("model_type")
    if kind not in MODEL_TYPES:
        raise GraFusionError(f"{path}: model_type is {kind!r}, not XLM-R ('xlm-roberta'); only XLM-R's "
                             f"architecture maps onto the plugin's models")
    for name, want in (("position_embedding_type", "absolute"), ("hidden_act", "gelu")):
        if config.get(name, want) != want:
            raise GraFusionError(f"{path}: {name} is {config[name]!r}, the plugin's models use {want!r}")
    eps = config.get("layer_norm_eps", LAYER_NORM_EPS)
    if not isinstance(eps, (int, float)) or abs(eps - LAYER_NORM_EPS) > 1e-12:
        raise GraFusionError(f"{path}: layer_norm_eps is {eps!r}, XLM-R's (and fairseq's LayerNorm) is 1e-05")
    return config


def check_sizes(directory, config, cfg):
    """The HF config against the model to initialise (``cfg``: its dimensions), one line per
    disagreement naming the field; the layer count is the model's own check."""
    path = os.path.join(directory, CONFIG)
    wanted = (("hidden_size", cfg.encoder_embed_dim, "--encoder-embed-dim"),
              ("intermediate_size", cfg.encoder_ffn_embed_dim, "--encoder-ffn-embed-dim"),
              ("num_attention_heads", cfg.encoder_attention_heads, "--encoder-attention-heads"),
              ("max_position_embeddings", cfg.max_positions + 2, "--max-positions + 2"))
    for name, want, option in wanted:
        if config.get(name) != want:
            raise GraFusionError(f"{path}: {name} is {config.get(name)}, the model has {want} ({option}; "
                                 f"*_base for xlm-roberta-base, *_large for xlm-roberta-large)")


def check_against_config(state, config, directory):
    """The weights agree with their own config: layer count and vocabulary size."""
    path = os.path.join(directory, CONFIG)
    layers = len({k.split(".")[3] for k in state if k.startswith(FAIRSEQ_ENCODER + "layers.")})
    rows = state[FAIRSEQ_ENCODER + "embed_tokens.weight"].shape[0]
    for name, have in (("num_hidden_layers", layers), ("vocab_size", rows)):
        if config.get(name) != have:
            raise GraFusionError(f"{path}: {name} is {config.get(name)} but the weights have {have}")


def read_weights(directory):
    """HF's state dict: ``model.safetensors`` with ``safetensors`` (no unpickling at all), else
    ``pytorch_model.bin`` through the same ``weights_only`` loading as checkpoints."""
    path = os.path.join(directory, SAFETENSORS)
    if os.path.isfile(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path), path
        except (SafetensorError, OSError, ValueError) as e:
            raise GraFusionError(f"{path}: cannot read the safetensors file ({e})") from None
    import torch

    from .checkpoint_compat import load_state

    path = os.path.join(directory, PYTORCH_BIN)
    state = load_state(path, what="HuggingFace weights")
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GraFusionError(f"{path}: not a HuggingFace state dict (values other than tensors)")
    return state, path


def _strip_prefix(state):
    """XLMRobertaModel's names have no prefix; *ForQuestionAnswering / *ForMaskedLM's ``roberta.``."""
    if any(k.startswith("roberta.") for k in state):
        return {(k[len("roberta."):] if k.startswith("roberta.") else k): v for k, v in state.items()}
    return dict(state)


def to_fairseq(hf_state, source):
    """An HF XLM-R state dict in fairseq's RoBERTa names (what ``--pretrained-xlmr`` reads from a
    ``model.pt``), plus ``qa_outputs.*`` when it has them."""
    state = _strip_prefix(hf_state)
    out = {}
    for ours, theirs in EMBEDDINGS.items():
        key = "embeddings." + theirs
        if key not in state:
            raise GraFusionError(f"{source}: parameter {key} is missing (not an XLM-R state dict)")
        out[FAIRSEQ_ENCODER + ours] = state[key]
    token_type = state.get("embeddings.token_type_embeddings.weight")
    if token_type is not None:  # every token has type 0
        out[FAIRSEQ_ENCODER + "embed_positions.weight"] = out[FAIRSEQ_ENCODER + "embed_positions.weight"] \
            + token_type[0]
    layers = {}
    for key in state:
        m = _HF_LAYER.match(key)
        if m:
            layers.setdefault(int(m.group(1)), set()).add(m.group(2))
    if not layers or sorted(layers) != list(range(len(layers))):
        raise GraFusionError(f"{source}: no consecutive encoder layers (encoder.layer.<i>.*) found")
    for i in range(len(layers)):
        for ours, theirs in LAYER.items():
            key = f"encoder.layer.{i}.{theirs}"
            if key not in state:
                raise GraFusionError(f"{source}: parameter {key} is missing")
            out[f"{FAIRSEQ_ENCODER}layers.{i}.{ours}"] = state[key]
    if all("lm_head." + name in state for name in LM_HEAD):
        for name in LM_HEAD:
            out["encoder.lm_head." + name] = state["lm_head." + name]
        out["encoder.lm_head.weight"] = out[FAIRSEQ_ENCODER + "embed_tokens.weight"]
    for key in QA_HEAD:
        if key in state:
            out[key] = state[key]
    return out


def vocabulary(directory):
    """HF's token list, id by id, with the file it came from: ``tokenizer.json``'s vocabulary if
    there is one, else ``sentencepiece.bpe.model`` numbered as XLM-R's tokenizer numbers it."""
    path = os.path.join(directory, TOKENIZER_JSON)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                vocab = json.load(f)["model"]["vocab"]
            if isinstance(vocab, dict):  # WordPiece / BPE: token -> id
                symbols = sorted(vocab, key=vocab.get)
            else:  # Unigram (XLM-R's): [piece, score] in id order
                symbols = [entry[0] if isinstance(entry, list) else entry for entry in vocab]
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            raise GraFusionError(f"{path}: cannot read the tokenizer's vocabulary ({e!r})") from None
        if "<mask>" not in symbols:
            symbols.append(MASK)  # added tokens live outside the model's vocabulary
        return symbols, path
    path = os.path.join(directory, SPM_FILE)
    if not os.path.isfile(path):
        raise GraFusionError(f"{directory}: neither {TOKENIZER_JSON} nor {SPM_FILE} (the vocabulary)")
    import sentencepiece as spm

    try:
        sp = spm.SentencePieceProcessor(model_file=path)
    except Exception as e:  # sentencepiece raises RuntimeError / OSError
        raise GraFusionError(f"{path}: cannot load the SentencePiece model ({e})") from None
    return list(SPECIALS) + [sp.id_to_piece(i) for i in range(3, sp.get_piece_size())] + [MASK], path


def check_vocabulary(symbols, source, dictionary, dict_label):
    """HF's vocabulary against the task's dictionary (``<mask>`` included), symbol by symbol."""
    ours = list(dictionary.symbols)
    for i, (a, b) in enumerate(zip(ours, symbols)):
        if a != b:
            raise GraFusionError(f"dictionary mismatch: symbol {i} is {a!r} in {dict_label} but {b!r} in "
                                 f"{source}; binarize the data with the dict.txt of this model "
                                 f"(grafusion-preprocess --dict <the HF directory>)")
    if len(ours) != len(symbols):
        raise GraFusionError(f"dictionary mismatch: {dict_label} has {len(ours)} symbols with <mask>, "
                             f"{source} has {len(symbols)}")


def dict_lines(symbols):
    """fairseq ``dict.txt`` lines of an HF vocabulary: what lies between the four specials and
    ``<mask>`` (fairseq's Dictionary adds those itself), each with count 1."""
    if tuple(symbols[:4]) != SPECIALS or symbols[-1] != MASK:
        raise GraFusionError(f"not XLM-R's vocabulary layout: it starts {symbols[:4]} and ends {symbols[-1]!r} "
                             f"(want {list(SPECIALS)} ... '<mask>')")
    return [f"{s} 1\n" for s in symbols[4:-1]]


def vocabulary_file(directory, option, work_dir):
    """``--spm DIR`` / ``--dict DIR`` of an XLM-R directory: its ``sentencepiece.bpe.model`` /
    ``dict.txt``; an HF directory's ``dict.txt`` is written from its vocabulary into
    ``work_dir`` (HF ships none)."""
    if option == "--spm":
        path = os.path.join(directory, SPM_FILE)
        if not os.path.isfile(path):
            raise GraFusionError(f"--spm {directory}: {SPM_FILE} is missing (the SentencePiece model)")
        return path
    path = os.path.join(directory, "dict.txt")
    if os.path.isfile(path) or not is_hf_directory(directory):
        if not os.path.isfile(path):
            raise GraFusionError(f"--dict {directory}: neither dict.txt (fairseq's XLM-R) nor {CONFIG} "
                                 f"(HuggingFace's)")
        return path
    read_config(directory)
    symbols, _ = vocabulary(directory)
    path = os.path.join(work_dir, "dict.txt")
    os.makedirs(work_dir, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(dict_lines(symbols))
    return path
