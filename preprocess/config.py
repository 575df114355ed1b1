"""The pipeline's configuration: one value, checked once.

``grafusion-preprocess`` parses its arguments into a :class:`PipelineConfig`; Python code builds
one directly and calls :func:`.pipeline.run_pipeline`::

    from fairseq_grafusion.preprocess.config import PipelineConfig
    from fairseq_grafusion.preprocess.pipeline import run_pipeline

    run_pipeline(PipelineConfig(out="data", src_lang="en", tgt_lang="de",
                                qa=[("train", "train.en.json", "train.de.json")],
                                spm="xlmr.base/sentencepiece.bpe.model", dict="xlmr.base/dict.txt"))

Every check of an option happens in ``__post_init__``, with a one-line
:class:`~fairseq_grafusion.errors.GraFusionError` naming the option; the stages trust the values.
"""
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.files import resolved
from fairseq_grafusion.sample import SAMPLE_DIR

from .eflomal_run import SEED
from .encode import DOC_STRIDE, MAX_LEN, MAX_QUERY_LEN, WINDOW_PAIRINGS
from .languages import check_language
from .mt_config import MTConfig
from .text_formats import PARALLEL_FORMATS
from .workdir import shard_suffix

STAGES = ("pairs", "words", "align", "parse", "binarize")
COMMANDS = STAGES + ("all", "parallel", "merge", "align-model")
ALIGN_APPLY = ("eflomal", "lexical")
SAMPLE_OUT = "sample-run"


def _model_split(chains):
    """``(chain, split)`` among ``chains`` whose text estimates the alignment model: the QA split
    ``train``, else the parallel split ``train``; None without either."""
    names = [(chain, split) for chain, split, _, _ in chains]
    return next((c for c in (("qa", "train"), ("parallel", "train")) if c in names), None)


def per_split(values, option, splits):
    """``--option [SPLIT] FILE`` entries (lists of one or two strings) -> ``{split: file}``; a
    dict is taken as it is."""
    if isinstance(values, dict):
        return dict(values)
    out = {}
    for value in values:
        if len(value) == 2:
            out[value[0]] = value[1]
        elif len(value) == 1:
            if len(splits) != 1:
                raise GraFusionError(f"{option} {value[0]}: name the split ({option} SPLIT FILE) when "
                                     f"several splits are processed ({', '.join(splits)})")
            out[splits[0]] = value[0]
        else:
            raise GraFusionError(f"{option} takes [SPLIT] FILE")
    return out


@dataclass
class PipelineConfig:
    """What ``grafusion-preprocess`` does (``grafusion-preprocess -h`` explains every option)."""

    command: str = "all"  # a stage of STAGES, or "all", "parallel", "merge"
    out: Optional[str] = None
    src_lang: Optional[str] = None
    tgt_lang: Optional[str] = None
    extra_lang: List[str] = field(default_factory=list)  # codes outside languages.KNOWN_LANGUAGES
    qa: List[Sequence[str]] = field(default_factory=list)  # (split, src json, tgt json); "-": translate
    parallel: List[Sequence[str]] = field(default_factory=list)  # (split, src text, tgt text)
    sample: bool = False
    skip_bad: bool = False
    ignore_answers: bool = False  # prediction input: gold answers neither checked nor used
    workers: int = 1
    num_shards: int = 1
    shard_id: int = 0
    force: bool = False
    mt: Optional[MTConfig] = None  # translation models of a missing side (or a dict of MTConfig's fields)
    parallel_format: str = "text"  # of the --parallel files: PARALLEL_FORMATS
    stanza_dir: Optional[str] = None
    # per split ({split or chain/split: file}, or the command line's [SPLIT] FILE entries)
    alignments: Union[Dict[str, str], List[Sequence[str]]] = field(default_factory=dict)  # Pharaoh
    align_extra: Optional[Sequence[str]] = None  # (src text, tgt text) for the eflomal model only
    align_priors: Optional[str] = None  # an alignment model (eflomal priors) for every split
    align_apply: str = "eflomal"  # how a split applies a model: ALIGN_APPLY
    src_conllu: Union[Dict[str, str], List[Sequence[str]]] = field(default_factory=dict)  # CoNLL-U
    tgt_conllu: Union[Dict[str, str], List[Sequence[str]]] = field(default_factory=dict)
    same_max_group: int = 8
    # False: the stage runs no aligner / parser and writes records without links / arcs (for a
    # model that reads none: grafusion-predict --qa, inference.graph_stages)
    align: bool = True
    parse: bool = True
    seed: int = SEED  # eflomal's sampler: same input and seed, same alignments
    spm: Optional[str] = None
    dict: Optional[str] = None
    max_len: int = MAX_LEN
    doc_stride: int = DOC_STRIDE
    max_query_len: int = MAX_QUERY_LEN
    window_pairing: str = "alignment"  # WINDOW_PAIRINGS

    def __post_init__(self):
        if self.command not in COMMANDS:
            raise GraFusionError(f"unknown command {self.command!r}: choose one of {', '.join(COMMANDS)}")
        self._apply_sample()
        if not self.out:
            raise GraFusionError("--out DIR is required (or --sample for the bundled sample)")
        self._resolve_paths()
        if not self.src_lang or not self.tgt_lang:
            raise GraFusionError("--src-lang and --tgt-lang are required")
        for code, option in ((self.src_lang, "--src-lang"), (self.tgt_lang, "--tgt-lang")):
            check_language(code, option, self.extra_lang)
        shard_suffix(self.num_shards, self.shard_id)  # checks the shard options
        if self.workers < 1:
            raise GraFusionError("--workers must be >= 1")
        for value, least, name in ((self.max_len, 8, "--max-len"), (self.doc_stride, 1, "--doc-stride"),
                                   (self.max_query_len, 1, "--max-query-len")):
            if value < least:
                raise GraFusionError(f"{name} must be >= {least}")
        if self.window_pairing not in WINDOW_PAIRINGS:
            raise GraFusionError(f"--window-pairing {self.window_pairing}: choose one of "
                                 f"{', '.join(WINDOW_PAIRINGS)}")
        if self.command == "parallel" and not self.parallel:
            raise GraFusionError("parallel: give --parallel SPLIT SRC_TXT TGT_TXT (or --sample)")
        if isinstance(self.mt, dict):
            self.mt = MTConfig(**self.mt)
        self.mt = self.mt or None
        if self.parallel_format not in PARALLEL_FORMATS:
            raise GraFusionError(f"--parallel-format {self.parallel_format}: choose one of "
                                 f"{', '.join(PARALLEL_FORMATS)}")
        self.qa = [tuple(q) for q in self.qa]
        self.parallel = [tuple(p) for p in self.parallel]
        if self.command == "align-model":
            if self.align_priors or self.num_shards != 1:
                raise GraFusionError("align-model estimates the one alignment model of a run: give it "
                                     "neither --align-priors nor --num-shards (the shards apply its "
                                     "model with --align-priors)")
            if self.priors_split() is None:
                raise GraFusionError("align-model: give the training split (--qa train SRC TGT, or "
                                     "--parallel train SRC TGT); its text (+ --align-extra) is the model's")
        if not self.chains():
            raise GraFusionError(f"{self.command}: no splits given (--qa SPLIT SRC TGT, --parallel SPLIT "
                                 "SRC TGT, or --sample)")
        names = [split for _, split, _, _ in self.chains()]
        self.alignments = per_split(self.alignments, "--alignments", names)
        self.src_conllu = per_split(self.src_conllu, "--src-conllu", names)
        self.tgt_conllu = per_split(self.tgt_conllu, "--tgt-conllu", names)
        if self.align_extra is not None:
            self.align_extra = tuple(self.align_extra)
        if self.align_priors is not None and not os.path.isfile(self.align_priors):
            raise GraFusionError(f"--align-priors {self.align_priors}: file not found")
        if self.align_apply not in ALIGN_APPLY:
            raise GraFusionError(f"--align-apply {self.align_apply}: choose one of {', '.join(ALIGN_APPLY)}")
        if self.command in ("binarize", "all", "parallel"):
            self._check_vocabulary()

    def _resolve_paths(self):
        """Every path option absolute (:func:`~fairseq_grafusion.files.resolved`), once, here:
        the stages, eflomal (started in a directory of its own), the manifests and the stage
        keys see nothing relative."""
        r = resolved
        self.out, self.stanza_dir, self.align_priors = r(self.out), r(self.stanza_dir), r(self.align_priors)
        self.spm, self.dict = r(self.spm), r(self.dict)
        self.qa = [(split, *map(r, files)) for split, *files in self.qa]
        self.parallel = [(split, *map(r, files)) for split, *files in self.parallel]
        if self.align_extra is not None:
            self.align_extra = tuple(map(r, self.align_extra))
        for name in ("alignments", "src_conllu", "tgt_conllu"):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, {split: r(path) for split, path in value.items()})
            else:  # the command line's [SPLIT] FILE entries: the file is last
                setattr(self, name, [(*entry[:-1], r(entry[-1])) for entry in value])
        if isinstance(self.mt, dict):
            self.mt = MTConfig(**self.mt)
        if self.mt:
            self.mt = self.mt.resolved()

    def _apply_sample(self):
        """``--sample``: the bundled en-ro sample for every input not given (``all`` without
        ``--qa`` / ``--parallel`` implies it)."""
        if not (self.sample or (self.command == "all" and not self.qa and not self.parallel)):
            return
        s = lambda *p: os.path.join(SAMPLE_DIR, *p)  # noqa: E731
        self.sample = True
        self.out = self.out or SAMPLE_OUT
        self.src_lang, self.tgt_lang = self.src_lang or "en", self.tgt_lang or "ro"
        if not self.qa and not self.parallel:
            self.qa = [(split, s("qa", f"{split}.en.json"), s("qa", f"{split}.ro.json"))
                       for split in ("train", "valid")]
            self.parallel = [(split, s("parallel", f"{split}.en"), s("parallel", f"{split}.ro"))
                             for split in ("train", "valid")]
        self.spm = self.spm or s("spm", "sentencepiece.bpe.model")
        self.dict = self.dict or s("spm", "dict.txt")
        self.align_extra = self.align_extra or (s("parallel", "train.en"), s("parallel", "train.ro"))

    def _check_vocabulary(self):
        for name in ("spm", "dict"):  # an XLM-R directory, fairseq's or HuggingFace's
            value = getattr(self, name)
            if value and os.path.isdir(value):
                from fairseq_grafusion.hf_xlmr import vocabulary_file

                setattr(self, name, vocabulary_file(value, f"--{name}", os.path.join(self.out, "work", "xlmr")))
        if not self.spm or not self.dict:
            raise GraFusionError("binarize: --spm and --dict are required (XLM-R's "
                                 "sentencepiece.bpe.model and dict.txt)")
        for path, name in ((self.spm, "--spm"), (self.dict, "--dict")):
            if not os.path.isfile(path):
                raise GraFusionError(f"{name} {path}: file not found")
        from .encode import Encoder

        Encoder(self.spm, self.dict)  # fail now, not after hours of alignment, on a bad model

    @property
    def suffix(self):
        """'' for an unsharded run, else '.shard{i}of{K}' (every file of a split gets it)."""
        return shard_suffix(self.num_shards, self.shard_id)

    def chains(self):
        """``(chain, split, src file, tgt file)`` of every split the command processes, QA first
        (``align-model``: the split that estimates the model, alone)."""
        qa = [] if self.command == "parallel" else self.qa
        parallel = [] if self.command == "pairs" else self.parallel
        chains = [("qa", *q) for q in qa] + [("parallel", *p) for p in parallel]
        if self.command == "align-model":
            first = _model_split(chains)
            chains = [c for c in chains if (c[0], c[1]) == first]
        return chains

    def priors_split(self):
        """``(chain, split)`` whose eflomal run estimates the alignment model that every other
        split applies: the QA split ``train``, else the parallel split ``train``; None when the
        run has neither or ``--align-priors`` gives the model."""
        return None if self.align_priors else _model_split(self.chains())

    def stages(self):
        """The stages the command runs on every split, in order (none for ``merge``)."""
        if self.command in ("all", "parallel"):
            return STAGES
        if self.command == "align-model":
            return STAGES[:3]  # pairs, words, align: the model is written by the align stage
        return () if self.command == "merge" else (self.command,)

    def _per_split_file(self, mapping, chain, split):
        """A per-split option's value: 'CHAIN/SPLIT' first, then 'SPLIT' (a QA split's first)."""
        if f"{chain}/{split}" in mapping:
            return mapping[f"{chain}/{split}"]
        if chain == "qa" or split not in {s for c, s, _, _ in self.chains() if c == "qa"}:
            return mapping.get(split)
        return None

    def alignment_file(self, chain, split):
        """``--alignments`` file of a split, or None (eflomal)."""
        return self._per_split_file(self.alignments, chain, split)

    def conllu_file(self, side, chain, split):
        """``--src-conllu`` / ``--tgt-conllu`` file of a split, or None."""
        return self._per_split_file(getattr(self, f"{side}_conllu"), chain, split)

    def window_options(self):
        """What :func:`.binarize.build_group` / :func:`.parallel.build_sentences` take."""
        return {"max_len": self.max_len, "doc_stride": self.doc_stride, "max_query_len": self.max_query_len,
                "window_pairing": self.window_pairing}
