"""Stage ``combine``: one data directory for many target languages (the paper's translate-train-all).

The paper fine-tunes one model on the translated training data of all languages jointly and
evaluates it on every language (section 4.1, "XLM-R (translate-train)"; appendix C).  Each
(English, target) pair is preprocessed on its own (``grafusion-preprocess all --tgt-lang xx``,
which aligns and parses that pair); this stage joins their ``qa-bin`` directories:

``OUT/SPLIT.*``
    every split found in the inputs, the examples of all languages one language after the other
    (in the order the pairs are given), each example recording its target language (binary
    format v2).  Training batches mix the languages (``GraphPairDataset`` shuffles a split that
    holds several without sorting by length); validation and test keep them apart by the
    language field, questions being identified by ``(language, id)``.
``OUT/SPLIT.{src,tgt}.LANG.json``
    the gold files of each language (what ``--eval-span-f1`` and ``grafusion-predict`` decode
    against), with the original question ids: MLQA and XQuAD use one id in every language.
``OUT/dict.txt``
    the dictionary, which must be the same file in every input.
``OUT/combine.json``
    the inputs and, per split and language, the windows and questions written and the pair's
    alignment report (model, unaligned-word ratio per language; written last).

Nothing is dropped: a language that lacks a split is listed in the summary with ``-``;
``--train-langs`` names the languages whose training split is joined (the others are evaluated
only, listed with ``-`` in the training row).
The English originals join the training data as one more pair, ``en`` (English paired with
itself), where the user wants them (XTREME's translate-train-all includes them).
"""
import dataclasses
import json
import os
import shutil
from typing import List, Optional, Tuple

from fairseq_grafusion.data import PairReader, PairWriter
from fairseq_grafusion.data.languages import COMBINE_MANIFEST, gold_file
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.files import atomic_path, resolved

from . import outlock


@dataclasses.dataclass
class CombineConfig:
    out: str
    pairs: List[Tuple[str, str]]  # (target language, qa-bin directory of that pair's run)
    splits: Optional[List[str]] = None  # default: every split found in the inputs
    # the languages whose training split is joined (default: every pair's); FILTER's published
    # runs leave zh out of QA training while evaluating it
    train_langs: Optional[List[str]] = None

    def __post_init__(self):
        if not self.pairs:
            raise GraFusionError("combine: give at least one --pair LANG DIR")
        self.out = resolved(self.out)  # absolute, once (files.resolved)
        self.pairs = [(lang, resolved(directory)) for lang, directory in self.pairs]
        langs = [lang for lang, _ in self.pairs]
        twice = sorted({x for x in langs if langs.count(x) > 1})
        if twice:
            raise GraFusionError(f"combine: --pair gives language(s) {', '.join(twice)} more than once")
        unknown = sorted(set(self.train_langs or ()) - set(langs))
        if unknown:
            raise GraFusionError(f"combine: --train-langs {', '.join(unknown)}: no --pair of that language")
        for lang, directory in self.pairs:
            if not os.path.isfile(os.path.join(directory, "dict.txt")):
                raise GraFusionError(f"combine: --pair {lang} {directory}: not a binarized directory "
                                     "(no dict.txt); give the qa-bin directory of a grafusion-preprocess run")
            if os.path.abspath(directory) == os.path.abspath(self.out):
                raise GraFusionError(f"combine: --out {self.out} is also the input of --pair {lang}")


def _splits_of(directory):
    names = [f[:-len(".meta.json")] for f in os.listdir(directory) if f.endswith(".meta.json")]
    return sorted(n for n in names if ".shard" not in n)  # shards are merged first (merge)


def _same_dictionary(cfg):
    first_lang, first_dir = cfg.pairs[0]
    with open(os.path.join(first_dir, "dict.txt"), "rb") as f:
        reference = f.read()
    for lang, directory in cfg.pairs[1:]:
        with open(os.path.join(directory, "dict.txt"), "rb") as f:
            if f.read() != reference:
                raise GraFusionError(
                    f"combine: {directory}/dict.txt (--pair {lang}) differs from {first_dir}/dict.txt "
                    f"(--pair {first_lang}); binarize every pair with the same --spm/--dict")
    return len(reference.splitlines())


def _link_or_copy(source, tmp):
    try:
        os.link(source, tmp)  # gold files can be large (translated SQuAD); share the inode
    except OSError:
        shutil.copyfile(source, tmp)


def _joined(cfg, found, lang, split):
    """Whether ``lang``'s ``split`` goes into the output (it has one; ``--train-langs``)."""
    return split in found[lang] and not (split == "train" and cfg.train_langs is not None
                                         and lang not in cfg.train_langs)


def _check_disk_space(cfg, found, splits):
    """One line before writing, where ``cfg.out``'s disk cannot hold the joined binary files (at
    SQuAD scale with XLM-R's dictionary, 7 pairs are 11.5 GB; gold files are hard links)."""
    need = 0
    for lang, directory in cfg.pairs:
        for split in splits:
            if not _joined(cfg, found, lang, split):
                continue
            need += sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory)
                        if f.startswith(f"{split}.") and f.endswith(".bin"))
    free = shutil.disk_usage(cfg.out).free
    if need > free:
        gib = 2 ** 30
        raise GraFusionError(f"combine: --out {cfg.out} needs {need / gib:.2f} GiB for the joined splits, "
                             f"its disk has {free / gib:.2f} GiB free; free some space or give another --out")


def combine(cfg):
    """Write ``cfg.out`` (see the module docstring); returns ``{split: {lang: (windows, questions)}}``.
    Holds ``cfg.out`` while it works (:mod:`.outlock`: one run at a time)."""
    with outlock.hold(cfg.out, command="grafusion-preprocess combine"):
        return _combine(cfg)


def _combine(cfg):
    _same_dictionary(cfg)
    found = {lang: _splits_of(directory) for lang, directory in cfg.pairs}
    splits = cfg.splits or sorted({s for names in found.values() for s in names})
    for split in splits:
        if not any(split in names for names in found.values()):
            raise GraFusionError(f"combine: no input has a split '{split}' ({', '.join(d for _, d in cfg.pairs)})")
    os.makedirs(cfg.out, exist_ok=True)
    _check_disk_space(cfg, found, splits)
    counts, reports = {}, {}
    src_langs = set()
    for split in splits:
        counts[split], reports[split] = {}, {}
        writer = None
        try:
            for lang, directory in cfg.pairs:
                if not _joined(cfg, found, lang, split):
                    continue
                reader = PairReader(os.path.join(directory, split))
                src_langs.add(reader.meta.get("src_lang"))
                if writer is None:
                    writer = PairWriter.like(reader, os.path.join(cfg.out, split))
                writer.append_split(reader, lang)
                counts[split][lang] = (len(reader), len(set(reader.ids)))
                if reader.meta.get("alignment"):
                    reports[split][lang] = reader.meta["alignment"]
                if reader.has_span:
                    for stream in ("src", "tgt"):
                        source = os.path.join(directory, f"{split}.{stream}.json")
                        if not os.path.isfile(source):
                            raise GraFusionError(f"combine: {source} is missing (the gold file of "
                                                 f"--pair {lang}, split {split}); re-run binarize")
                        # written with the split, listed in its manifest
                        _link_or_copy(source, writer.companion(gold_file(cfg.out, split, stream, lang)))
            if writer is None:
                raise GraFusionError(f"combine: none of --train-langs {' '.join(cfg.train_langs)} "
                                     f"has a split '{split}'")
            writer.src_lang = next(iter(src_langs - {None}), None)
            if reports[split]:
                writer.meta["alignment"] = reports[split]
            writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    with atomic_path(os.path.join(cfg.out, "dict.txt")) as tmp:
        shutil.copyfile(os.path.join(cfg.pairs[0][1], "dict.txt"), tmp)
    manifest = {"src_lang": next(iter(src_langs - {None}), None),
                "inputs": {lang: os.path.abspath(d) for lang, d in cfg.pairs},
                "splits": {s: {lang: {"windows": w, "questions": q,
                                      **({"alignment": reports[s][lang]} if lang in reports[s] else {})}
                               for lang, (w, q) in c.items()}
                           for s, c in counts.items()}}
    with atomic_path(os.path.join(cfg.out, COMBINE_MANIFEST)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    return counts


def format_summary(counts, langs):
    """The ``[combine]`` block: windows / questions per split and language (``-``: no such split)."""
    header = ["split"] + list(langs) + ["all"]
    rows = [header]
    for split, per_lang in counts.items():
        cells = [f"{per_lang[x][0]} / {per_lang[x][1]}" if x in per_lang else "-" for x in langs]
        total = (sum(w for w, _ in per_lang.values()), sum(q for _, q in per_lang.values()))
        rows.append([split] + cells + [f"{total[0]} / {total[1]}"])
    widths = [max(len(r[k]) for r in rows) for k in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(["[combine] windows / questions per split and target language"] +
                     ["    " + line for line in lines])


def format_alignment_summary(out):
    """The unaligned-word ratio per split and language of a combined directory (from its
    ``combine.json``): ``split  lang: src-language ratio / target-language ratio``."""
    with open(os.path.join(out, COMBINE_MANIFEST), encoding="utf-8") as f:
        splits = json.load(f)["splits"]
    lines = ["[combine] unaligned-word ratio per split and language (English side / target side)"]
    for split, per_lang in splits.items():
        cells = []
        for lang, entry in per_lang.items():
            ratios = list(entry.get("alignment", {}).get("unaligned", {}).values())
            cells.append(f"{lang} " + (" / ".join(f"{r:.3f}" for r in ratios) if ratios else "-"))
        lines.append(f"    {split}: " + "   ".join(cells))
    return "\n".join(lines)
