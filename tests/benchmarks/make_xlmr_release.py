"""A release of XLM-R's exact shape with random weights, in fairseq's release layout: what
``--pretrained-xlmr DIR`` reads from ``xlmr.base`` / ``xlmr.large``, for rehearsals at real size
without the real weights (issue 22).

    python tests/benchmarks/make_xlmr_release.py --size large --out xlmr.large-random

writes ``DIR/model.pt`` (``args`` as a Namespace of task ``multilingual_masked_lm``, arch
``roberta_{base,large}``; the released key names: ``decoder.sentence_encoder.*``,
``emb_layer_norm``, RoBERTa's LM head), ``DIR/dict.txt`` (249,997 lines: with fairseq's four
specials and ``<mask>``, 250,002 symbols) and ``DIR/sentencepiece.bpe.model`` with 250,000 pieces:
the pieces of a real SentencePiece model (default: the bundled XQuAD sample's, so that real text
is cut as it would be there) followed by unique filler pieces of a very low score, which text never
selects.  ``dict.txt`` lists the pieces from id 3 on in SentencePiece order, as XLM-R's does.
"""
import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPM_DEFAULT = os.path.join(REPO, "examples", "sample", "spm-xquad", "sentencepiece.bpe.model")
SIZES = {"base": (768, 3072, 12, 12), "large": (1024, 4096, 16, 24)}  # d, FFN, heads, layers
PIECES = 250000  # SentencePiece pieces of XLM-R's model; + <pad> and <mask>: 250,002 symbols
MAX_POSITIONS = 512


def spm_of_size(source, pieces):
    """``source``'s SentencePiece model grown to ``pieces`` pieces with fillers (serialized)."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    with open(source, "rb") as f:
        proto.ParseFromString(f.read())
    have = {p.piece for p in proto.pieces}
    floor = min(p.score for p in proto.pieces) - 100.0
    i = 0
    while len(proto.pieces) < pieces:
        piece = f"\u2581\u2042{i:06d}"  # ▁⁂000000: no text of ours holds it
        i += 1
        if piece not in have:
            new = proto.pieces.add()
            new.piece, new.score, new.type = piece, floor, 1  # NORMAL
    proto.trainer_spec.vocab_size = len(proto.pieces)
    return proto.SerializeToString()


def release_args(size):
    """The ``args`` Namespace of a fairseq masked-LM release of ``size``."""
    from argparse import Namespace

    d, ffn, heads, layers = SIZES[size]
    return Namespace(
        task="multilingual_masked_lm", arch=f"roberta_{size}", criterion="masked_lm", optimizer="adam",
        lr_scheduler="polynomial_decay", encoder_layers=layers, encoder_embed_dim=d, encoder_ffn_embed_dim=ffn,
        encoder_attention_heads=heads, max_positions=MAX_POSITIONS, tokens_per_sample=MAX_POSITIONS,
        activation_fn="gelu", pooler_activation_fn="tanh", dropout=0.1, attention_dropout=0.1,
        activation_dropout=0.0, pooler_dropout=0.0, encoder_layerdrop=0.0, encoder_normalize_before=False,
        untie_weights_roberta=False, spectral_norm_classification_head=False, sample_break_mode="complete",
        data="", seed=1, fp16=True, lr=[0.0001], max_update=1, update_freq=[1], clip_norm=0.0,
        adam_betas="(0.9, 0.98)", adam_eps=1e-06, weight_decay=0.01)


def release_state(size, vocab, seed=0):
    """Random tensors under the released names (``decoder.sentence_encoder.*``), XLM-R's shapes."""
    import torch

    d, ffn, _, layers = SIZES[size]
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g).mul_(0.02)

    enc = "decoder.sentence_encoder."
    state = {enc + "embed_tokens.weight": rand(vocab, d),
             enc + "embed_positions.weight": rand(MAX_POSITIONS + 2, d),
             enc + "emb_layer_norm.weight": torch.ones(d), enc + "emb_layer_norm.bias": torch.zeros(d)}
    for i in range(layers):
        p = f"{enc}layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            state[f"{p}self_attn.{name}.weight"], state[f"{p}self_attn.{name}.bias"] = rand(d, d), torch.zeros(d)
        state[f"{p}fc1.weight"], state[f"{p}fc1.bias"] = rand(ffn, d), torch.zeros(ffn)
        state[f"{p}fc2.weight"], state[f"{p}fc2.bias"] = rand(d, ffn), torch.zeros(d)
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            state[f"{p}{norm}.weight"], state[f"{p}{norm}.bias"] = torch.ones(d), torch.zeros(d)
    state["decoder.lm_head.weight"] = state[enc + "embed_tokens.weight"]
    state["decoder.lm_head.bias"] = torch.zeros(vocab)
    state["decoder.lm_head.dense.weight"], state["decoder.lm_head.dense.bias"] = rand(d, d), torch.zeros(d)
    state["decoder.lm_head.layer_norm.weight"] = torch.ones(d)
    state["decoder.lm_head.layer_norm.bias"] = torch.zeros(d)
    return state


def write_release(size, out, spm=SPM_DEFAULT, pieces=PIECES, seed=0):
    import torch

    os.makedirs(out, exist_ok=True)
    model = spm_of_size(spm, pieces)
    with open(os.path.join(out, "sentencepiece.bpe.model"), "wb") as f:
        f.write(model)
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_proto=model)
    with open(os.path.join(out, "dict.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{sp.id_to_piece(i)} 1\n" for i in range(3, sp.get_piece_size()))
    vocab = 4 + (sp.get_piece_size() - 3) + 1
    state = {"args": release_args(size), "model": release_state(size, vocab, seed),
             "optimizer_history": [{"criterion_name": "MaskedLmLoss", "optimizer_name": "FairseqAdam",
                                    "lr_scheduler_state": {"best": None}, "num_updates": 0}],
             "extra_state": {}, "last_optimizer_state": None}
    tmp = os.path.join(out, "model.pt.tmp")
    torch.save(state, tmp)
    os.replace(tmp, os.path.join(out, "model.pt"))
    return vocab


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--spm", default=SPM_DEFAULT, help="the real SentencePiece model to grow (default: %(default)s)")
    p.add_argument("--pieces", type=int, default=PIECES)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    start = time.time()
    vocab = write_release(args.size, args.out, args.spm, args.pieces, args.seed)
    size = os.path.getsize(os.path.join(args.out, "model.pt")) / 2 ** 30
    print(f"{args.out}: xlmr.{args.size} shapes, {vocab} symbols, model.pt {size:.2f} GiB "
          f"({time.time() - start:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
