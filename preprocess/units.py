"""The stages on units in memory: plain values in, plain values out, no files.

A *unit* is a text pair, a :class:`.unit.Unit`: ``src`` and ``tgt`` strings plus ``kind`` (``p``
passage, ``q`` question, ``s`` parallel sentence) and ``uid``.  Each stage makes one record per
unit, in the units' order; records hold lists of ints (character offsets, word indices), flat as
in the binary format.  :mod:`.stages` runs these functions between the stage files of a run; the
hub calls them on the questions it is asked, without files.

=============  ===============================  =============================================
stage          function                         record per unit
=============  ===============================  =============================================
``words``      :func:`segment_units`            ``src`` / ``tgt`` word offsets, ``ss`` / ``ts``
                                                sentence starts, ``seg`` alignment segments
``align``      :func:`segment_lines`, an        ``links`` (flat source/target word pairs),
               aligner, :func:`link_units`,     ``answers`` of a question (projected where a
               :func:`project_answers`          side was translated), ``dropped``
``parse``      :func:`parse_units`              ``src`` / ``tgt`` dependency arcs,
                                                ``src_same`` / ``tgt_same`` same-word edges
``binarize``   :func:`example_tasks`,           windows: ``(uid, fields)`` examples of
               :func:`build_examples` /         :class:`fairseq_grafusion.data.PairWriter`
               :func:`iter_examples`
=============  ===============================  =============================================
"""
import collections
import functools

import numpy as np

from . import align as align_mod
from . import parse as parse_mod
from .binarize import build_group, use_encoder
from .parallel import build_sentences
from .projection import project_answer
from .runner import parallel_iter, parallel_map
from .wordseg import Segmenter, words_of

SENTENCES_PER_TASK = 64  # parallel text: sentence pairs per binarize task


# -- words -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def segmenter(lang, stanza_dir=None):
    """The :class:`.wordseg.Segmenter` of a language, made once per process."""
    return Segmenter(lang, stanza_dir)


def segment_unit(unit, src_lang, tgt_lang, stanza_dir=None):
    """The ``words`` record of one unit."""
    out = {"uid": unit.uid}
    for side, lang in (("src", src_lang), ("tgt", tgt_lang)):
        offsets, starts = segmenter(lang, stanza_dir).segment(unit.text(side))
        out[side], out[side[0] + "s"] = offsets, starts
    ns, nt = len(out["src"]) // 2, len(out["tgt"]) // 2
    ss, ts = out["ss"], out["ts"]
    if unit.kind == "p" and len(ss) == len(ts) > 1:
        out["seg"] = [[a, b, c, d] for a, b, c, d in zip(ss, ss[1:] + [ns], ts, ts[1:] + [nt])]
    else:
        out["seg"] = [[0, ns, 0, nt]]
    return out


def segment_units(units, src_lang, tgt_lang, stanza_dir=None, workers=1, desc="words"):
    """Stage ``words``: sentences, words and alignment segments of every unit."""
    func = functools.partial(segment_unit, src_lang=src_lang, tgt_lang=tgt_lang, stanza_dir=stanza_dir)
    return parallel_map(func, units, workers, desc)


# -- align -------------------------------------------------------------------------------------
def segment_lines(units, words):
    """Aligner input lines and ``(n_src, n_tgt)`` per segment, over all units."""
    src_lines, tgt_lines, lengths = [], [], []
    for u, w in zip(units, words):
        sw, tw = words_of(u.src, w["src"]), words_of(u.tgt, w["tgt"])
        for a, b, c, d in w["seg"]:
            src_lines.append(align_mod.aligner_line(sw[a:b]))
            tgt_lines.append(align_mod.aligner_line(tw[c:d]))
            lengths.append((b - a, d - c))
    return src_lines, tgt_lines, lengths


def sentence_lines(units, words, side):
    """One line per sentence (words joined by spaces) of one side: input for external parsers."""
    lines = []
    for u, w in zip(units, words):
        ws = words_of(u.text(side), w[side])
        starts = w[side[0] + "s"]
        for a, b in zip(starts, starts[1:] + [len(ws)]):
            lines.append(align_mod.aligner_line(ws[a:b]))
    return lines


def link_units(units, words, segment_links, stats=None):
    """``align`` records from the links of every segment (as :func:`segment_lines` ordered them):
    segment word indices become unit word indices.  Counts links and unaligned word ratios."""
    stats = stats if stats is not None else collections.Counter()
    records, k = [], 0
    aligned = {"src": 0, "tgt": 0}
    total = {"src": 0, "tgt": 0}
    for u, w in zip(units, words):
        flat = []
        for a, b, c, d in w["seg"]:
            links = segment_links[k]
            k += 1
            for i, j in links:
                flat += (i + a, j + c)
            total["src"] += b - a
            total["tgt"] += d - c
            aligned["src"] += len({i for i, _ in links})
            aligned["tgt"] += len({j for _, j in links})
        records.append({"uid": u.uid, "links": flat})
    stats["links"] = sum(len(r["links"]) // 2 for r in records)
    for side in ("src", "tgt"):
        stats[f"{side} words aligned / in segments"] = (aligned[side], total[side])
        stats[f"unaligned {side} word ratio"] = unaligned_ratio(aligned[side], total[side])
    return records


def unaligned_ratio(aligned, total):
    """The share of a language's words without a link (0 words: 1.0); one formula for a split and
    for the shards ``merge`` joins, so that both give the same float."""
    return 1 - aligned / max(total, 1)


def project_answers(units, words, records, stats=None):
    """Final answers of every question unit (projected where a side was translated), into its
    ``align`` record; a question whose projection fails is marked ``dropped``."""
    stats = stats if stats is not None else collections.Counter()
    index = {u.uid: k for k, u in enumerate(units)}
    for u, rec in zip(units, records):
        if u.kind != "q":
            continue
        answers = {side: (u.answers[side][0] if u.answers[side] else None) for side in ("src", "tgt")}
        rec["answers"] = answers
        to = u.project
        if not to:
            continue
        frm = "src" if to == "tgt" else "tgt"
        if answers[frm] is None:
            continue  # nothing to project (test data)
        stats["answers to project"] += 1
        p = index[u.passage]
        links = np.asarray(records[p]["links"], dtype=np.int64).reshape(-1, 2)
        ans, reason = project_answer(answers[frm], words[p][frm], words[p][to], units[p].text(to), links,
                                     reverse=(frm == "tgt"))
        if ans is None and to == "src":
            # translate-test: the target keeps its gold answer; the English side has none
            stats[f"projection to the translated English side failed: {reason} (question kept)"] += 1
        elif ans is None:
            stats[f"projection failed: {reason} (question dropped)"] += 1
            rec["dropped"] = f"projection failed: {reason}"
        else:
            answers[to] = ans


def unlinked(units):
    """``align`` records without links (a model that does not read them skips the aligner)."""
    return [{"uid": u.uid, "links": []} for u in units]


# -- parse -------------------------------------------------------------------------------------
def parser_of(lang, stanza_dir=None, conllu=None):
    """Where a side's dependency arcs come from: ``"CoNLL-U FILE"``, ``"Stanza (DIR, device, batch)"`` or None."""
    if conllu:
        return f"CoNLL-U {conllu}"
    if parse_mod.has_parser(lang, stanza_dir):
        return (f"Stanza ({stanza_dir}, {parse_mod.stanza_device()}, batches of "
                f"{parse_mod.PARSE_BATCH_WORDS} words)")
    return None


def parse_units(units, words, src_lang, tgt_lang, stanza_dir=None, conllu=None, same_max_group=8,
                workers=1, desc="parse"):
    """Stage ``parse``: dependency arcs per unit and side (none for a language without a
    parser, see :func:`parser_of`), plus same-word edges for passages and sentences (over
    ``workers`` processes)."""
    conllu = conllu or {}
    records = [{"uid": u.uid, "src": [], "tgt": []} for u in units]
    for side, lang in (("src", src_lang), ("tgt", tgt_lang)):
        if conllu.get(side) or parse_mod.has_parser(lang, stanza_dir):
            sentences, owners = [], []
            for k, (u, w) in enumerate(zip(units, words)):
                ws = words_of(u.text(side), w[side])
                starts = w[side[0] + "s"]
                for a, b in zip(starts, starts[1:] + [len(ws)]):
                    sentences.append(ws[a:b])
                    owners.append((k, a))
            if conllu.get(side):
                arcs = parse_mod.read_conllu(conllu[side], [len(x) for x in sentences])
            else:
                arcs = parse_mod.stanza_arcs(lang, stanza_dir, sentences)
            for (k, offset), sent_arcs in zip(owners, arcs):
                records[k][side] += [x + offset for x in sent_arcs]
        owners = [k for k, u in enumerate(units) if u.kind in ("p", "s")]
        tasks = [(units[k].text(side), words[k][side], same_max_group) for k in owners]
        for k, edges in zip(owners, parallel_map(_same_word_edges, tasks, workers, f"{desc} same-word {side}")):
            records[k][side + "_same"] = edges
    return records


def _same_word_edges(task):
    text, offsets, max_group = task
    return parse_mod.same_word_edges(words_of(text, offsets), max_group)


def unparsed(units):
    """``parse`` records without arcs or same-word edges (a model without dependency edges)."""
    return [{"uid": u.uid, "src": [], "tgt": []} for u in units]


# -- binarize ----------------------------------------------------------------------------------
def example_tasks(chain, units, words, aligns, parses, window_options):
    """The binarize work of a chain's records: ``(func, tasks)`` with ``func`` =
    :func:`.binarize.build_group` and one task per passage group (``qa``), or
    :func:`.parallel.build_sentences` and one task per :data:`SENTENCES_PER_TASK` sentence pairs
    (``parallel``)."""
    records = list(zip(units, words, aligns, parses))
    if chain == "qa":
        tasks, current = [], None
        for rec in records:
            if rec[0].kind == "p":
                current = (rec, [], window_options)
                tasks.append(current)
            else:
                current[1].append(rec)
        return build_group, tasks
    size = SENTENCES_PER_TASK
    return build_sentences, [(records[k:k + size], window_options) for k in range(0, len(records), size)]


def build_examples(func, tasks, encoder, workers=1, desc="binarize"):
    """``([(uid, fields)], counts)``: ``func`` over ``tasks`` with ``encoder`` (an
    :class:`.encode.Encoder`), in this process or in ``workers`` forked processes."""
    examples, counts = [], collections.Counter()
    for part in iter_examples(func, tasks, encoder, counts, workers, desc):
        examples += part
    return examples, counts


def iter_examples(func, tasks, encoder, counts, workers=1, desc="binarize", layout=None):
    """:func:`build_examples` task by task: yields each task's ``[(uid, fields)]`` in order as
    the workers finish it (so that writing overlaps building) and adds its counts to ``counts``.
    With ``layout`` (a writer's :class:`fairseq_grafusion.data.pair_binary.ExampleLayout`) the
    examples come checked and cast by the workers (``layout.prepare``), for ``add_prepared``."""
    work = func if layout is None else functools.partial(_prepared, func, layout)
    for part, part_counts in parallel_iter(work, tasks, workers, desc, use_encoder, (encoder,)):
        counts.update(part_counts)
        yield part


def _prepared(func, layout, task):
    part, part_counts = func(task)
    return [layout.prepare(uid, fields) for uid, fields in part], part_counts


def gold_questions(units, aligns, kept, side):
    """``(passages, questions)`` of one side for :func:`fairseq_grafusion.squad.write_squad`:
    the questions in ``kept`` with the contexts the token offsets point into (translations
    included) and every gold answer (or the projected one)."""
    passages, questions, index = [], [], {}
    for unit, rec in zip(units, aligns):
        if unit.kind == "p":
            index[unit.uid] = len(passages)
            passages.append({"context": unit.text(side), "title": ""})
        elif unit.uid in kept:
            given = unit.answers[side]
            answers = given or ([rec["answers"][side]] if rec.get("answers", {}).get(side) else [])
            questions.append({"id": unit.uid, "question": unit.text(side),
                              "passage": index[unit.passage], "answers": answers})
    return passages, questions
