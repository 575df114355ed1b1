"""``grafusion-export-hf``: a one-stream checkpoint (``--no-fusion``, ``xlmr_translate_train_*``)
as a HuggingFace ``XLMRobertaForQuestionAnswering`` directory, to serve with HF's tooling.

The directory holds ``config.json``, ``model.safetensors`` and the training SentencePiece model
with XLM-R's tokenizer files.  HF's tokenizer numbers pieces as XLM-R does (``<s> <pad> </s>
<unk>``, SentencePiece ids from 3 on, ``<mask>``), so the embedding rows are reordered from the
data's ``dict.txt`` into that numbering; a piece the dictionary lacks gets ``<unk>``'s row, as our
encoder maps it.  The names are :mod:`fairseq_grafusion.hf_xlmr`'s, the other way round.  A
fusion model (GraFusion-MRC, FILTER) is refused: HF has no two-stream architecture.
"""
import argparse
import json
import logging
import os
import shutil
import tempfile

from ..console import run, setup_logging
from ..errors import GraFusionError
from ..files import resolved

logger = logging.getLogger("fairseq_grafusion.export_hf")

_EPILOG = """\
example:
  grafusion-export-hf --path checkpoints/checkpoint_best.pt --data data-bin \\
      --spm xlmr.base/sentencepiece.bpe.model --out my-qa-model
  python -c "from transformers import pipeline; qa = pipeline('question-answering', model='my-qa-model'); \\
      print(qa(question='...', context='...'))"
"""


def get_parser():
    parser = argparse.ArgumentParser(
        prog="grafusion-export-hf", epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a --no-fusion or xlmr_translate_train_* checkpoint as a HuggingFace "
                    "XLMRobertaForQuestionAnswering directory (safetensors, config, tokenizer).")
    parser.add_argument("--path", required=True, help="the checkpoint (fairseq-train --task xmrc_span)")
    parser.add_argument("--data", help="data directory with the dict.txt it was trained with (default: "
                                       "the checkpoint's directory if dict.txt is there)")
    parser.add_argument("--spm", help="the SentencePiece model the data was encoded with (default: "
                                      "sentencepiece.bpe.model beside the checkpoint or in --data)")
    parser.add_argument("--out", required=True, help="the directory to write (must not exist, or be empty)")
    return parser


def _beside(path, data, spm):
    here = os.path.dirname(path)
    data = data or (here if os.path.isfile(os.path.join(here, "dict.txt")) else None)
    if data is None:
        raise GraFusionError(f"--data: no dict.txt beside {path}; give the data directory it was trained on")
    if spm is None:
        from ..hf_xlmr import SPM_FILE

        spm = next((p for p in (os.path.join(here, SPM_FILE), os.path.join(data, SPM_FILE))
                    if os.path.isfile(p)), None)
        if spm is None:
            raise GraFusionError(f"--spm: no sentencepiece.bpe.model beside {path} or in {data}; give the "
                                 f"SentencePiece model the data was encoded with")
    elif not os.path.isfile(spm):
        raise GraFusionError(f"--spm {spm}: file not found")
    return data, spm


def one_stream_layers(model, path):
    """The one-stream model's transformer layers in order and its span head, by module name."""
    from ..models import FilterModel, GraFusionModel

    if getattr(model, "pretrain_heads", None) is not None or not isinstance(model, (GraFusionModel, FilterModel)):
        raise GraFusionError(f"{path}: not a span-extraction model of the plugin")
    if model.fusion:
        arch = getattr(model.cfg, "_name", None) or type(model).__name__
        raise GraFusionError(f"{path}: a two-stream model ({arch}: GraFusion-MRC or FILTER) has no HuggingFace "
                             f"counterpart (XLMRobertaForQuestionAnswering reads one stream); export a "
                             f"--no-fusion or xlmr_translate_train_* model")
    if isinstance(model, GraFusionModel):
        layers = ["tgt_bottom"] + [f"sa_layers.{i}" for i in range(len(model.sa_layers))] + ["tgt_top"]
        return layers, "tgt_span_head"
    return model.layer_names(), "span_head"


def hf_state(model, layers, head, row_of):
    """Our tensors under HF's names (``roberta.`` + :data:`~..hf_xlmr.EMBEDDINGS` / ``LAYER``,
    ``qa_outputs``), the word embeddings in the tokenizer's order ``row_of``."""
    import torch

    from ..hf_xlmr import EMBEDDINGS, LAYER

    ours = model.state_dict()
    out = {"roberta.embeddings." + theirs: ours[name] for name, theirs in EMBEDDINGS.items()}
    out["roberta.embeddings.word_embeddings.weight"] = ours["embed_tokens.weight"][torch.as_tensor(row_of)]
    dim = ours["embed_tokens.weight"].shape[1]
    out["roberta.embeddings.token_type_embeddings.weight"] = torch.zeros(1, dim)
    for i, module in enumerate(layers):
        for name, theirs in LAYER.items():
            out[f"roberta.encoder.layer.{i}.{theirs}"] = ours[f"{module}.{name}"]
    out["qa_outputs.weight"], out["qa_outputs.bias"] = ours[f"{head}.weight"], ours[f"{head}.bias"]
    return {k: v.detach().float().contiguous().clone() for k, v in out.items()}


def tokenizer_rows(spm_path, dictionary):
    """For each id of HF's XLM-R tokenizer built from ``spm_path``, the row of our embedding that
    our encoder uses for that piece; and how many pieces the dictionary lacks."""
    from ..hf_xlmr import SPM_FILE, vocabulary

    directory = tempfile.mkdtemp(prefix="export-hf-")
    try:
        shutil.copy(spm_path, os.path.join(directory, SPM_FILE))
        symbols, _ = vocabulary(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    rows = [dictionary.index(s) for s in symbols]
    missing = sum(1 for s, r in zip(symbols[4:-1], rows[4:-1]) if r == dictionary.unk())
    return rows, len(symbols), missing


def hf_config(cfg, layers, vocab_size):
    return {"architectures": ["XLMRobertaForQuestionAnswering"], "model_type": "xlm-roberta",
            "vocab_size": vocab_size, "hidden_size": cfg.encoder_embed_dim, "num_hidden_layers": layers,
            "num_attention_heads": cfg.encoder_attention_heads, "intermediate_size": cfg.encoder_ffn_embed_dim,
            "hidden_act": "gelu", "hidden_dropout_prob": cfg.dropout,
            "attention_probs_dropout_prob": cfg.attention_dropout,
            "max_position_embeddings": cfg.max_positions + 2, "type_vocab_size": 1, "initializer_range": 0.02,
            "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
            "position_embedding_type": "absolute", "use_cache": True, "classifier_dropout": None}


def tokenizer_files(max_len):
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                "pad_token": "<pad>", "cls_token": "<s>",
                "mask_token": {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False,
                               "single_word": False}}
    config = {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": max_len, **specials}
    return {"tokenizer_config.json": config, "special_tokens_map.json": specials}


def export(path, data, spm, out):
    """Write ``out`` (atomically: a temporary directory beside it, renamed at the end)."""
    from safetensors.torch import save_file

    from ..hf_xlmr import CONFIG, SAFETENSORS, SPM_FILE
    from ..inference import load_model

    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise GraFusionError(f"--out {out}: exists and is not an empty directory")
    model, task = load_model(path, data)
    layers, head = one_stream_layers(model, path)
    rows, vocab_size, missing = tokenizer_rows(spm, task.source_dictionary)
    if missing:
        logger.warning("%d SentencePiece pieces are not in %s: HF's tokenizer maps them to <unk>'s row, as "
                       "our encoder does", missing, os.path.join(data, "dict.txt"))
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
    try:
        save_file(hf_state(model, layers, head, rows), os.path.join(tmp, SAFETENSORS), metadata={"format": "pt"})
        files = {CONFIG: hf_config(model.cfg, len(layers), vocab_size), **tokenizer_files(model.cfg.max_positions)}
        for name, obj in files.items():
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=2)
                f.write("\n")
        shutil.copy(spm, os.path.join(tmp, SPM_FILE))
        os.replace(tmp, out)  # replaces an empty directory as well
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("%s (%d layers, %d tokens) -> %s (XLMRobertaForQuestionAnswering)", path, len(layers),
                vocab_size, out)


def main(argv=None):
    args = get_parser().parse_args(argv)
    setup_logging()
    path, out = resolved(args.path), resolved(args.out)
    if not os.path.isfile(path):
        raise GraFusionError(f"--path {path}: file not found")
    data, spm = _beside(path, resolved(args.data), resolved(args.spm))
    export(path, data, spm, out)


def cli_main():
    run("grafusion-export-hf", main)


if __name__ == "__main__":
    cli_main()
