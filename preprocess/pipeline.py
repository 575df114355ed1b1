"""Running the chains: split by split, stage by stage, with shards and resumable outputs.

Layout under ``--out DIR``::

    DIR/qa-bin/{dict.txt, SPLIT.*}          xmrc_span data (PairWriter splits, with spans)
    DIR/parallel-bin/{dict.txt, SPLIT.*}    sa_graph_pretrain data (no spans)
    DIR/work/{qa,parallel}/SPLIT/           units / words / align / parse JSONL, aligner input
                                            (aligner-input.{src,tgt}.txt) and parser input
                                            (sentences.{src,tgt}.txt) for external tools

With ``--num-shards K --shard-id i`` every file of a split gets the suffix ``.shard{i}of{K}``
(binary splits: ``SPLIT.shard{i}of{K}``); a shard holds every K-th passage with all its
questions (every K-th line pair for parallel text).  ``merge`` joins the binary shards.
"""
import collections
import os

from fairseq_grafusion.data import PairReader, PairWriter
from fairseq_grafusion.errors import GraFusionError

from . import stages
from .binarize import _init_encoder, build_group, copy_dictionary
from .pairing import make_units
from .parallel import build_sentences, read_parallel
from .qa_io import read_squad
from .workdir import fingerprint, read_jsonl, write_jsonl


class SplitPaths:
    """The files of one split of one chain (``qa`` or ``parallel``)."""

    def __init__(self, out, chain, split, suffix):
        self.chain, self.split = chain, split
        self.name = f"{chain}/{split}{suffix}"
        self.work = os.path.join(out, "work", chain, split)
        self.bin_dir = os.path.join(out, f"{chain}-bin")
        self.prefix = os.path.join(self.bin_dir, split + suffix)
        for stage in ("units", "words", "align", "parse"):
            setattr(self, stage, os.path.join(self.work, f"{stage}{suffix}.jsonl"))
        self.aligner_input = {s: os.path.join(self.work, f"aligner-input{suffix}.{s}.txt") for s in ("src", "tgt")}
        self.binarize_key = os.path.join(self.work, f"binarize{suffix}.key")
        self.sentences = {s: os.path.join(self.work, f"sentences{suffix}.{s}.txt") for s in ("src", "tgt")}


def _shard(units, opts):
    if opts.num_shards == 1:
        return units
    return [u for u in units if u["group"] % opts.num_shards == opts.shard_id]


def run_pairs(paths, src_file, tgt_file, opts, translator_for):
    """Stage ``pairs`` (QA): read both files, pair by id, translate what is missing."""
    key = fingerprint([src_file, tgt_file], langs=(opts.src_lang, opts.tgt_lang), mt=opts.mt_model,
                      skip=opts.skip_bad, ignore=opts.ignore_answers,
                      shards=(opts.num_shards, opts.shard_id), version=1)
    stage = stages.StageFile(paths.units, "pairs", key, opts.force)
    if not stage.fresh:
        stage.skip_message(paths.name)
        return
    if not src_file and not tgt_file:
        raise GraFusionError(f"split {paths.split}: give at least one of the two QA files")
    s = stages.Summary("pairs", paths.name)
    data = {}
    for side, path in (("src", src_file), ("tgt", tgt_file)):
        if path:
            passages, questions, bad = read_squad(path, opts.skip_bad, opts.ignore_answers)
            data[side] = (passages, questions)
            for k, v in bad.items():
                s[f"{side}: {k}"] = v
        else:
            data[side] = None
    units, report = make_units(data["src"], data["tgt"], opts.src_lang, opts.tgt_lang,
                               translator_for, s.counts)
    units = _shard(units, opts)
    if opts.num_shards > 1:
        s[f"question pairs in shard {opts.shard_id}/{opts.num_shards}"] = sum(u["kind"] == "q" for u in units)
    s.notes += report
    if not any(u["kind"] == "q" for u in units):
        raise GraFusionError(f"split {paths.split}: no question pairs left (see the report above)")
    write_jsonl(paths.units, units, "pairs", key)
    s.print()


def run_parallel_units(paths, src_file, tgt_file, opts):
    """Stage ``pairs`` of the parallel chain: line pairs -> units."""
    key = fingerprint([src_file, tgt_file], shards=(opts.num_shards, opts.shard_id), version=1)
    stage = stages.StageFile(paths.units, "pairs", key, opts.force)
    if not stage.fresh:
        stage.skip_message(paths.name)
        return
    s = stages.Summary("pairs", paths.name)
    units = _shard(read_parallel(src_file, tgt_file, s.counts), opts)
    write_jsonl(paths.units, units, "pairs", key)
    s.print()


def run_words(paths, opts):
    stages.run_words(paths.units, paths.words, opts, paths.name)
    units, words = read_jsonl(paths.units, "pairs"), read_jsonl(paths.words, "words")
    src_lines, tgt_lines, _ = stages.segment_lines(units, words)
    for side, lines in (("src", src_lines), ("tgt", tgt_lines)):
        if not os.path.exists(paths.aligner_input[side]) or opts.force:
            stages.write_text_file(paths.aligner_input[side], lines)
        if not os.path.exists(paths.sentences[side]) or opts.force:
            stages.write_text_file(paths.sentences[side], stages.sentence_lines(units, words, side))


def run_align(paths, opts, alignments=None):
    stages.run_align(paths.units, paths.words, paths.align, opts, paths.name, alignments)


def run_parse(paths, opts, conllu=None):
    stages.run_parse(paths.units, paths.words, paths.parse, opts, paths.name, conllu)


def _binary_current(paths, key, opts):
    meta = f"{paths.prefix}.meta.json"
    stamp = paths.binarize_key
    if opts.force or not os.path.exists(meta) or not os.path.exists(stamp):
        return False
    with open(stamp, encoding="utf-8") as f:
        return f.read().strip() == key


def run_binarize(paths, opts):
    """Stage ``binarize``: QA (spans + offsets) or parallel (no spans) PairWriter split."""
    key = fingerprint([opts.spm, opts.dict], max_len=opts.max_len, stride=opts.doc_stride,
                      query=opts.max_query_len, encoding="raw-text",
                      prev=[stages.key_of(p) for p in (paths.units, paths.words, paths.align, paths.parse)])
    if _binary_current(paths, key, opts):
        stages.log(f"[binarize] {paths.name}: up to date, reusing {paths.prefix}.* (--force recomputes)")
        return
    units = read_jsonl(paths.units, "pairs")
    words = read_jsonl(paths.words, "words")
    aligns = read_jsonl(paths.align, "align")
    parses = read_jsonl(paths.parse, "parse")
    if not (len(units) == len(words) == len(aligns) == len(parses)):
        raise GraFusionError(f"{paths.work}: stage files disagree on the number of units; rerun with --force")
    _init_encoder(opts.spm, opts.dict)  # fails early, with the file named, on a bad model
    enc_opts = {"max_len": opts.max_len, "doc_stride": opts.doc_stride, "max_query_len": opts.max_query_len}
    records = list(zip(units, words, aligns, parses))
    s = stages.Summary("binarize", paths.name)
    if paths.chain == "qa":
        tasks, current = [], None
        for rec in records:
            if rec[0]["kind"] == "p":
                current = (rec, [], enc_opts)
                tasks.append(current)
            else:
                current[1].append(rec)
        func, with_span, extra = build_group, True, ("src.offsets", "tgt.offsets")
        s["questions in"] = sum(len(t[1]) for t in tasks)
    else:
        size = 64
        tasks = [(records[k:k + size], enc_opts) for k in range(0, len(records), size)]
        func, with_span, extra = build_sentences, False, ()
        s["sentence pairs in"] = len(records)
    results = stages.parallel_map(func, tasks, opts.workers, f"binarize {paths.name}",
                                  _init_encoder, (opts.spm, opts.dict))
    vocab = len(stages_encoder().dictionary) + 1
    counts = collections.Counter()
    ids = set()
    with PairWriter(paths.prefix, vocab, with_span=with_span, extra_fields=extra) as writer:
        for examples, st in results:
            counts.update(st)
            for uid, fields in examples:
                writer.add(uid, **fields)
                ids.add(uid)
    from .workdir import atomic_path

    with atomic_path(paths.binarize_key) as tmp, open(tmp, "w") as f:
        f.write(key + "\n")
    copy_dictionary(opts.dict, paths.bin_dir)
    if with_span:
        write_gold(paths.prefix, units, aligns, ids)
    s["examples out (windows)" if with_span else "examples out"] = len(writer)
    if with_span:
        s["questions out"] = len(ids)
    for k, v in counts.items():
        s[k] = v
    s.notes.append(f"wrote {paths.prefix}.* and {os.path.join(paths.bin_dir, 'dict.txt')}")
    s.print()


def write_gold(prefix, units, aligns, kept):
    """``PREFIX.src.json`` / ``PREFIX.tgt.json``: the binarized questions as SQuAD v1.1 files,
    with the contexts the token offsets point into (translations included) and every gold answer
    (or the projected one), for ``--eval-span-f1`` and ``grafusion-predict``."""
    from .qa_io import write_squad

    for side in ("src", "tgt"):
        passages, questions, index = [], [], {}
        for unit, rec in zip(units, aligns):
            if unit["kind"] == "p":
                index[unit["uid"]] = len(passages)
                passages.append({"context": unit[side], "title": ""})
            elif unit["uid"] in kept:
                given = unit["answers"][side]
                answers = given or ([rec["answers"][side]] if rec.get("answers", {}).get(side) else [])
                questions.append({"id": unit["uid"], "question": unit[side],
                                  "passage": index[unit["passage"]], "answers": answers})
        write_squad(f"{prefix}.{side}.json", passages, questions)


def stages_encoder():
    from .binarize import _ENCODER

    return _ENCODER["enc"]


def merge_shards(prefix, num_shards, with_span):
    """Concatenate ``PREFIX.shard{i}of{K}`` splits into ``PREFIX`` (ids and fields kept)."""
    readers = [PairReader(f"{prefix}.shard{i}of{num_shards}") for i in range(num_shards)]
    fields = readers[0].fields
    extra = [f for f in fields if f not in ("src.tok", "tgt.tok", "src.word", "tgt.word", "align",
                                            "src.dep", "tgt.dep", "span")]
    vocab = max(int(max(r.field("src.tok", i).max(), r.field("tgt.tok", i).max()))
                for r in readers for i in range(len(r))) + 1
    with PairWriter(prefix, max(vocab, 256), with_span="span" in fields, extra_fields=extra) as writer:
        for r in readers:
            for i in range(len(r)):
                writer.add(r.ids[i], **{f: r.field(f, i) for f in fields})
    return len(writer)
