"""Word alignment (stage ``align``): eflomal in both directions, grow-diag-final-and, Pharaoh I/O.

The unit of alignment is a *segment*: a question, a sentence of a passage when both passages
have the same number of sentences, else the whole passage (see :mod:`.units`).  All segments
of a split go to eflomal in one call (plus optional extra parallel text that only helps the
model), so the model is estimated on the whole corpus.

An alignment model can also be estimated once and applied to other text:
:func:`estimate_priors` (eflomal's priors from a bitext, saved and loaded with
:class:`AlignmentPriors`; :func:`eflomal_align_and_estimate` aligns the training split and returns
the model of that run), then :func:`align_with_priors` (eflomal started from them, for whole
splits: ``grafusion-preprocess`` aligns every other split so) or :class:`LexicalAligner` (in
this process, for a few questions at a time: the hub).  Links are Pharaoh ``i-j`` pairs (source
word i, target word j), the format GIZA++, fast_align, eflomal and awesome-align write;
:func:`read_pharaoh` imports such a file, checked against the word counts.
"""
import os
import re

import numpy as np

from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.files import read_text

from . import eflomal_run

# Koehn et al.'s neighbourhood: the four direct neighbours first, then the diagonals.
_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))
_INDEX = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit also accepts '²', which int() refuses


def grow_diag_final_and(forward, reverse, n_src, n_tgt):
    """Symmetrise two directional alignments (iterables of ``(i, j)``, source i, target j).

    Start from the intersection; grow it with union points that neighbour (also diagonally) an
    alignment point and cover a still unaligned source or target word, until nothing changes;
    then ("final-and") add union points from each direction whose source and target word are
    both unaligned.  Returns a sorted list of ``(i, j)``.
    """
    forward, reverse = set(map(tuple, forward)), set(map(tuple, reverse))
    union = forward | reverse
    current = forward & reverse
    src_aligned = np.zeros(n_src, dtype=bool)
    tgt_aligned = np.zeros(n_tgt, dtype=bool)
    rows = [set() for _ in range(n_src)]
    for i, j in current:
        src_aligned[i] = tgt_aligned[j] = True
        rows[i].add(j)

    def add(i, j):
        current.add((i, j))
        rows[i].add(j)
        src_aligned[i] = tgt_aligned[j] = True

    added = True
    while added:
        added = False
        for i in range(n_src):
            j = -1
            while True:  # the row's points in order, including points added during the scan
                later = [x for x in rows[i] if x > j]
                if not later:
                    break
                j = min(later)
                for di, dj in _NEIGHBOURS:
                    ni, nj = i + di, j + dj
                    if ((ni, nj) in union and (ni, nj) not in current
                            and (not src_aligned[ni] or not tgt_aligned[nj])):
                        add(ni, nj)
                        added = True
    for direction in (forward, reverse):
        for i, j in sorted(direction):
            if not src_aligned[i] and not tgt_aligned[j]:
                add(i, j)
    return sorted(current)


def parse_pharaoh_line(line, where):
    """``"0-0 1-2"`` -> ``[(0, 0), (1, 2)]``; a malformed link raises naming ``where``."""
    links = []
    for item in line.split():
        left, sep, right = item.partition("-")
        if not sep or not _INDEX.fullmatch(left) or not _INDEX.fullmatch(right):
            raise GraFusionError(f"{where}: '{item}' is not a Pharaoh link 'i-j'")
        links.append((int(left), int(right)))
    return links


def check_links(links, n_src, n_tgt, where):
    """Raise if a link points beyond a sentence of ``n_src`` / ``n_tgt`` words."""
    for i, j in links:
        if i >= n_src or j >= n_tgt:
            raise GraFusionError(
                f"{where}: link {i}-{j} is beyond the sentence pair "
                f"({n_src} source words, {n_tgt} target words)")


def read_pharaoh(path, lengths):
    """Links per segment from a Pharaoh file; ``lengths`` is ``[(n_src, n_tgt), ...]``."""
    lines = read_text(path, "alignment file").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(lengths):
        raise GraFusionError(f"{path}: {len(lines)} lines, but the split has {len(lengths)} "
                             "segments to align (one line per line of the aligner input files)")
    out = []
    for k, (line, (n_src, n_tgt)) in enumerate(zip(lines, lengths)):
        where = f"{path} line {k + 1}"
        links = parse_pharaoh_line(line, where)
        check_links(links, n_src, n_tgt, where)
        out.append(links)
    return out


def format_pharaoh(links):
    return " ".join(f"{i}-{j}" for i, j in links)


def aligner_line(words):
    """One line of aligner input: words joined by spaces (spaces inside a word become '_')."""
    line = " ".join(words)
    parts = line.split()
    if len(parts) == len(words) and " ".join(parts) == line:  # no word empty or holding a space
        return line
    return " ".join("_".join(w.split()) or "_" for w in words)


def _eflomal_links(src_lines, tgt_lines, priors=None, seed=eflomal_run.SEED, tmp_prefix=None,
                   processes=None):
    """eflomal's forward and reverse Pharaoh lines for every line pair (one seeded run,
    :mod:`.eflomal_run`; its files in ``tmp_prefix.tmp-XXXXXXXX``; ``processes`` as there)."""
    forward, reverse = eflomal_run.links(src_lines, tgt_lines, priors.lines() if priors is not None else None,
                                         seed, tmp_prefix, processes)
    if len(forward) < len(src_lines) or len(reverse) < len(src_lines):
        raise GraFusionError(f"eflomal returned {len(forward)} / {len(reverse)} lines for "
                             f"{len(src_lines)} pairs")
    return forward, reverse


def _symmetrise_line(item):
    """grow-diag-final-and of line ``k``'s two eflomal directions."""
    k, forward, reverse, (n_src, n_tgt) = item
    f_links = parse_pharaoh_line(forward, f"eflomal forward line {k + 1}")
    r_links = parse_pharaoh_line(reverse, f"eflomal reverse line {k + 1}")
    return grow_diag_final_and(f_links, r_links, n_src, n_tgt)


def _symmetrise(forward, reverse, src_lines, tgt_lines, map_fn=map):
    """Links of every pair of ``src_lines`` / ``tgt_lines`` (the first lines of ``forward`` /
    ``reverse``); ``map_fn`` may spread the lines over processes."""
    return list(map_fn(_symmetrise_line, [(k, forward[k], reverse[k], (len(s.split()), len(t.split())))
                                          for k, (s, t) in enumerate(zip(src_lines, tgt_lines))]))


def _with_extra(src_lines, tgt_lines, extra):
    """The aligner's training text: the line pairs, then ``extra``'s (if any)."""
    src_all, tgt_all = list(src_lines), list(tgt_lines)
    if extra is not None:
        src_all += list(extra[0])
        tgt_all += list(extra[1])
    return src_all, tgt_all


def _check_pairs(src_lines, tgt_lines):
    if len(src_lines) != len(tgt_lines):
        raise GraFusionError(f"aligner input: {len(src_lines)} source but {len(tgt_lines)} target lines")


def eflomal_align(src_lines, tgt_lines, extra=None, map_fn=map, seed=eflomal_run.SEED, tmp_prefix=None,
                  processes=None):
    """Symmetrised alignments of every line pair in one eflomal run.

    ``src_lines`` / ``tgt_lines``: whitespace-tokenised strings; ``extra``: optional
    ``(src_lines, tgt_lines)`` appended to the training data only; ``map_fn`` runs the
    symmetrisation (e.g. over ``--workers`` processes); ``seed`` seeds eflomal's sampler (same
    input and seed, same links); eflomal's files are in ``tmp_prefix.tmp-XXXXXXXX``
    while it runs; ``processes``: see :func:`.eflomal_run.links`.  Returns a
    list of link lists, one per input pair.
    """
    _check_pairs(src_lines, tgt_lines)
    if not src_lines:
        return []
    forward, reverse = _eflomal_links(*_with_extra(src_lines, tgt_lines, extra), seed=seed,
                                      tmp_prefix=tmp_prefix, processes=processes)
    return _symmetrise(forward, reverse, src_lines, tgt_lines, map_fn)


# -- an alignment model estimated once, applied to any text -------------------------------------
PRIORS_FILE = "alignment.priors"  # beside a model: the hub and grafusion-predict --qa load it


def priors_to_apply(model_dir, align_priors=None, align_extra=None):
    """The alignment model a model's questions are aligned with: ``align_priors``, else
    ``PRIORS_FILE`` in ``model_dir`` unless ``align_extra`` asks for one estimated anew, else None."""
    if align_priors or align_extra:
        return align_priors
    beside = os.path.join(model_dir, PRIORS_FILE)
    return beside if os.path.isfile(beside) else None


class AlignmentPriors:
    """eflomal's priors: what one eflomal run learnt, to be applied to other text.

    Held in the form of eflomal's priors file (``eflomal.read_priors``): ``lexical`` a list of
    ``(source word, target word, count)`` (the links of the estimating run, forward direction),
    ``hmm_forward`` / ``hmm_reverse`` ``{jump: count}``, ``fertility_forward`` /
    ``fertility_reverse`` lists of ``(word, fertility, count)``.  :meth:`save` writes eflomal's
    text format (``eflomal-align --priors`` / ``Aligner.align(priors_input=...)`` read it).
    """

    def __init__(self, lexical, hmm_forward, hmm_reverse, fertility_forward, fertility_reverse):
        self.lexical = lexical
        self.hmm_forward, self.hmm_reverse = hmm_forward, hmm_reverse
        self.fertility_forward, self.fertility_reverse = fertility_forward, fertility_reverse

    def lines(self):
        """The priors file's lines (eflomal's ``write_priors`` format, without newlines)."""
        out = [f"LEX\t{s}\t{t}\t{a:g}" for s, t, a in self.lexical]
        out += [f"FERF\t{w}\t{f}\t{a:g}" for w, f, a in self.fertility_forward]
        out += [f"FERR\t{w}\t{f}\t{a:g}" for w, f, a in self.fertility_reverse]
        out += [f"HMMF\t{j}\t{a:g}" for j, a in sorted(self.hmm_forward.items())]
        out += [f"HMMR\t{j}\t{a:g}" for j, a in sorted(self.hmm_reverse.items())]
        return out

    def save(self, path):
        """Write the priors file atomically."""
        from fairseq_grafusion.files import write_lines

        write_lines(path, self.lines())

    @classmethod
    def load(cls, path):
        """Read a priors file (as :meth:`save` or eflomal's ``makepriors`` write it)."""
        import eflomal

        try:
            with open(path, encoding="utf-8") as f:
                return cls(*eflomal.read_priors(f))
        except (OSError, UnicodeDecodeError) as e:
            raise GraFusionError(f"{path}: cannot read the alignment priors ({e})") from None
        except (ValueError, IndexError, TypeError):
            raise GraFusionError(f"{path}: not an eflomal priors file (lines 'LEX<TAB>src<TAB>tgt"
                                 "<TAB>count', 'HMMF<TAB>jump<TAB>count', ...)") from None


def priors_from_links(src_lines, tgt_lines, forward, reverse):
    """eflomal's own ``calculate_priors`` (what ``eflomal-makepriors`` writes) over the Pharaoh
    lines of both directions of every line pair."""
    import eflomal

    lexical, hmmf, hmmr, ferf, ferr = eflomal.calculate_priors(src_lines, tgt_lines, forward, reverse)
    return AlignmentPriors([(s, t, a) for (s, t), a in sorted(lexical.items())], dict(hmmf), dict(hmmr),
                           [(w, f, a) for (w, f), a in sorted(ferf.items())],
                           [(w, f, a) for (w, f), a in sorted(ferr.items())])


def estimate_priors(src_lines, tgt_lines):
    """eflomal's priors from line-aligned text (aligner lines, :func:`aligner_line`): one eflomal
    run in both directions, then :func:`priors_from_links` over its links."""
    _check_pairs(src_lines, tgt_lines)
    if not src_lines:
        raise GraFusionError("no parallel text to estimate the alignment priors from")
    forward, reverse = _eflomal_links(src_lines, tgt_lines)
    return priors_from_links(src_lines, tgt_lines, forward, reverse)


def eflomal_align_and_estimate(src_lines, tgt_lines, extra=None, map_fn=map, seed=eflomal_run.SEED,
                               tmp_prefix=None, processes=None):
    """:func:`eflomal_align` that also returns the alignment model of its run: ``(links of every
    line pair, AlignmentPriors)``, the priors over the links of every line pair and of ``extra``
    (the training split's run, whose model the other splits then apply)."""
    _check_pairs(src_lines, tgt_lines)
    src_all, tgt_all = _with_extra(src_lines, tgt_lines, extra)
    if not src_all:
        raise GraFusionError("no parallel text to estimate the alignment priors from")
    forward, reverse = _eflomal_links(src_all, tgt_all, seed=seed, tmp_prefix=tmp_prefix, processes=processes)
    links = _symmetrise(forward, reverse, src_lines, tgt_lines, map_fn)
    return links, priors_from_links(src_all, tgt_all, forward, reverse)


def align_with_priors(src_lines, tgt_lines, priors, map_fn=map, seed=eflomal_run.SEED, tmp_prefix=None,
                      processes=None):
    """Symmetrised alignments of every line pair by eflomal started from ``priors`` (estimated on
    other text, e.g. the training bitext): one eflomal run, links as :func:`eflomal_align`'s."""
    _check_pairs(src_lines, tgt_lines)
    if not src_lines:
        return []
    forward, reverse = _eflomal_links(list(src_lines), list(tgt_lines), priors, seed, tmp_prefix, processes)
    return _symmetrise(forward, reverse, src_lines, tgt_lines, map_fn)


class LexicalAligner:
    """Word alignment in this process from the lexical table of :class:`AlignmentPriors`, for a
    few sentence pairs at a time (the hub), where an eflomal run per question would cost a
    process and a sampler's burn-in.  Ours, not eflomal's model:

    * ``p(t | s) = c(s, t) / sum_t' c(s, t')`` and ``p(s | t) = c(s, t) / sum_s' c(s', t)`` from the
      priors' link counts ``c`` (lower-cased, as eflomal indexes words); a word pair with the same
      lower-cased form that holds a letter or digit (names, numbers) gets probability 1;
    * IBM-1's Viterbi alignment with fast_align's diagonal preference: each target word ``j``
      links the source word ``i`` maximising ``p(t_j | s_i) * exp(-tension * |(i + .5) / S -
      (j + .5) / T|)`` if that exceeds ``null_prob``, else stays unaligned; the reverse direction
      the same with ``p(s | t)``;
    * the two directions symmetrised with :func:`grow_diag_final_and`, as eflomal's links are.
    """

    def __init__(self, priors, tension=4.0, null_prob=0.05):
        self.tension, self.null_prob = tension, null_prob
        src = [s.lower() for s, _, _ in priors.lexical]
        tgt = [t.lower() for _, t, _ in priors.lexical]
        self.src_vocab = {w: k for k, w in enumerate(sorted(set(src)))}
        self.tgt_vocab = {w: k for k, w in enumerate(sorted(set(tgt)))}
        self.n_tgt = max(len(self.tgt_vocab), 1)
        s_ids = np.array([self.src_vocab[w] for w in src], dtype=np.int64)
        t_ids = np.array([self.tgt_vocab[w] for w in tgt], dtype=np.int64)
        counts = np.array([a for _, _, a in priors.lexical], dtype=np.float64)
        self.keys, inverse = np.unique(s_ids * self.n_tgt + t_ids, return_inverse=True)
        counts = np.bincount(inverse.reshape(-1), weights=counts, minlength=len(self.keys))
        key_src, key_tgt = self.keys // self.n_tgt, self.keys % self.n_tgt
        src_total = np.bincount(key_src, weights=counts, minlength=len(self.src_vocab))
        tgt_total = np.bincount(key_tgt, weights=counts, minlength=len(self.tgt_vocab))
        self.p_tgt_given_src = counts / np.maximum(src_total[key_src], 1e-12)
        self.p_src_given_tgt = counts / np.maximum(tgt_total[key_tgt], 1e-12)

    def translation_tables(self, src_words, tgt_words):
        """``p(t_j | s_i)`` and ``p(s_i | t_j)``, each (S, T)."""
        src = [w.lower() for w in src_words]
        tgt = [w.lower() for w in tgt_words]
        s_ids = np.array([self.src_vocab.get(w, -1) for w in src], dtype=np.int64)
        t_ids = np.array([self.tgt_vocab.get(w, -1) for w in tgt], dtype=np.int64)
        known = (s_ids[:, None] >= 0) & (t_ids[None, :] >= 0)
        key = s_ids[:, None] * self.n_tgt + t_ids[None, :]
        pos = np.minimum(np.searchsorted(self.keys, key), max(len(self.keys) - 1, 0))
        found = known & (self.keys[pos] == key) if len(self.keys) else np.zeros_like(known)
        forward = np.where(found, self.p_tgt_given_src[pos] if len(self.keys) else 0.0, 0.0)
        reverse = np.where(found, self.p_src_given_tgt[pos] if len(self.keys) else 0.0, 0.0)
        same = (np.array(src, dtype=object)[:, None] == np.array(tgt, dtype=object)[None, :]) \
            & np.array([any(c.isalnum() for c in w) for w in src])[:, None]
        return np.where(same, 1.0, forward), np.where(same, 1.0, reverse)

    def align_pair(self, src_words, tgt_words):
        """Sorted ``(i, j)`` links of one sentence pair."""
        n_src, n_tgt = len(src_words), len(tgt_words)
        if n_src == 0 or n_tgt == 0:
            return []
        forward, reverse = self.translation_tables(src_words, tgt_words)
        position = np.abs((np.arange(n_src)[:, None] + 0.5) / n_src - (np.arange(n_tgt)[None, :] + 0.5) / n_tgt)
        diagonal = np.exp(-self.tension * position)  # (S, T)
        score = forward * diagonal
        best_src = score.argmax(axis=0)  # (T,): each target word's source word
        keep = score[best_src, np.arange(n_tgt)] > self.null_prob
        forward_links = list(zip(best_src[keep].tolist(), np.nonzero(keep)[0].tolist()))
        score = reverse * diagonal
        best_tgt = score.argmax(axis=1)  # (S,): each source word's target word
        keep = score[np.arange(n_src), best_tgt] > self.null_prob
        reverse_links = list(zip(np.nonzero(keep)[0].tolist(), best_tgt[keep].tolist()))
        return grow_diag_final_and(forward_links, reverse_links, n_src, n_tgt)

    def align(self, src_lines, tgt_lines):
        """Links of every line pair (aligner lines), as :func:`eflomal_align` returns them."""
        _check_pairs(src_lines, tgt_lines)
        return [self.align_pair(s.split(), t.split()) for s, t in zip(src_lines, tgt_lines)]
