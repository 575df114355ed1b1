"""The stages of a run, one function each: ``run_<stage>(paths, cfg)``.

Each reads the previous stage's files of one split (:class:`.workdir.SplitPaths`), computes its
records with the functions of :mod:`.units` (plain values, no files), writes its own files
(atomically; reused while up to date, :class:`.workdir.StageFile`) and prints a summary.
``cfg`` is the :class:`.config.PipelineConfig` of the run.
"""
import collections
import json
import os

from fairseq_grafusion import digests
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.files import write_lines
from fairseq_grafusion.squad import read_squad, write_squad

from . import align as align_mod
from . import units as unit_ops
from .pairing import make_units
from .parallel import check_line_counts, check_no_nul, read_lines, read_parallel
from .runner import Summary, log, parallel_map
from .unit import Unit
from .workdir import (
    StageFile,
    fingerprint,
    key_of,
    priors_path,
    read_header,
    read_jsonl,
    read_stamp,
    write_jsonl,
    write_stamp,
)


def _shard(units, cfg):
    """Shard ``shard_id`` of ``num_shards``: the ``shard_id``-th of ``num_shards`` contiguous,
    about equal blocks of passage groups (line indices), so that ``merge``, concatenating the
    shards in order, gives the units in the order of one run over the whole split."""
    if cfg.num_shards == 1:
        return units
    groups = sorted({u.group for u in units})
    block = {g: rank * cfg.num_shards // len(groups) for rank, g in enumerate(groups)}
    return [u for u in units if block[u.group] == cfg.shard_id]


def _pairs_version(cfg):
    """3 for a shard (shards became contiguous blocks of passages), 2 for a whole split, whose
    units did not change: an unsharded run's stage files stay up to date."""
    return 3 if cfg.num_shards > 1 else 2


def read_units(paths):
    """The :class:`.unit.Unit` list of ``paths.units`` (the ``pairs`` stage file)."""
    return [Unit.from_record(r) for r in read_jsonl(paths.units, "pairs")]


def write_units(paths, units, key):
    """Write ``units`` as ``paths.units``, one :meth:`.unit.Unit.record` per line."""
    write_jsonl(paths.units, [u.record() for u in units], "pairs", key)


def translator_for(cfg):
    """``translator_for(from_lang, to_lang)`` loading the ``--mt-*`` model of that direction, or
    None without one."""
    return cfg.mt.translator_for(cfg.src_lang, cfg.tgt_lang) if cfg.mt else None


def run_pairs(paths, cfg, src_file, tgt_file):
    """Stage ``pairs``: reads the split's SQuAD files (``QA`` chain: ``None`` for a side to
    translate with the ``--mt-*`` models) or line-aligned text files (``parallel`` chain); writes
    ``paths.units`` (passage and question units paired by question id, or sentence units)."""
    if paths.chain == "qa":
        key = fingerprint([src_file, tgt_file], langs=(cfg.src_lang, cfg.tgt_lang),
                          mt=cfg.mt.fingerprint() if cfg.mt else None,
                          skip=cfg.skip_bad, ignore=cfg.ignore_answers,
                          shards=(cfg.num_shards, cfg.shard_id), version=_pairs_version(cfg))
    else:
        key = fingerprint([src_file, tgt_file], shards=(cfg.num_shards, cfg.shard_id), version=_pairs_version(cfg),
                          **({"format": cfg.parallel_format} if cfg.parallel_format != "text" else {}))
    stage = StageFile(paths.units, "pairs", key, cfg.force)
    if not stage.fresh:
        stage.skip_message(paths.name)
        return
    s = Summary("pairs", paths.name)
    if paths.chain == "qa":
        units = _qa_units(paths, cfg, src_file, tgt_file, s)
    else:
        units = _shard(read_parallel(src_file, tgt_file, s.counts, cfg.parallel_format,
                                     (cfg.src_lang, cfg.tgt_lang), cfg.skip_bad), cfg)
    write_units(paths, units, key)
    s.print()


def _qa_units(paths, cfg, src_file, tgt_file, s):
    if not src_file and not tgt_file:
        raise GraFusionError(f"split {paths.split}: give at least one of the two QA files")
    data = {}
    for side, path in (("src", src_file), ("tgt", tgt_file)):
        if path:
            passages, questions, bad = read_squad(path, cfg.skip_bad, cfg.ignore_answers,
                                                  require_answers=paths.split == "train")
            data[side] = (passages, questions)
            for k, v in bad.items():
                s[f"{side}: {k}"] = v
        else:
            data[side] = None
    units, report = make_units(data["src"], data["tgt"], cfg.src_lang, cfg.tgt_lang,
                               translator_for(cfg), s.counts)
    paired = any(u.kind == "q" for u in units)
    units = _shard(units, cfg)
    if cfg.num_shards > 1:
        s[f"question pairs in shard {cfg.shard_id}/{cfg.num_shards}"] = sum(u.kind == "q" for u in units)
        if paired and not units:
            s.notes.append("this shard holds none of the split's passages (fewer passages than "
                           "shards): its files are empty, merge joins them")
    s.notes += report
    if not paired:
        s.print()  # the report the error refers to: what was read, paired and dropped
        raise GraFusionError(f"split {paths.split}: no question pairs left (see the [pairs] report above)")
    return units


def run_words(paths, cfg):
    """Stage ``words``: reads ``paths.units``; writes the aligner input ``paths.aligner_input``
    (one line per segment, for external aligners), the parser input ``paths.sentences`` (one line
    per sentence) and, last, ``paths.words`` (sentences, words and alignment segments; its
    header is the stage's stamp).  When the stage is up to date, the two text files are
    rewritten where they differ from what ``paths.words`` gives (a killed run, a user's edit)."""
    key = fingerprint(src_lang=cfg.src_lang, tgt_lang=cfg.tgt_lang, stanza=cfg.stanza_dir,
                      prev=key_of(paths.units), version=1)
    stage = StageFile(paths.words, "words", key, cfg.force)
    units = read_units(paths)
    if not stage.fresh:
        stage.skip_message(paths.name)
        _write_tool_inputs(paths, units, read_jsonl(paths.words, "words"))
        return
    records = unit_ops.segment_units(units, cfg.src_lang, cfg.tgt_lang, cfg.stanza_dir,
                                     cfg.workers, f"words {paths.name}")
    s = Summary("words", paths.name)
    s["units in"] = len(units)
    s["units out"] = len(records)
    for side, lang in (("src", cfg.src_lang), ("tgt", cfg.tgt_lang)):
        s[f"{side} ({lang}) words"] = sum(len(r[side]) // 2 for r in records)
        s[f"{side} ({lang}) sentences"] = sum(len(r[side[0] + "s"]) for r in records)
        s[f"{side} ({lang}) tokenizer"] = unit_ops.segmenter(lang, cfg.stanza_dir).backend
    s["units with an empty side"] = sum(1 for r in records if not r["src"] or not r["tgt"])
    s["alignment segments"] = sum(len(r["seg"]) for r in records)
    _write_tool_inputs(paths, units, records)
    write_jsonl(paths.words, records, "words", key)  # the stamp, last
    s.print()


def _write_tool_inputs(paths, units, words):
    """The aligner and parser input files of ``words``, each written where it differs."""
    src_lines, tgt_lines, _ = unit_ops.segment_lines(units, words)
    for side, lines in (("src", src_lines), ("tgt", tgt_lines)):
        for path, text in ((paths.aligner_input[side], lines),
                           (paths.sentences[side], unit_ops.sentence_lines(units, words, side))):
            text = list(text)
            if not _holds_lines(path, text):
                write_lines(path, text)


def _holds_lines(path, lines):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read() == "".join(line + "\n" for line in lines)
    except (OSError, UnicodeDecodeError):
        return False


def read_extra(extra, src_lang, tgt_lang):
    """``--align-extra`` text as aligner lines ``(src_lines, tgt_lines)``, tokenised like the
    data, or None."""
    if not extra:
        return None
    from .wordseg import tokenize, words_of

    src_path, tgt_path = extra
    texts = [read_lines(path) for path in (src_path, tgt_path)]
    check_line_counts(src_path, tgt_path, *map(len, texts))
    for path, lines in zip(extra, texts):
        check_no_nul(path, lines)
    return tuple([align_mod.aligner_line(words_of(t, tokenize(t, lang))) for t in side]
                 for side, lang in zip(texts, (src_lang, tgt_lang)))


def _priors_key(path):
    """The key the run's alignment model was estimated with (its ``.key`` stamp), or None."""
    return read_stamp(path + ".key")


def _save_priors(priors, path, key):
    """Write the alignment model, then its key (a model without a current key is re-estimated)."""
    priors.save(path)
    write_stamp(path + ".key", key)


def _alignment_model(paths, cfg):
    """How this split is aligned: ``("estimate", priors_file)`` for the training split (its
    eflomal run is the model), ``("apply", priors_file)`` for a split that applies a model, or
    ``("own", None)`` (eflomal estimated on this split's own text, + --align-extra)."""
    if cfg.align_priors:
        return "apply", cfg.align_priors
    path = priors_path(cfg.out, cfg.suffix)
    if cfg.priors_split() == (paths.chain, paths.split):
        return "estimate", path
    if os.path.isfile(path) and _priors_key(path):
        return "apply", path  # written by this --out's training split (this run or an earlier one)
    return "own", None


def run_align(paths, cfg):
    """Stage ``align``: reads ``paths.units`` and ``paths.words`` (and the split's
    ``--alignments`` file, or ``--align-extra`` text for eflomal); writes ``paths.align`` (word
    links of every unit, and every question's answers, projected for a translated side; its
    header holds the report: the alignment model and the unaligned-word ratio per language).
    With ``cfg.align`` False no aligner runs: records without links (:func:`run_without`).

    The alignment model is estimated once: the training split's eflomal run (+ ``--align-extra``)
    is saved as the run's priors (``work/alignment.priors``), which every other split's eflomal
    run starts from (:func:`.align.align_with_priors`), so that validation and test data are
    aligned by the model learnt on the training data, not by one estimated on their own few
    sentences."""
    if not cfg.align:
        return run_without(paths, cfg, "align")
    alignments = cfg.alignment_file(paths.chain, paths.split)
    mode, model_file = _alignment_model(paths, cfg)
    shown = model_file and (model_file if cfg.align_priors else os.path.relpath(model_file, cfg.out))
    extra_paths = list(cfg.align_extra) if cfg.align_extra and not alignments and mode != "apply" else []
    key = _align_key(paths, cfg, alignments, extra_paths, mode, model_file)
    stage = StageFile(paths.align, "align", key, cfg.force)
    if not stage.fresh and (mode != "estimate" or _priors_key(model_file) == key):
        stage.skip_message(paths.name)
        return
    extra = read_extra(extra_paths, cfg.src_lang, cfg.tgt_lang)
    units, words = read_units(paths), read_jsonl(paths.words, "words")
    src_lines, tgt_lines, lengths = unit_ops.segment_lines(units, words)
    s = Summary("align", paths.name)
    s["units in"] = len(units)
    s["segments"] = len(lengths)
    if alignments:
        segment_links, model, priors = _imported_links(alignments, src_lines, tgt_lines, lengths,
                                                       mode == "estimate")
    elif mode == "apply" and cfg.align_apply == "lexical":
        segment_links, model, priors = _lexical_from_model(paths, cfg, src_lines, tgt_lines, model_file, shown)
    elif mode == "apply":
        segment_links, model, priors = _eflomal_from_model(paths, cfg, src_lines, tgt_lines, model_file, shown)
    else:
        segment_links, model, priors = _eflomal_on_split(paths, cfg, src_lines, tgt_lines, extra,
                                                         mode == "estimate", shown)
    eflomal = not alignments and not (mode == "apply" and cfg.align_apply == "lexical")
    s.notes.append(model + (f"; seed {cfg.seed}, both directions + grow-diag-final-and" if eflomal else ""))
    records = unit_ops.link_units(units, words, segment_links, s.counts)
    if any(u.kind == "q" for u in units):
        unit_ops.project_answers(units, words, records, s.counts)
    write_jsonl(paths.align, records, "align", key, header={"alignment": _align_report(cfg, model, s)})
    if priors is not None:
        _save_priors(priors, model_file, key)
        s.notes.append(f"alignment model saved: {model_file} (applied to the other splits)")
    s.print()


def _align_key(paths, cfg, alignments, extra_paths, mode, model_file):
    """The ``align`` stage's key: its inputs, the alignment model's mode and key, eflomal's seed."""
    given = [cfg.align_priors] if cfg.align_priors else []  # the run's own model: by its key
    return fingerprint([alignments] + extra_paths + given, prev=key_of(paths.words), mode=mode,
                       model=_priors_key(model_file) if mode == "apply" and not given else None,
                       version=2, **({} if alignments else {"seed": cfg.seed}),
                       **({"apply": "lexical"} if mode == "apply" and cfg.align_apply == "lexical" else {}))


def _align_report(cfg, model, s):
    """The ``align`` header's report: the alignment model and the unaligned-word ratio per language."""
    names = ((f"src:{cfg.src_lang}", f"tgt:{cfg.tgt_lang}") if cfg.src_lang == cfg.tgt_lang
             else (cfg.src_lang, cfg.tgt_lang))  # English paired with itself: two entries
    return {"model": model, "unaligned": dict(zip(names, (s["unaligned src word ratio"],
                                                          s["unaligned tgt word ratio"]))),
            "words aligned / in segments": dict(zip(names, (list(s["src words aligned / in segments"]),
                                                            list(s["tgt words aligned / in segments"]))))}


def _imported_links(alignments, src_lines, tgt_lines, lengths, estimate):
    """``(segment links, model, priors)`` of links read from an ``--alignments`` file; with
    ``estimate``, the run's alignment model made from them (else None)."""
    segment_links = align_mod.read_pharaoh(alignments, lengths)
    priors = None
    if estimate and src_lines:
        pharaoh = [align_mod.format_pharaoh(links) for links in segment_links]
        priors = align_mod.priors_from_links(src_lines, tgt_lines, pharaoh, pharaoh)
    return segment_links, f"links imported from {alignments}", priors


def _eflomal_from_model(paths, cfg, src_lines, tgt_lines, model_file, shown):
    """``(segment links, model, None)`` of eflomal started from the alignment model ``model_file``."""
    log(f"[align] {paths.name}: eflomal on {len(src_lines)} segment pairs, started from the "
        f"alignment model {model_file}")
    priors = align_mod.AlignmentPriors.load(model_file)
    segment_links = align_mod.align_with_priors(src_lines, tgt_lines, priors, **_eflomal_options(paths, cfg))
    return segment_links, f"eflomal started from the alignment model {shown}", None


def _lexical_from_model(paths, cfg, src_lines, tgt_lines, model_file, shown):
    """``(segment links, model, None)``: each segment pair aligned on its own by the alignment
    model ``model_file`` in this process (:class:`.align.LexicalAligner`, as the hub and
    ``grafusion-predict --qa`` align), so a segment's links do not depend on the other segments
    of the run: shards of a split get the links of one run over the whole split."""
    log(f"[align] {paths.name}: {len(src_lines)} segment pairs aligned one by one by the alignment "
        f"model {model_file}")
    aligner = align_mod.LexicalAligner(align_mod.AlignmentPriors.load(model_file))
    chunks = [(src_lines[i:i + 2000], tgt_lines[i:i + 2000]) for i in range(0, len(src_lines), 2000)]
    links = parallel_map(_align_chunk, chunks, cfg.workers, f"align {paths.name}",
                         initializer=_use_aligner, initargs=(aligner,))  # forked: the tables not pickled
    return [x for chunk in links for x in chunk], f"aligned one by one by the alignment model {shown}", None


_ALIGNER = []


def _use_aligner(aligner):
    _ALIGNER[:] = [aligner]


def _align_chunk(lines):
    return _ALIGNER[0].align(*lines)


def _eflomal_on_split(paths, cfg, src_lines, tgt_lines, extra, estimate, shown):
    """``(segment links, model, priors)`` of eflomal estimated on this split (+ ``extra``); with
    ``estimate``, its model is the run's alignment model (else priors None)."""
    log(f"[align] {paths.name}: eflomal on {len(src_lines)} segment pairs"
        + (f" (+{len(extra[0])} extra pairs for the model)" if extra else ""))
    also = " + --align-extra" if extra else ""
    if estimate and (src_lines or extra):
        segment_links, priors = align_mod.eflomal_align_and_estimate(src_lines, tgt_lines, extra,
                                                                     **_eflomal_options(paths, cfg))
        model = f"eflomal estimated on this split{also}: the run's alignment model, {shown}"
        return segment_links, model, priors
    segment_links = align_mod.eflomal_align(src_lines, tgt_lines, extra, **_eflomal_options(paths, cfg))
    model = (f"eflomal estimated on this split's own text{also} "
             "(no training split in this run and no alignment model given)")
    return segment_links, model, None


def _eflomal_options(paths, cfg):
    """eflomal seeded (same input and seed, same links), its files under work/ (a killed run's are
    removed by the next run); its two directions side by side from --workers 2."""
    return dict(map_fn=lambda func, items: parallel_map(func, items, cfg.workers, f"align {paths.name}"),
                seed=cfg.seed, tmp_prefix=os.path.join(paths.work, f"eflomal{cfg.suffix}"),
                processes=cfg.workers)


def alignment_report(paths):
    """The align stage's report of a split (model, unaligned-word ratio per language), or None."""
    header = read_header(paths.align)
    return header.get("alignment") if header else None


def run_parse(paths, cfg):
    """Stage ``parse``: reads ``paths.units`` and ``paths.words`` (and the split's
    ``--src-conllu`` / ``--tgt-conllu`` files); writes ``paths.parse`` (dependency arcs per unit
    and side, same-word edges for passages and sentences).  With ``cfg.parse`` False no parser
    runs: records without arcs or same-word edges (:func:`run_without`)."""
    if not cfg.parse:
        return run_without(paths, cfg, "parse")
    conllu = {side: cfg.conllu_file(side, paths.chain, paths.split) for side in ("src", "tgt")}
    key = fingerprint([conllu["src"], conllu["tgt"]], stanza=cfg.stanza_dir,
                      same=cfg.same_max_group, prev=key_of(paths.words), version=1)
    stage = StageFile(paths.parse, "parse", key, cfg.force)
    if not stage.fresh:
        stage.skip_message(paths.name)
        return
    units, words = read_units(paths), read_jsonl(paths.words, "words")
    s = Summary("parse", paths.name)
    s["units in"] = len(units)
    records = unit_ops.parse_units(units, words, cfg.src_lang, cfg.tgt_lang, cfg.stanza_dir, conllu,
                                   cfg.same_max_group, cfg.workers, f"parse {paths.name}")
    for side, lang in (("src", cfg.src_lang), ("tgt", cfg.tgt_lang)):
        source = unit_ops.parser_of(lang, cfg.stanza_dir, conllu[side])
        if source is None:
            s.add("languages without a parser")
            log(f"warning: [parse] {paths.name}: no dependency parser for '{lang}' ({side}): "
                f"alignment and same-word edges only (a {lang} depparse model in --stanza-dir, or "
                f"an imported CoNLL-U parse, adds dependency edges)")
        s[f"{side} ({lang}) parser"] = source or "none"
        s[f"{side} dependency arcs"] = sum(len(r[side]) // 2 for r in records)
        s[f"{side} same-word edges"] = sum(len(r.get(side + "_same", [])) // 2 for r in records)
    write_jsonl(paths.parse, records, "parse", key)
    s.print()


def run_without(paths, cfg, stage):
    """Stage ``align`` or ``parse`` for a model that reads no such edges: reads ``paths.units``
    (and ``paths.words`` to project answers); writes the stage's file with records that hold no
    links (:func:`.units.unlinked`, answers as :func:`run_align` gives them) or no arcs
    (:func:`.units.unparsed`), as the in-memory pipeline does with ``align=False`` /
    ``parse=False``."""
    path = getattr(paths, stage)
    key = fingerprint(edges="none", prev=key_of(paths.words), version=1)
    file = StageFile(path, stage, key, cfg.force)
    if not file.fresh:
        file.skip_message(paths.name)
        return
    units = read_units(paths)
    s = Summary(stage, paths.name)
    s["units in"] = len(units)
    if stage == "align":
        records = unit_ops.unlinked(units)
        if any(u.kind == "q" for u in units):
            unit_ops.project_answers(units, read_jsonl(paths.words, "words"), records, s.counts)
    else:
        records = unit_ops.unparsed(units)
    s.notes.append(f"skipped: the model reads no {'alignment' if stage == 'align' else 'dependency'} "
                   "edges (records without them)")
    write_jsonl(path, records, stage, key)
    s.print()


def _binary_current(paths, key, cfg):
    """Whether the binary split is the complete output of ``key``: the stamp (written last) says
    ``key``, the manifest was written for ``key`` and every file of the split is the one it
    records."""
    meta = f"{paths.prefix}.meta.json"
    if cfg.force or not os.path.exists(meta) or read_stamp(paths.binarize_key) != key:
        return False
    try:
        with open(meta, encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("inputs") != key:
            return False
        digests.check(paths.prefix, meta, manifest.get("files") or {})
    except (OSError, ValueError):  # ValueError: unreadable JSON, or a file of another run
        return False
    return all(os.path.exists(f"{paths.prefix}.{name}") for name in manifest["files"])


def binarize_stage_key(paths, cfg):
    """The ``binarize`` stage's key: the vocabulary files, the window options and the previous
    stages' keys.  ``answer_ends``: a split binarized before the clause-punctuation cut is made
    again.  ``--window-pairing`` is in it only when it is not the default and only for QA windows
    (parallel sentences have none), so the splits of earlier runs stay up to date."""
    pairing = {"pairing": cfg.window_pairing} if paths.chain == "qa" and cfg.window_pairing != "alignment" else {}
    return fingerprint([cfg.spm, cfg.dict], max_len=cfg.max_len, stride=cfg.doc_stride,
                       query=cfg.max_query_len, encoding="raw-text", answer_ends="clause-cut",
                       prev=[key_of(p) for p in (paths.units, paths.words, paths.align, paths.parse)],
                       **pairing)


def run_binarize(paths, cfg):
    """Stage ``binarize``: reads the split's ``units``, ``words``, ``align`` and ``parse`` files,
    ``--spm`` and ``--dict``; writes ``dict.txt`` beside the splits, then the binary split
    ``paths.prefix.*`` (QA: with answer spans and token character offsets, and the gold files
    ``paths.prefix.{src,tgt}.json`` written with the split and listed in its manifest; parallel:
    without spans; the manifest records ``key``, the fingerprint of the inputs and options) and,
    last, the stamp ``paths.binarize_key`` (removed first, so a killed run leaves none)."""
    from fairseq_grafusion.data import PairWriter
    from fairseq_grafusion.data.fingerprints import manifest_fields

    from .binarize import copy_dictionary
    from .encode import Encoder

    key = binarize_stage_key(paths, cfg)
    if _binary_current(paths, key, cfg):
        log(f"[binarize] {paths.name}: up to date, reusing {paths.prefix}.* (--force recomputes)")
        return
    if os.path.exists(paths.binarize_key):
        os.remove(paths.binarize_key)  # the split is about to change: not up to date until the end
    units = read_units(paths)
    words = read_jsonl(paths.words, "words")
    aligns = read_jsonl(paths.align, "align")
    parses = read_jsonl(paths.parse, "parse")
    if not (len(units) == len(words) == len(aligns) == len(parses)):
        raise GraFusionError(f"{paths.work}: stage files disagree on the number of units; rerun with --force")
    encoder = Encoder(cfg.spm, cfg.dict)  # fails early, with the file named, on a bad model
    func, tasks = unit_ops.example_tasks(paths.chain, units, words, aligns, parses, cfg.window_options())
    with_span = paths.chain == "qa"
    s = Summary("binarize", paths.name)
    if with_span:
        s["questions in"] = sum(len(t[1]) for t in tasks)
    else:
        s["sentence pairs in"] = len(units)
    copy_dictionary(cfg.dict, paths.bin_dir)
    extra = ("src.offsets", "tgt.offsets") if with_span else ()
    report = alignment_report(paths)
    ids, counts = set(), collections.Counter()
    with PairWriter(paths.prefix, encoder.vocab_size, with_span=with_span, extra_fields=extra,
                    inputs=key, meta={"alignment": report} if report else None) as writer:
        # each passage's windows are written as soon as a worker has built, checked and cast them
        for part in unit_ops.iter_examples(func, tasks, encoder, counts, cfg.workers, f"binarize {paths.name}",
                                           writer.layout):
            for prepared in part:
                writer.add_prepared(prepared)
                ids.add(prepared[0])
        golds = {side: unit_ops.gold_questions(units, aligns, ids, side) for side in ("src", "tgt")} \
            if with_span else {}
        writer.fingerprints = manifest_fields(cfg.dict, golds)
        for side, gold in golds.items():
            write_squad(writer.companion(f"{paths.prefix}.{side}.json"), *gold)
    write_stamp(paths.binarize_key, key)  # the stamp, last
    s["examples out (windows)" if with_span else "examples out"] = len(writer)
    if with_span:
        s["questions out"] = len(ids)
    for k, v in counts.items():
        s[k] = v
    s.notes.append(f"wrote {paths.prefix}.* and {os.path.join(paths.bin_dir, 'dict.txt')}")
    s.print()
