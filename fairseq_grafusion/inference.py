"""From a checkpoint and windows (a binarized split, or examples in memory) to answers.

:func:`load_model` reads a checkpoint (checked before anything is built from it),
:func:`graph_stages` says which pipeline stages the model's windows need,
:func:`alignment_model` and :func:`question_pipeline` turn raw questions into those windows (the
one path of the hub and ``grafusion-predict --qa``), and :func:`predict` /
:func:`predict_split` decode every window into n-best answers, ``{(language, question id):
n-best list}``, through the scorers of :mod:`.scoring.span_scorer`.  Used by
``grafusion-predict``, ``grafusion-plot-attention`` and the hub.
"""
import logging
import os

from .data.languages import gold_file
from .errors import GraFusionError
from .scoring.span_decoding import MAX_ANSWER_LENGTH, N_BEST
from .scoring.span_scorer import LanguageSpanScorer
from .squad import read_gold

logger = logging.getLogger(__name__)


def load_model(path, data, use_cuda=False, fp16=False):
    """The model and task of an ``xmrc_span`` checkpoint, reading dictionaries from ``data``; the
    file is mapped once (its optimizer state is never read), and checked before anything is built
    from it (:mod:`.checkpoint_policy`)."""
    from fairseq import checkpoint_utils

    from . import (
        checkpoint_compat,
        checkpoint_policy,
        plugin,  # noqa: F401  (registers the model, task and criteria)
    )
    from .data.fingerprints import check_model_dictionary

    overrides = {"data": data}
    with checkpoint_policy.expecting(checkpoint_policy.ours(("xmrc_span",))):
        state = checkpoint_compat.load_checkpoint_to_cpu(path, arg_overrides=overrides, mmap=True)
    trained = checkpoint_compat.trained_dictionary(state)
    check_model_dictionary(trained, os.path.join(data, "dict.txt"), path)
    if trained is None:  # a checkpoint from before the fingerprint: at least the sizes must agree
        _check_embedding_size(state, data, path)
    with checkpoint_compat.trusted_globals():
        models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [path], arg_overrides=overrides, state=state)
    model = models[0].eval()
    if use_cuda:
        model = model.cuda()
    if fp16:
        model = model.half()
    return model, task


def graph_stages(model):
    """``(align, parse)``: whether the windows a model reads need the pipeline's alignment and
    parsing stages.  Alignment: a model that reads both streams (``model.fusion``: GraFusion with
    any ``--graph``, FILTER) -- besides the ``+a`` edges, binarize pairs each target window with
    the source window sharing the most alignment links.  Parsing: a model with dependency edges
    (``use_dep``).  A ``--no-fusion`` or ``xlmr_translate_train_*`` model needs neither: its
    answers come from the target stream alone."""
    return bool(model.fusion), bool(getattr(model, "use_dep", False))


def alignment_model(model, model_dir, align_priors=None, align_extra=None, src_lang="en", tgt_lang="xx"):
    """The alignment model a model's questions are aligned with, estimated once and applied to
    every question: ``align_priors`` (an eflomal priors file), else ``alignment.priors`` in
    ``model_dir`` (:func:`~.preprocess.align.priors_to_apply`), else eflomal's priors estimated
    from ``align_extra`` (two line-aligned text files); None when the model reads no alignment
    or none of these is given."""
    from .preprocess.align import AlignmentPriors, estimate_priors, priors_to_apply
    from .preprocess.stages import read_extra

    if not graph_stages(model)[0]:
        return None
    path = priors_to_apply(model_dir, align_priors, align_extra)
    if path:
        logger.info("alignment model: %s", path)
        return AlignmentPriors.load(path)
    if align_extra:
        logger.info("alignment model: estimated by eflomal from %s", " + ".join(align_extra))
        return estimate_priors(*read_extra(align_extra, src_lang, tgt_lang))
    return None


def question_pipeline(model, src_lang, tgt_lang, spm, dict_path, priors=None, **options):
    """The pipeline's stages in memory (:class:`~.preprocess.in_memory.InMemoryPipeline`) for the
    windows ``model`` reads: alignment and parsing only where it needs them (:func:`graph_stages`);
    questions aligned in this process from ``priors``
    (:class:`~.preprocess.align.LexicalAligner`), or, without an alignment model, by one eflomal
    run on each call's questions alone.  The log says which.  ``options`` go to the pipeline
    (stanza_dir, translator_for, max_len, doc_stride, max_query_len; ``max_len`` at most the
    model's positions)."""
    from .preprocess.align import LexicalAligner
    from .preprocess.in_memory import InMemoryPipeline

    align, parse = graph_stages(model)
    if align and priors is not None:
        logger.info("questions aligned in this process by the alignment model (%d word pairs)",
                    len(priors.lexical))
    elif align:
        logger.warning("no alignment model (alignment.priors beside the checkpoint, --align-priors "
                       "or --align-extra): eflomal runs on the questions' own text, slow and weak "
                       "on few questions")
    if "max_len" in options:
        options["max_len"] = min(options["max_len"], model.max_positions())
    return InMemoryPipeline(src_lang, tgt_lang, spm, dict_path,
                            aligner=LexicalAligner(priors).align if align and priors is not None else None,
                            align=align, parse=parse, **options)


def _check_embedding_size(state, data, path):
    from .tasks.graph_pair_task import load_task_dictionary

    rows = [v.shape[0] for k, v in (state.get("model") or {}).items() if k.endswith("embed_tokens.weight")]
    size = len(load_task_dictionary(data))
    if rows and rows[0] != size:
        raise GraFusionError(f"{path} has embeddings for {rows[0]} pieces, {os.path.join(data, 'dict.txt')} "
                             f"gives {size}: use a data directory binarized with the checkpoint's dict.txt")


def predict(model, reader, contexts, pad_idx, stream="tgt", n_best=N_BEST,
            max_answer_length=MAX_ANSWER_LENGTH, batch_size=32, progress=False):
    """``{(language, question id): n-best list}`` over every window of ``reader`` (a
    :class:`~.data.PairReader` or :class:`~.data.PairList`; the language is ``None`` where the
    split does not name it).  ``contexts``: ``{lang: {question id: context of stream}}`` for
    every language of the split.  Batches hold at most ``batch_size`` windows, all windows of
    their questions."""
    import torch
    from fairseq import utils
    from tqdm import tqdm

    from .data import GraphPairDataset

    if stream == "src" and not model.fusion:
        raise GraFusionError("a --no-fusion model has no source stream to answer in")
    scorer = LanguageSpanScorer(reader, {lang: (contexts[lang], {}) for lang in reader.languages},
                                stream=stream, n_best=n_best, max_answer_length=max_answer_length)
    dataset = GraphPairDataset(reader, pad_idx, shuffle=False, group_questions=True)
    batches = dataset.batch_by_size(dataset.ordered_indices(), max_sentences=batch_size)
    use_cuda = next(model.parameters()).is_cuda
    results = {}
    with torch.no_grad():
        for batch in tqdm(batches, desc="predict", disable=None if progress else True, leave=False):
            sample = dataset.collater([dataset[int(i)] for i in batch])
            if use_cuda:
                sample = utils.move_to_cuda(sample)
            out = model(**sample["net_input"])
            results.update(scorer.decode(sample["id"].cpu(), sample["lang"].cpu(),
                                         out[f"{stream}_start"].float().cpu(),
                                         out[f"{stream}_end"].float().cpu()))
    keys = dict.fromkeys(reader.question_key(i) for i in range(len(reader)))
    missing = [q for q in keys if q not in results]
    if missing:
        raise GraFusionError(f"{len(missing)} questions were not decoded, e.g. {missing[0][1]!r}")
    return results


def by_language(results):
    """``{lang: {question id: n-best list}}`` of :func:`predict`'s answers."""
    out = {}
    for (lang, qid), nbest in results.items():
        out.setdefault(lang, {})[qid] = nbest
    return out


def predict_split(model, task, data, split, stream="tgt", gold=None, **kwargs):
    """:func:`predict` over the binarized ``data/split``, with the contexts of its gold file
    (``gold``, default ``DATA/SPLIT.STREAM.json``; per language for a combined split,
    :func:`~.data.languages.gold_files`); ``kwargs`` go to :func:`predict`."""
    from .data import PairReader
    from .data.fingerprints import check_gold_contexts, check_split_dictionary
    from .data.languages import gold_files

    reader = PairReader(os.path.join(data, split))
    check_split_dictionary(reader, os.path.join(data, "dict.txt"), vocab_size=len(task.source_dictionary))
    if len(reader.languages) > 1:  # a combined split: each language's own gold file
        if gold:
            raise GraFusionError(f"{reader.prefix} holds the languages "
                                 f"{', '.join(map(str, reader.languages))}: --gold takes one language; "
                                 "leave it out (each language's DATA/SPLIT.STREAM.LANG.json is read)")
        contexts = {lang: read_gold(path)[0]
                    for lang, path in gold_files(data, split, stream, reader.languages).items()}
    else:
        path = gold or gold_file(data, split, stream)
        contexts = {reader.languages[0]: read_gold(path)[0]}
        check_gold_contexts(reader, contexts[reader.languages[0]], stream, path)  # before decoding
    return predict(model, reader, contexts, task.source_dictionary.pad(), stream, **kwargs)
