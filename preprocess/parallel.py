"""The parallel-corpus chain (``parallel``): line-aligned text -> ``sa_graph_pretrain`` data.

Each line pair is one unit (``kind "s"``) that goes through the same ``words``, ``align`` and
``parse`` stages as QA data; :func:`build_sentences` writes one example per pair, each stream
``[<s> sentence </s>]`` (word nodes: ``<s>``, the sentence's nodes, ``</s>``; the sentence encoded
once as raw text, nodes and edges as in :mod:`.binarize`), cut at ``--max-len`` tokens at a node
boundary, with ``with_span=False``.  Empty lines are skipped and counted; a line with a NUL byte
(binary data, or a UTF-16 file) is an error naming the file and line, or, with ``--skip-bad``,
skipped and counted.
"""
import collections

import numpy as np

from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.files import read_text

from .binarize import Encoded, current_encoder, node_links
from .text_formats import restorer
from .unit import Unit


def read_lines(path):
    """Lines of a text file (split at ``\\n`` only, a last empty line dropped), read as every
    input is (:func:`fairseq_grafusion.files.read_text`)."""
    lines = read_text(path, "parallel text").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def count_lines(path):
    """The number of lines :func:`read_lines` gives, without keeping them."""
    n, last = 0, b"\n"
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                n += block.count(b"\n")
                last = block[-1:]
    except OSError as e:
        raise GraFusionError(f"parallel text {path}: cannot read ({e.strerror or e})") from None
    return n + (last != b"\n")


def check_line_counts(src_path, tgt_path, n_src, n_tgt):
    if n_src != n_tgt:
        raise GraFusionError(f"{src_path} has {n_src} lines but {tgt_path} has {n_tgt} (first "
                             f"unmatched line: {min(n_src, n_tgt) + 1}); parallel files must be line-aligned")


def check_parallel_files(src_path, tgt_path):
    """The cheap check of :func:`read_parallel` (equal line counts), run before any stage."""
    check_line_counts(src_path, tgt_path, count_lines(src_path), count_lines(tgt_path))


def check_no_nul(path, lines):
    """One line naming the first line of ``lines`` (read from ``path``) with a NUL byte."""
    bad = next((k for k, line in enumerate(lines) if "\0" in line), None)
    if bad is not None:
        raise GraFusionError(f"{path} line {bad + 1}: a NUL byte (binary data, or a file that is "
                             "not UTF-8 text, e.g. UTF-16)")


def read_parallel(src_path, tgt_path, stats, fmt="text", langs=(None, None), skip_bad=False):
    """Units from two line-aligned files (a line count mismatch is an error), each line restored
    to raw text from ``fmt`` (:data:`.text_formats.PARALLEL_FORMATS`) in the side's language of
    ``langs``; a line pair with a NUL byte is an error, or skipped and counted with ``skip_bad``."""
    texts = [read_lines(path) for path in (src_path, tgt_path)]
    check_line_counts(src_path, tgt_path, *map(len, texts))
    if not skip_bad:
        for path, lines in zip((src_path, tgt_path), texts):
            try:
                check_no_nul(path, lines)
            except GraFusionError as e:
                raise GraFusionError(f"{e}; --skip-bad skips such line pairs") from None
    if fmt != "text":
        texts = [[restore(line) for line in side]
                 for side, restore in zip(texts, (restorer(fmt, lang) for lang in langs))]
        stats[f"line pairs restored from {fmt}"] = len(texts[0])
    units = []
    for k, (s, t) in enumerate(zip(*texts)):
        if "\0" in s or "\0" in t:
            stats["line pairs with a NUL byte (skipped)"] += 1
            continue
        if not s.strip() or not t.strip():
            stats["empty line pairs (skipped)"] += 1
            continue
        units.append(Unit("s", f"{k + 1}", k, s, t))
    stats["line pairs in"] = len(texts[0])
    stats["sentence pairs out"] = len(units)
    if not units:
        raise GraFusionError(f"{src_path} / {tgt_path}: no non-empty line pairs")
    return units


def _sentence_stream(enc, side, arcs, max_len):
    n_words = int(np.searchsorted(side.cum, max_len - 2, side="right")) - 1
    cut = n_words < side.n_words
    if n_words == 0 and side.n_words:
        n_words = 1
    n_tok = min(int(side.cum[n_words]), max_len - 2)
    tok = np.concatenate([[enc.bos], side.ids[:n_tok], [enc.eos]])
    word = np.concatenate([[0], side.word[:n_tok] + 1, [n_words + 1]])
    arcs = arcs[(arcs < n_words).all(axis=1)] + 1 if len(arcs) else arcs.reshape(-1, 2)
    return tok, word, arcs, n_words, cut


def build_sentences(task):
    """Examples of a chunk of sentence units: ``[(unit, words, align, parse), ...]``."""
    enc = current_encoder()
    items, opts = task
    out, stats = [], collections.Counter()
    for unit, words, align, parse in items:
        fields, n, encoded = {}, {}, {}
        for side in ("src", "tgt"):
            e = encoded[side] = Encoded(enc, unit.text(side), words[side])
            arcs = e.arcs(parse[side], parse.get(side + "_same", []))
            tok, word, arcs, n[side], cut = _sentence_stream(enc, e, arcs, opts["max_len"])
            stats["truncated streams"] += cut
            fields[f"{side}_tok"], fields[f"{side}_word"], fields[f"{side}_dep"] = tok, word, arcs.reshape(-1)
        links = node_links(align["links"], encoded["src"], encoded["tgt"])
        links = links[(links[:, 0] < n["src"]) & (links[:, 1] < n["tgt"])] + 1
        special = np.array([[0, 0], [n["src"] + 1, n["tgt"] + 1]])
        fields["align"] = np.concatenate([special, links.reshape(-1, 2)]).reshape(-1)
        out.append((unit.uid, fields))
    return out, dict(stats)
