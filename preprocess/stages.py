"""The stages shared by the QA and the parallel chains: ``words``, ``align``, ``parse``.

Each stage reads the previous stage's JSONL (one record per unit, same order), writes its own
through :mod:`.workdir` (atomic, reused while up to date) and prints a summary.  A unit is a text
pair: ``src`` and ``tgt`` strings plus ``kind`` (``p`` passage, ``q`` question, ``s`` parallel
sentence).  Records are lists of ints (character offsets, word indices), flat as in the binary
format.
"""
import collections
import gc
import multiprocessing
import sys

import numpy as np
from tqdm import tqdm

from fairseq_grafusion.errors import GraFusionError

from . import align as align_mod
from . import parse as parse_mod
from .projection import project_answer
from .wordseg import Segmenter, tokenize, words_of
from .workdir import fingerprint, is_current, read_header, read_jsonl, write_jsonl


def log(message=""):
    """Progress and summaries go to stdout; stderr is kept for errors."""
    print(message, flush=True)


def progress(iterable, desc, total=None):
    """A tqdm bar on stderr when it is a terminal (silent in pipes and tests)."""
    return tqdm(iterable, desc=desc, total=total, disable=None, file=sys.stderr, leave=False)


class Summary:
    """Counters of one stage, printed as a short block."""

    def __init__(self, stage, name):
        self.stage, self.name = stage, name
        self.counts = collections.Counter()
        self.notes = []

    def __setitem__(self, key, value):
        self.counts[key] = value

    def __getitem__(self, key):
        return self.counts[key]

    def add(self, key, n=1):
        self.counts[key] += n

    def print(self):
        log(f"[{self.stage}] {self.name}")
        for key, value in self.counts.items():
            if isinstance(value, float):
                value = f"{value:.3f}"
            log(f"    {key}: {value}")
        for note in self.notes:
            log(f"    {note}")


def parallel_map(func, items, workers, desc, initializer=None, initargs=()):
    """``[func(x) for x in items]`` over ``workers`` processes (in order), with a progress bar."""
    items = list(items)
    if workers <= 1 or len(items) < 2:
        if initializer:
            initializer(*initargs)
        return [func(x) for x in progress(items, desc)]
    chunk = max(1, len(items) // (workers * 8))
    gc.freeze()  # the forked workers' garbage collector then leaves the parent's objects (and pages) alone
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer, initargs) as pool:
            return list(progress(pool.imap(func, items, chunksize=chunk), desc, total=len(items)))
    finally:
        gc.unfreeze()


class StageFile:
    """One stage's output: reuse it while its key matches, else compute and write it."""

    def __init__(self, path, stage, key, force):
        self.path, self.stage, self.key = path, stage, key
        self.fresh = force or not is_current(path, stage, key)

    def skip_message(self, name):
        log(f"[{self.stage}] {name}: up to date, reusing {self.path} (--force recomputes)")


def key_of(path):
    header = read_header(path)
    return header.get("key") if header else None


# -- words -------------------------------------------------------------------------------------
_SEGMENTERS = {}


def _init_segmenters(src_lang, tgt_lang, stanza_dir):
    _SEGMENTERS["src"] = Segmenter(src_lang, stanza_dir)
    _SEGMENTERS["tgt"] = Segmenter(tgt_lang, stanza_dir)


def _segment_unit(unit):
    out = {"uid": unit["uid"]}
    for side in ("src", "tgt"):
        offsets, starts = _SEGMENTERS[side].segment(unit[side])
        out[side], out[side[0] + "s"] = offsets, starts
    ns, nt = len(out["src"]) // 2, len(out["tgt"]) // 2
    ss, ts = out["ss"], out["ts"]
    if unit["kind"] == "p" and len(ss) == len(ts) > 1:
        out["seg"] = [[a, b, c, d] for a, b, c, d in zip(ss, ss[1:] + [ns], ts, ts[1:] + [nt])]
    else:
        out["seg"] = [[0, ns, 0, nt]]
    return out


def run_words(units_path, out_path, opts, name):
    """Stage ``words``: sentences, words and alignment segments of every unit."""
    key = fingerprint(src_lang=opts.src_lang, tgt_lang=opts.tgt_lang, stanza=opts.stanza_dir,
                      prev=key_of(units_path), version=1)
    stage = StageFile(out_path, "words", key, opts.force)
    if not stage.fresh:
        stage.skip_message(name)
        return
    units = read_jsonl(units_path, "pairs")
    records = parallel_map(_segment_unit, units, opts.workers, f"words {name}",
                           _init_segmenters, (opts.src_lang, opts.tgt_lang, opts.stanza_dir))
    s = Summary("words", name)
    s["units in"] = len(units)
    s["units out"] = len(records)
    for side, lang in (("src", opts.src_lang), ("tgt", opts.tgt_lang)):
        s[f"{side} ({lang}) words"] = sum(len(r[side]) // 2 for r in records)
        s[f"{side} ({lang}) sentences"] = sum(len(r[side[0] + "s"]) for r in records)
        s[f"{side} ({lang}) tokenizer"] = Segmenter(lang, opts.stanza_dir).backend
    empty = sum(1 for r in records if not r["src"] or not r["tgt"])
    s["units with an empty side"] = empty
    s["alignment segments"] = sum(len(r["seg"]) for r in records)
    write_jsonl(out_path, records, "words", key)
    s.print()


def segment_lines(units, words):
    """Aligner input lines and ``(n_src, n_tgt)`` per segment, over all units."""
    src_lines, tgt_lines, lengths = [], [], []
    for u, w in zip(units, words):
        sw, tw = words_of(u["src"], w["src"]), words_of(u["tgt"], w["tgt"])
        for a, b, c, d in w["seg"]:
            src_lines.append(align_mod.aligner_line(sw[a:b]))
            tgt_lines.append(align_mod.aligner_line(tw[c:d]))
            lengths.append((b - a, d - c))
    return src_lines, tgt_lines, lengths


def sentence_lines(units, words, side):
    """One line per sentence (words joined by spaces) of one side: input for external parsers."""
    lines = []
    for u, w in zip(units, words):
        ws = words_of(u[side], w[side])
        starts = w[side[0] + "s"]
        for a, b in zip(starts, starts[1:] + [len(ws)]):
            lines.append(align_mod.aligner_line(ws[a:b]))
    return lines


def write_text_file(path, lines):
    from .workdir import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


# -- align -------------------------------------------------------------------------------------
def _read_extra(extra, opts):
    """Extra parallel text for eflomal, tokenised like the data."""
    if not extra:
        return None, None
    src_path, tgt_path = extra
    texts = []
    for path in (src_path, tgt_path):
        try:
            with open(path, encoding="utf-8") as f:
                texts.append(f.read().splitlines())
        except (OSError, UnicodeDecodeError) as e:
            raise GraFusionError(f"{path}: cannot read --align-extra text ({e})") from None
    if len(texts[0]) != len(texts[1]):
        raise GraFusionError(f"--align-extra: {src_path} has {len(texts[0])} lines but {tgt_path} "
                             f"has {len(texts[1])}; parallel files must be line-aligned")
    lines = tuple([align_mod.aligner_line(words_of(t, tokenize(t, lang))) for t in side]
                  for side, lang in zip(texts, (opts.src_lang, opts.tgt_lang)))
    return lines, [p for p in extra]


def run_align(units_path, words_path, out_path, opts, name, alignments=None):
    """Stage ``align``: word links of every unit, and projected answers for translated sides."""
    extra_lines, extra_paths = _read_extra(opts.align_extra, opts) if not alignments else (None, None)
    key = fingerprint([alignments] + (extra_paths or []), prev=key_of(words_path), version=1)
    stage = StageFile(out_path, "align", key, opts.force)
    if not stage.fresh:
        stage.skip_message(name)
        return
    units, words = read_jsonl(units_path, "pairs"), read_jsonl(words_path, "words")
    src_lines, tgt_lines, lengths = segment_lines(units, words)
    s = Summary("align", name)
    s["units in"] = len(units)
    s["segments"] = len(lengths)
    if alignments:
        seg_links = align_mod.read_pharaoh(alignments, lengths)
        s.notes.append(f"links imported from {alignments}")
    else:
        log(f"[align] {name}: eflomal on {len(src_lines)} segment pairs"
            + (f" (+{len(extra_lines[0])} extra pairs for the model)" if extra_lines else ""))
        seg_links = align_mod.eflomal_align(
            src_lines, tgt_lines, extra_lines,
            map_fn=lambda func, items: parallel_map(func, items, opts.workers, f"align {name}"))
        s.notes.append("eflomal (both directions) + grow-diag-final-and")
    records, k = [], 0
    aligned = {"src": 0, "tgt": 0}
    total = {"src": 0, "tgt": 0}
    for u, w in zip(units, words):
        flat = []
        for a, b, c, d in w["seg"]:
            links = seg_links[k]
            k += 1
            for i, j in links:
                flat += (i + a, j + c)
            total["src"] += b - a
            total["tgt"] += d - c
            aligned["src"] += len({i for i, _ in links})
            aligned["tgt"] += len({j for _, j in links})
        records.append({"uid": u["uid"], "links": flat})
    s["links"] = sum(len(r["links"]) // 2 for r in records)
    for side in ("src", "tgt"):
        s[f"unaligned {side} word ratio"] = 1 - aligned[side] / max(total[side], 1)
    if any(u["kind"] == "q" for u in units):
        _project(units, words, records, s)
    write_jsonl(out_path, records, "align", key)
    s.print()


def _project(units, words, records, s):
    """Final answers of every question unit (projected where a side was translated)."""
    index = {u["uid"]: k for k, u in enumerate(units)}
    for u, rec in zip(units, records):
        if u["kind"] != "q":
            continue
        answers = {side: (u["answers"][side][0] if u["answers"][side] else None) for side in ("src", "tgt")}
        rec["answers"] = answers
        to = u.get("project")
        if not to:
            continue
        frm = "src" if to == "tgt" else "tgt"
        if answers[frm] is None:
            continue  # nothing to project (test data)
        s.add("answers to project")
        p = index[u["passage"]]
        links = np.asarray(records[p]["links"], dtype=np.int64).reshape(-1, 2)
        ans, reason = project_answer(answers[frm], words[p][frm], words[p][to], units[p][to], links,
                                     reverse=(frm == "tgt"))
        if ans is None and to == "src":
            # translate-test: the target keeps its gold answer; the English side has none
            s.add(f"projection to the translated English side failed: {reason} (question kept)")
        elif ans is None:
            s.add(f"projection failed: {reason} (question dropped)")
            rec["dropped"] = f"projection failed: {reason}"
        else:
            answers[to] = ans


# -- parse -------------------------------------------------------------------------------------
def _same_word_edges(item):
    forms, max_group = item
    return parse_mod.same_word_edges(forms, max_group)


def run_parse(units_path, words_path, out_path, opts, name, conllu=None):
    """Stage ``parse``: dependency arcs per unit and side, plus same-word edges for passages."""
    conllu = conllu or {}
    key = fingerprint([conllu.get("src"), conllu.get("tgt")], stanza=opts.stanza_dir,
                      same=opts.same_max_group, prev=key_of(words_path), version=1)
    stage = StageFile(out_path, "parse", key, opts.force)
    if not stage.fresh:
        stage.skip_message(name)
        return
    units, words = read_jsonl(units_path, "pairs"), read_jsonl(words_path, "words")
    s = Summary("parse", name)
    s["units in"] = len(units)
    records = [{"uid": u["uid"]} for u in units]
    for side, lang in (("src", opts.src_lang), ("tgt", opts.tgt_lang)):
        sentences, owners = [], []
        for k, (u, w) in enumerate(zip(units, words)):
            ws = words_of(u[side], w[side])
            starts = w[side[0] + "s"]
            for a, b in zip(starts, starts[1:] + [len(ws)]):
                sentences.append(ws[a:b])
                owners.append((k, a))
        if conllu.get(side):
            arcs = parse_mod.read_conllu(conllu[side], [len(x) for x in sentences])
            source = f"CoNLL-U {conllu[side]}"
        elif parse_mod.has_parser(lang, opts.stanza_dir):
            arcs = parse_mod.stanza_arcs(lang, opts.stanza_dir, sentences)
            source = f"Stanza ({opts.stanza_dir}, {parse_mod.stanza_device()}, batches of " \
                     f"{parse_mod.PARSE_BATCH_WORDS} words)"
        else:
            arcs = None
            source = "none"
            s.add("languages without a parser")
            log(f"warning: [parse] {name}: no dependency parser for '{lang}' ({side}): "
                f"alignment and same-word edges only (a {lang} depparse model in --stanza-dir, or "
                f"an imported CoNLL-U parse, adds dependency edges)")
        s[f"{side} ({lang}) parser"] = source
        for r in records:
            r[side] = []
        if arcs is not None:
            for (k, offset), sent_arcs in zip(owners, arcs):
                records[k][side] += [x + offset for x in sent_arcs]
        s[f"{side} dependency arcs"] = sum(len(r[side]) // 2 for r in records)
        todo = [k for k, u in enumerate(units) if u["kind"] in ("p", "s")]
        same = parallel_map(_same_word_edges, [(words_of(units[k][side], words[k][side]), opts.same_max_group)
                                               for k in todo], opts.workers, f"same-word edges {name}")
        for k, edges in zip(todo, same):
            records[k][side + "_same"] = edges
        s[f"{side} same-word edges"] = sum(len(r.get(side + "_same", [])) // 2 for r in records)
    write_jsonl(out_path, records, "parse", key)
    s.print()
