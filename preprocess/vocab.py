"""A SentencePiece model and fairseq ``dict.txt`` trained on local text (sample and tests).

Real runs use XLM-R's ``sentencepiece.bpe.model`` + ``dict.txt``; this builds a small pair of the
same kind: a BPE SentencePiece model and a dictionary listing every piece (except the control
symbols fairseq adds itself) with its count in the training text, most frequent first.
"""
import collections
import io
import os

from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.files import atomic_path


def train_vocab(text_lines, out_dir, vocab_size=1000, name="sentencepiece.bpe.model"):
    """Train ``out_dir/<name>`` and write ``out_dir/dict.txt``; returns both paths."""
    import sentencepiece as spm

    lines = [line.strip() for line in text_lines if line.strip()]
    if not lines:
        raise GraFusionError("no text to train a SentencePiece model on")
    os.makedirs(out_dir, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size,
        model_type="bpe", character_coverage=1.0, normalization_rule_name="identity",
        hard_vocab_limit=False, num_threads=1, minloglevel=2)
    spm_path, dict_path = os.path.join(out_dir, name), os.path.join(out_dir, "dict.txt")
    with atomic_path(spm_path) as tmp, open(tmp, "wb") as f:
        f.write(model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    counts = collections.Counter(p for ids in sp.encode(lines) for p in ids)
    pieces = [i for i in range(sp.get_piece_size())
              if not (sp.is_control(i) or sp.is_unknown(i))]
    pieces.sort(key=lambda i: (-counts[i], i))
    with atomic_path(dict_path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(f"{sp.id_to_piece(i)} {counts[i]}\n" for i in pieces)
    return spm_path, dict_path
