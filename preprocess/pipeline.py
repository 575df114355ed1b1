"""The chain: every split of a :class:`.config.PipelineConfig`, stage by stage, resumable.

``grafusion-preprocess`` is :func:`run_pipeline` on the config its arguments make; Python code
calls it the same way (see :mod:`.config`), or one stage of :mod:`.stages` on one split.  The hub
runs the same stages in memory (:mod:`.units`).
"""
import os

from . import outlock, stages
from .parallel import check_parallel_files
from .units import unaligned_ratio
from .workdir import SplitPaths, priors_path

RUNNERS = {"words": stages.run_words, "align": stages.run_align, "parse": stages.run_parse,
           "binarize": stages.run_binarize}


def run_pipeline(cfg):
    """Run ``cfg.command`` on every split of ``cfg`` (the split that estimates the alignment
    model first, then QA splits, then parallel ones): the stages in order
    (:meth:`.config.PipelineConfig.stages`), or ``merge``.  Cheap checks of every input come
    first, so that no split's alignment runs before a later split's bad input is found.  The run
    holds ``cfg.out`` (its shard of it) while it works: a second run there fails at once
    (:mod:`.outlock`), and what a killed run left there is removed first.  Ends with the
    unaligned-word ratio of every split and language."""
    check_inputs(cfg)
    with outlock.hold(cfg.out, "" if cfg.command == "merge" else cfg.suffix,
                      f"grafusion-preprocess {cfg.command}"):
        _run(cfg)


def _run(cfg):
    first = cfg.priors_split()
    chains = sorted(cfg.chains(), key=lambda c: (c[0], c[1]) != first)  # stable: the rest in order
    for chain, split, src, tgt in chains:
        paths = SplitPaths(cfg.out, chain, split, cfg.suffix)
        if cfg.command == "merge":
            prefix = os.path.join(paths.bin_dir, split)
            n = merge_shards(prefix, cfg.num_shards)
            print(f"[merge] {chain}/{split}: {n} examples in {prefix}.*")
            continue
        for stage in cfg.stages():
            if stage == "pairs":
                stages.run_pairs(paths, cfg, None if src == "-" else src, None if tgt == "-" else tgt)
            else:
                RUNNERS[stage](paths, cfg)
    if cfg.command in ("all", "align", "parallel", "align-model") and cfg.num_shards == 1:
        print(format_alignment_report(cfg, chains))
    if cfg.command == "align-model":
        print(f"alignment model: {priors_path(cfg.out)} (shards apply it: --align-priors "
              f"{priors_path(cfg.out)} --align-apply lexical)")
    if cfg.command in ("all", "binarize", "parallel"):
        for sub in ("qa-bin", "parallel-bin"):
            directory = os.path.join(cfg.out, sub)
            if os.path.isdir(directory):
                print(f"done: {directory}")


def check_inputs(cfg):
    """Before any stage: parallel text files (``--parallel``, ``--align-extra``) have equal line
    counts (counted, not read)."""
    pairs = [(src, tgt) for chain, _, src, tgt in cfg.chains() if chain == "parallel"]
    if cfg.align_extra and "align" in cfg.stages():
        pairs.append(tuple(cfg.align_extra))
    if "pairs" in cfg.stages() or "align" in cfg.stages():
        for src, tgt in pairs:
            check_parallel_files(src, tgt)


def merge_shards(prefix, num_shards):
    """Concatenate ``PREFIX.shard{i}of{K}`` splits into ``PREFIX`` (ids, fields and languages
    kept), file by file (:meth:`~fairseq_grafusion.data.PairWriter.append_split`), with the gold
    files joined and the manifest of one run over the whole split: its source language, context
    fingerprints and alignment report (the unaligned-word ratio from the shards' word counts).
    Its ``inputs`` are the shards' stage keys (the cache key of the run that wrote it)."""
    from fairseq_grafusion.data import PairReader, PairWriter
    from fairseq_grafusion.data.fingerprints import manifest_fields
    from fairseq_grafusion.squad import concat_squad, read_squad

    readers = [PairReader(f"{prefix}.shard{i}of{num_shards}") for i in range(num_shards)]
    with PairWriter.like(readers[0], prefix) as writer:
        for reader in readers:
            writer.append_split(reader)
        writer.src_lang = readers[0].meta.get("src_lang")
        writer.inputs = {"shards": [r.meta.get("inputs") for r in readers]}
        reports = [r.meta.get("alignment") for r in readers]
        if all(reports):
            writer.meta["alignment"] = merge_alignment_reports(reports)
        if readers[0].has_span:
            golds = {}
            for side in ("src", "tgt"):
                merged = writer.companion(f"{prefix}.{side}.json")
                concat_squad([f"{r.prefix}.{side}.json" for r in readers], merged)
                passages, questions, _ = read_squad(merged, ignore_answers=True)
                golds[side] = (passages, questions)
            writer.fingerprints.update(manifest_fields(golds=golds))
    return len(writer)


def merge_alignment_reports(reports):
    """One split's alignment report from its shards' (:func:`.stages.alignment_report`): the
    model (the shards' one, or each shard's), and each language's unaligned-word ratio from the
    summed word counts."""
    models = list(dict.fromkeys(r["model"] for r in reports))
    counts = {}
    for r in reports:
        for lang, (aligned, total) in r.get("words aligned / in segments", {}).items():
            a, t = counts.get(lang, (0, 0))
            counts[lang] = (a + aligned, t + total)
    merged = {"model": models[0] if len(models) == 1 else "per shard: " + "; ".join(models)}
    if len(counts) == len(reports[0]["unaligned"]):
        merged["unaligned"] = {lang: unaligned_ratio(a, t) for lang, (a, t) in counts.items()}
        merged["words aligned / in segments"] = {lang: list(c) for lang, c in counts.items()}
    return merged


def format_alignment_report(cfg, chains):
    """The ``[align report]`` block: per split, the unaligned-word ratio of each language and the
    alignment model used."""
    lines = [f"[align report] unaligned-word ratio per split and language ({cfg.src_lang} / {cfg.tgt_lang})"]
    for chain, split, _, _ in chains:
        report = stages.alignment_report(SplitPaths(cfg.out, chain, split, cfg.suffix))
        if not report:
            continue
        ratios = "  ".join(f"{lang} {value:.3f}" for lang, value in report["unaligned"].items())
        lines.append(f"    {chain}/{split}: {ratios}  ({report['model']})")
    return "\n".join(lines)
