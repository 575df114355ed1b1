"""``grafusion-predict``: answers for a QA file or a binarized split, as SQuAD-format predictions.

    grafusion-predict --path CKPT/checkpoint_best.pt --data DATA --split test \\
        --output preds.json [--nbest-output nbest.json] [--gold DATA/test.tgt.json]
    grafusion-predict --path CKPT/checkpoint_best.pt --qa test.en.json test.de.json \\
        --src-lang en --tgt-lang de --spm sentencepiece.bpe.model --dict dict.txt --output preds.json
    grafusion-predict --path CKPT/checkpoint_best.pt --data COMBINED --split valid \\
        --output preds.{lang}.json      # a combined split: one file per language

With ``--qa`` the raw SQuAD files go through the pipeline's stages in memory, on the hub's path
(``inference.question_pipeline``; ``-`` for the English file translates the target side with
``--mt-test-model`` and the other ``--mt-*`` options, as ``grafusion-preprocess`` takes them;
alignment and parsing only if the model reads such edges).  The questions are aligned in this
process by the alignment model: ``--align-priors``, else ``alignment.priors`` beside the
checkpoint, else one estimated from ``--align-extra``; eflomal runs on the questions' own text
only without any of these, and the log says which path ran.  Gold answers are ignored: every
question is answered whatever its gold answer (a bad one, none, or an empty context, whose answer
is ""); score the output against the original files.

Every window of a question is decoded (n-best over all windows, start <= end, at most
``--max-answer-length`` tokens, both ends in the passage) and the answer is the exact substring of
the original context.  The contexts come from the split's SQuAD file (``DATA/<split>.<stream>.json``
as ``grafusion-preprocess binarize`` writes it, or ``--gold``).  Score the output with
``grafusion-evaluate``.
"""
import argparse
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Optional, Sequence

from ..console import run, setup_logging
from ..errors import GraFusionError
from ..files import resolved, write_json
from ..preprocess.encode import DOC_STRIDE, MAX_LEN
from ..preprocess.mt_config import MTConfig
from ..preprocess.mt_options import add_mt_arguments, pop_mt_config
from ..scoring.span_decoding import MAX_ANSWER_LENGTH, N_BEST

logger = logging.getLogger("grafusion-predict")


def get_parser():
    p = argparse.ArgumentParser(prog="grafusion-predict", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--path", required=True, help="checkpoint of an xmrc_span model")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="binarized data directory (with dict.txt)")
    source.add_argument("--qa", nargs=2, metavar=("SRC_JSON", "TGT_JSON"),
                        help="raw SQuAD files (English, target; '-' to translate the English side)")
    p.add_argument("--split", default="test", help="split of --data to answer (default: test)")
    raw = p.add_argument_group("raw input (--qa), for the pipeline")
    raw.add_argument("--src-lang", default="en")
    raw.add_argument("--tgt-lang")
    raw.add_argument("--extra-lang", action="append", default=[], metavar="CODE",
                     help="accept CODE as a language code although the pipeline does not know it")
    raw.add_argument("--spm", help="SentencePiece model the checkpoint's data was encoded with (or the XLM-R "
                                   "directory, fairseq's or HuggingFace's, that holds it)")
    raw.add_argument("--dict", help="its fairseq dict.txt (or that XLM-R directory)")
    raw.add_argument("--max-len", type=int, default=MAX_LEN)
    raw.add_argument("--doc-stride", type=int, default=DOC_STRIDE)
    raw.add_argument("--stanza-dir")
    raw.add_argument("--align-extra", nargs=2, metavar=("SRC_TXT", "TGT_TXT"),
                     help="line-aligned text to estimate the alignment model from (eflomal, once), "
                     "when there is no --align-priors")
    raw.add_argument("--align-priors", metavar="FILE",
                     help="the alignment model to apply (eflomal priors, as grafusion-preprocess "
                     "writes data/work/alignment.priors), applied in this process; default: "
                     "alignment.priors beside --path, if there, else a model from --align-extra, "
                     "else eflomal on the questions' own text")
    add_mt_arguments(p)
    p.add_argument("--stream", choices=["tgt", "src"], default="tgt",
                   help="answer in the target (default) or the source language")
    p.add_argument("--gold", help="SQuAD file with the contexts (default DATA/<split>.<stream>.json)")
    p.add_argument("--output", required=True, help="predictions JSON {question id: answer}; for a "
                   "split of several languages (grafusion-preprocess combine) a name with {lang}, "
                   "one file per language")
    p.add_argument("--nbest-output", help="optional n-best JSON with scores and probabilities "
                   "({lang} as in --output)")
    p.add_argument("--n-best", type=int, default=N_BEST, help="default %(default)s")
    p.add_argument("--max-answer-length", type=int, default=MAX_ANSWER_LENGTH,
                   help="in tokens (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per batch")
    p.add_argument("--cpu", action="store_true", help="do not use CUDA even if available")
    p.add_argument("--fp16", action="store_true", help="half precision on the GPU")
    p.add_argument("--user-dir", help=argparse.SUPPRESS)
    return p


@dataclass
class PredictConfig:
    """The options of ``grafusion-predict`` (see ``--help``), checked once."""

    path: str
    output: str
    data: Optional[str] = None
    qa: Optional[Sequence[str]] = None  # (English SQuAD file or "-", target SQuAD file)
    split: str = "test"
    src_lang: str = "en"
    tgt_lang: Optional[str] = None
    extra_lang: Sequence[str] = ()
    spm: Optional[str] = None
    dict: Optional[str] = None
    max_len: int = MAX_LEN
    doc_stride: int = DOC_STRIDE
    stanza_dir: Optional[str] = None
    mt: Optional[MTConfig] = None  # translation models (--mt-*) for a '-' side of --qa
    align_extra: Optional[Sequence[str]] = None
    align_priors: Optional[str] = None  # default: alignment.priors beside the checkpoint, if there
    stream: str = "tgt"
    gold: Optional[str] = None
    nbest_output: Optional[str] = None
    n_best: int = N_BEST
    max_answer_length: int = MAX_ANSWER_LENGTH
    batch_size: int = 32
    cpu: bool = False
    fp16: bool = False
    user_dir: Optional[str] = None  # accepted as fairseq's commands accept it; the plugin is ours

    def __post_init__(self):
        if (self.data is None) == (self.qa is None):
            raise GraFusionError("give --data DIR (a binarized split) or --qa SRC_JSON TGT_JSON")
        for name in ("path", "output", "data", "spm", "dict", "stanza_dir", "align_priors", "gold",
                     "nbest_output"):  # absolute, once (files.resolved); '-' kept
            setattr(self, name, resolved(getattr(self, name)))
        self.qa = None if self.qa is None else tuple(map(resolved, self.qa))
        self.align_extra = None if self.align_extra is None else tuple(map(resolved, self.align_extra))
        if isinstance(self.mt, dict):
            self.mt = MTConfig(**self.mt)
        if self.mt:
            self.mt = self.mt.resolved()
        if self.qa is not None:
            if not self.tgt_lang:
                raise GraFusionError("--qa needs --tgt-lang (the target language code)")
            for name, path in (("--spm", self.spm), ("--dict", self.dict)):
                if not path:
                    raise GraFusionError(f"--qa needs {name} (what the checkpoint's data was encoded with)")
        for name, value in (("--n-best", self.n_best), ("--max-answer-length", self.max_answer_length),
                            ("--batch-size", self.batch_size)):
            if value < 1:
                raise GraFusionError(f"{name} must be >= 1, got {value}")

    def pipeline_config(self, out):
        """The pipeline's config for ``--qa`` (split ``test`` of ``out/qa-bin``), which checks the
        options and resolves ``--spm`` / ``--dict`` as ``grafusion-preprocess`` does; gold answers
        are only for scoring, so a bad or missing one never stops prediction (``ignore_answers``)."""
        from ..preprocess.config import PipelineConfig

        return PipelineConfig(command="all", out=out, src_lang=self.src_lang, tgt_lang=self.tgt_lang,
                              extra_lang=list(self.extra_lang),
                              qa=[("test", *self.qa)], spm=self.spm, dict=self.dict,
                              max_len=self.max_len, doc_stride=self.doc_stride,
                              stanza_dir=self.stanza_dir, mt=self.mt,
                              align_extra=self.align_extra, align_priors=self.align_priors,
                              ignore_answers=True)


def main(argv=None):
    options = vars(get_parser().parse_args(argv))
    mt = pop_mt_config(options)
    cfg = PredictConfig(**options, mt=mt)
    setup_logging()
    if cfg.qa:
        nbest = _predict_raw(cfg)
    else:
        nbest = _predict(cfg, *_load(cfg, cfg.data), cfg.data, cfg.split)
    from ..inference import by_language

    per_language = by_language(nbest)
    if len(per_language) <= 1:  # one language: the file names and the log as given
        per_language = {None: next(iter(per_language.values()), {})}
    for lang, answers in per_language.items():
        output = cfg.output.replace("{lang}", str(lang))
        write_json(output, {q: (b[0].text if b else "") for q, b in answers.items()})
        if cfg.nbest_output:
            write_json(cfg.nbest_output.replace("{lang}", str(lang)), {
                q: [{"text": p.text, "score": p.score, "probability": p.probability,
                     "start_logit": p.start_logit, "end_logit": p.end_logit,
                     "char_start": p.char_start, "char_end": p.char_end} for p in b]
                for q, b in answers.items()})
        empty = sum(1 for b in answers.values() if not b)
        logger.info("%s%d questions answered -> %s%s", f"{lang}: " if lang else "", len(answers),
                    output, f" ({empty} without a valid span: answer '')" if empty else "")


def _predict_raw(cfg):
    """``--qa``: the files' questions through the hub's path, in memory
    (:func:`~fairseq_grafusion.inference.question_pipeline`: words, alignment by the alignment
    model in this process, dependency arcs, windows), then decoded as a binarized split is."""
    from ..inference import alignment_model, predict, question_pipeline
    from ..preprocess.binarize import copy_dictionary
    from ..preprocess.stages import translator_for
    from ..squad import read_squad

    with tempfile.TemporaryDirectory(prefix="grafusion-predict-") as tmp:
        pipeline = cfg.pipeline_config(tmp)  # checks the options and files first
        data = os.path.join(tmp, "qa-bin")
        copy_dictionary(pipeline.dict, data)
        model, task = _load(cfg, data)
    sides = []
    for path in cfg.qa:
        if path == "-":
            sides.append(None)
            continue
        passages, questions, stats = read_squad(path, ignore_answers=True)
        sides.append((passages, questions))
        for what, count in sorted(stats.items()):
            if count:
                logger.info("%s: %d %s", path, count, what)
    priors = alignment_model(model, os.path.dirname(cfg.path), cfg.align_priors, cfg.align_extra,
                             cfg.src_lang, cfg.tgt_lang)
    questions = question_pipeline(model, cfg.src_lang, cfg.tgt_lang, pipeline.spm, pipeline.dict,
                                  priors, stanza_dir=cfg.stanza_dir, translator_for=translator_for(pipeline),
                                  max_len=cfg.max_len, doc_stride=cfg.doc_stride)
    windows = questions.windows(*sides, name=cfg.qa[1] if cfg.qa[1] != "-" else cfg.qa[0])
    for line in windows.report:
        logger.warning(line)
    if not len(windows.reader):  # no question pair left (an empty split still names a language)
        raise GraFusionError(f"{' / '.join(cfg.qa)}: no question pairs to answer ({'; '.join(windows.report)})")
    logger.info("%d question pairs, %d windows", windows.counts["question pairs out"], len(windows.reader))
    lang = windows.reader.languages[0]
    return predict(model, windows.reader, {lang: windows.contexts[cfg.stream]}, task.source_dictionary.pad(),
                   cfg.stream, n_best=cfg.n_best, max_answer_length=cfg.max_answer_length,
                   batch_size=cfg.batch_size, progress=True)


def _load(cfg, data):
    import torch

    from ..inference import load_model

    use_cuda = torch.cuda.is_available() and not cfg.cpu
    return load_model(cfg.path, data, use_cuda, cfg.fp16 and use_cuda)


def _predict(cfg, model, task, data, split):
    from ..inference import predict_split

    _check_outputs(cfg, data, split)
    return predict_split(model, task, data, split, cfg.stream, cfg.gold, n_best=cfg.n_best,
                         max_answer_length=cfg.max_answer_length, batch_size=cfg.batch_size,
                         progress=True)


def _check_outputs(cfg, data, split):
    """Before any decoding: a split of several languages needs ``{lang}`` in the file names."""
    from ..data import PairReader

    languages = PairReader(os.path.join(data, split)).languages
    for name, value in (("--output", cfg.output), ("--nbest-output", cfg.nbest_output)):
        if len(languages) > 1 and value and "{lang}" not in value:
            raise GraFusionError(f"{name} {value}: split '{split}' holds the languages "
                                 f"{', '.join(map(str, languages))}; put {{lang}} in the file "
                                 "name (one file per language, e.g. preds.{lang}.json)")


def cli_main(argv=None):
    run("grafusion-predict", main, argv)


if __name__ == "__main__":
    cli_main()
