"""Parallel text as MT pipelines leave it, back to the raw text the pipeline reads.

``--parallel-format`` names what was done to the ``--parallel`` files (fairseq-preprocess'd raw
text files, ``fairseq-preprocess --dataset-impl raw``, are read as they are, with the format of
the text that went in):

* ``text``: raw text (nothing undone);
* ``bpe``: BPE'd with ``@@ `` continuation marks (subword-nmt, fastBPE): the marks are removed
  as fairseq's ``--remove-bpe`` removes them;
* ``moses``: tokenised and escaped by the Moses tokenizer (``&apos;``, ``&quot;``, ``@-@``):
  detokenised and unescaped with sacremoses' ``MosesDetokenizer`` of the side's language;
* ``moses-bpe``: both, BPE removed first (the usual moses + fastBPE / subword-nmt pipeline).

The words, alignment and parses are then computed on the restored text, as for raw input.
"""
from fairseq_grafusion.errors import GraFusionError

PARALLEL_FORMATS = ("text", "bpe", "moses", "moses-bpe")
BPE_SYMBOL = "@@ "


def remove_bpe(line):
    """``line`` without ``@@ `` marks (fairseq's ``post_process(line, "@@ ")``)."""
    return (line + " ").replace(BPE_SYMBOL, "").rstrip()


def restorer(fmt, lang):
    """A function ``line -> raw text`` for ``--parallel-format fmt`` of language ``lang``."""
    if fmt == "text":
        return lambda line: line
    if fmt == "bpe":
        return remove_bpe
    try:
        from sacremoses import MosesDetokenizer
    except ImportError:
        raise GraFusionError(f"--parallel-format {fmt} needs sacremoses: pip install "
                             "'fairseq-grafusion[mt]'") from None
    detok = MosesDetokenizer(lang=lang)
    if fmt == "moses":
        return lambda line: detok.detokenize(line.split())
    return lambda line: detok.detokenize(remove_bpe(line).split())
