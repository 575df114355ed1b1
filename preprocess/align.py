"""Word alignment (stage ``align``): eflomal in both directions, grow-diag-final-and, Pharaoh I/O.

The unit of alignment is a *segment*: a question, a sentence of a passage when both passages
have the same number of sentences, else the whole passage (see :mod:`.pipeline`).  All segments
of a split go to eflomal in one call (plus optional extra parallel text that only helps the
model), so the model is estimated on the whole corpus.  Links are Pharaoh ``i-j`` pairs
(source word i, target word j), the format GIZA++, fast_align, eflomal and awesome-align write;
:func:`read_pharaoh` imports such a file, checked against the word counts.
"""
import os
import tempfile

import numpy as np

from fairseq_grafusion.errors import GraFusionError

# Koehn et al.'s neighbourhood: the four direct neighbours first, then the diagonals.
_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


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
        if not sep or not left.isdigit() or not right.isdigit():
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
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise GraFusionError(f"{path}: cannot read the alignment file ({e})") from None
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
    return " ".join("_".join(w.split()) or "_" for w in words)


def eflomal_align(src_lines, tgt_lines, extra=None, map_fn=map):
    """Symmetrised alignments of every line pair in one eflomal run.

    ``src_lines`` / ``tgt_lines``: whitespace-tokenised strings; ``extra``: optional
    ``(src_lines, tgt_lines)`` appended to the training data only.  Returns a list of link
    lists, one per input pair.  ``map_fn(func, items)`` runs the symmetrisation (a process
    pool's map spreads it over workers; eflomal itself runs its samplers in parallel).
    """
    import eflomal

    n = len(src_lines)
    if n != len(tgt_lines):
        raise GraFusionError(f"aligner input: {n} source but {len(tgt_lines)} target lines")
    if n == 0:
        return []
    src_all, tgt_all = list(src_lines), list(tgt_lines)
    if extra is not None:
        src_all += list(extra[0])
        tgt_all += list(extra[1])
    lens = [(len(s.split()), len(t.split())) for s, t in zip(src_all, tgt_all)]
    with tempfile.TemporaryDirectory(prefix="grafusion-eflomal-") as tmp:
        fwd, rev = os.path.join(tmp, "fwd"), os.path.join(tmp, "rev")
        eflomal.Aligner().align([s + "\n" for s in src_all], [t + "\n" for t in tgt_all],
                                links_filename_fwd=fwd, links_filename_rev=rev, quiet=True)
        with open(fwd, encoding="utf-8") as f:
            forward = f.read().splitlines()
        with open(rev, encoding="utf-8") as f:
            reverse = f.read().splitlines()
    if len(forward) < n or len(reverse) < n:
        raise GraFusionError(f"eflomal returned {len(forward)} / {len(reverse)} lines for {n} pairs")
    return list(map_fn(_symmetrise, [(k, forward[k], reverse[k], lens[k]) for k in range(n)]))


def _symmetrise(item):
    """grow-diag-final-and of line ``k``'s two eflomal directions."""
    k, forward, reverse, (n_src, n_tgt) = item
    f_links = parse_pharaoh_line(forward, f"eflomal forward line {k + 1}")
    r_links = parse_pharaoh_line(reverse, f"eflomal reverse line {k + 1}")
    return grow_diag_final_and(f_links, r_links, n_src, n_tgt)
