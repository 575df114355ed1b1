"""From a checkpoint and windows (a binarized split, or examples in memory) to answers, F1 and EM.

Used by ``xmrc_span --eval-span-f1`` during validation, by ``grafusion-predict`` and by the hub.
The windows of one question are consecutive examples sharing its question id; a batch given to
:meth:`SpanScorer.decode` must hold all windows of each of its questions (see
``GraphPairDataset(group_questions=True)``).  Answers are exact substrings of the original
context, found through the token character offsets (``src.offsets`` / ``tgt.offsets``).
"""
import os

import numpy as np

from .errors import GraFusionError
from .scoring.qa_metrics import exact_match_score, f1_score, resolve_metric
from .scoring.span_decoding import MAX_ANSWER_LENGTH, N_BEST, SpanWindow, nbest_spans
from .squad import read_gold


def gold_path(data_dir, split, stream):
    """The SQuAD file ``grafusion-preprocess binarize`` writes beside a split, per stream."""
    return os.path.join(data_dir, f"{split}.{stream}.json")


def load_model(path, data, use_cuda=False, fp16=False):
    """The model and task of an ``xmrc_span`` checkpoint, reading dictionaries from ``data``; the
    file is read once, and checked before anything is built from it (:mod:`.checkpoint_policy`)."""
    from fairseq import checkpoint_utils

    from . import plugin  # noqa: F401  (registers the model, task and criteria)

    from . import checkpoint_compat, checkpoint_policy
    from .data.fingerprints import check_model_dictionary

    overrides = {"data": data}
    with checkpoint_policy.expecting(checkpoint_policy.ours(("xmrc_span",))):
        state = checkpoint_compat.load_checkpoint_to_cpu(path, arg_overrides=overrides)
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


def _check_embedding_size(state, data, path):
    from .tasks.graph_pair_task import load_task_dictionary

    rows = [v.shape[0] for k, v in (state.get("model") or {}).items() if k.endswith("embed_tokens.weight")]
    size = len(load_task_dictionary(data))
    if rows and rows[0] != size:
        raise GraFusionError(f"{path} has embeddings for {rows[0]} pieces, {os.path.join(data, 'dict.txt')} "
                             f"gives {size}: use a data directory binarized with the checkpoint's dict.txt")


class SpanScorer:
    """Decodes the ``stream`` ("tgt" or "src") of a split and scores it against gold answers."""

    def __init__(self, reader, contexts, answers=None, stream="tgt", lang=None, metric="auto",
                 max_answer_length=MAX_ANSWER_LENGTH, n_best=N_BEST, lang_id=None):
        field = f"{stream}.offsets"
        if field not in reader.fields:
            raise GraFusionError(f"{reader.prefix}: the split has no '{field}' field (token "
                                 "character offsets); binarize it with grafusion-preprocess")
        ids = reader.ids  # lang_id: only that language's questions of a multilingual split
        if lang_id is not None:
            ids = [reader.ids[i] for i in np.flatnonzero(reader.lang_ids == lang_id)]
        missing = sorted({q for q in ids if q not in contexts})
        if missing:
            raise GraFusionError(f"{reader.prefix}: {len(missing)} question ids have no context in "
                                 f"the gold file, e.g. {missing[0]!r}")
        self.reader, self.contexts, self.answers = reader, contexts, answers or {}
        self.stream, self.field = stream, field
        self.lang = lang or "en"
        self.metric = resolve_metric(lang, metric) if lang else "squad"
        self.max_answer_length, self.n_best = max_answer_length, n_best

    def decode(self, indices, start_logits, end_logits):
        """``{question id: n-best list}`` for a batch of windows (dataset ``indices``)."""
        windows = {}
        for row, index in enumerate(indices.tolist()):
            offsets = self.reader.field(self.field, index).reshape(-1, 2)
            length = len(offsets)
            windows.setdefault(self.reader.ids[index], []).append(SpanWindow(
                start_logits[row, :length], end_logits[row, :length], offsets[:, 0] >= 0, offsets))
        return {qid: nbest_spans(w, self.contexts[qid], self.n_best, self.max_answer_length)
                for qid, w in windows.items()}

    def score(self, predictions):
        """Summed F1 and EM (over the gold answers' max) of ``{id: text}`` and the count."""
        f1 = em = 0.0
        for qid, text in predictions.items():
            golds = self.answers.get(qid) or [""]
            f1 += max(f1_score(text, g, self.lang, self.metric) for g in golds)
            em += max(float(exact_match_score(text, g, self.lang, self.metric)) for g in golds)
        return f1, em, len(predictions)

    def decode_and_score(self, sample, out):
        """Summable ``span_f1`` / ``span_em`` / ``span_n`` of a batch and the model's output."""
        nbest = self.decode(sample["id"].cpu(), out[f"{self.stream}_start"].detach().float().cpu(),
                            out[f"{self.stream}_end"].detach().float().cpu())
        f1, em, n = self.score({q: (b[0].text if b else "") for q, b in nbest.items()})
        return {"span_f1": f1, "span_em": em, "span_n": n}


class LanguageSpanScorer:
    """:class:`SpanScorer` for a split that mixes languages (``grafusion-preprocess combine``):
    each example is decoded against its own language's contexts (question ids repeat across
    languages), each answer scored with its language's official metric, and a batch gives the
    summable ``span_{f1,em,n}_<lang>`` of :class:`~.scoring.per_language.LanguageScorer` plus the
    question-weighted ``span_f1`` / ``span_em`` / ``span_n`` over all languages.

    ``golds``: ``{lang: (contexts, answers)}`` for every language of ``reader.languages``.
    """

    def __init__(self, reader, golds, stream="tgt", metric="auto", default_lang=None,
                 max_answer_length=MAX_ANSWER_LENGTH, n_best=N_BEST):
        from .scoring.per_language import LanguageScorer

        self.stream, self.languages = stream, list(reader.languages)
        self.scorers = [SpanScorer(reader, golds[lang][0], stream=stream, lang=lang or default_lang,
                                   metric=metric, max_answer_length=max_answer_length,
                                   n_best=n_best, lang_id=k)
                        for k, lang in enumerate(self.languages)]
        self.by_language = LanguageScorer({lang: golds[lang][1] for lang in self.languages},
                                          metric=metric, default_lang=default_lang)

    def decode(self, indices, lang_ids, start_logits, end_logits):
        """``{(lang, question id): n-best list}`` for a batch of windows."""
        results = {}
        for k in np.unique(lang_ids.numpy()).tolist():  # one decode per language in the batch
            rows = torch_nonzero(lang_ids == k)
            nbest = self.scorers[k].decode(indices[rows], start_logits[rows], end_logits[rows])
            results.update({(self.languages[k], q): b for q, b in nbest.items()})
        return results

    def decode_and_score(self, sample, out):
        nbest = self.decode(sample["id"].cpu(), sample["lang"].cpu(),
                            out[f"{self.stream}_start"].detach().float().cpu(),
                            out[f"{self.stream}_end"].detach().float().cpu())
        logging_output = self.by_language.logging_output(
            {key: (b[0].text if b else "") for key, b in nbest.items()})
        labels = set(self.by_language.labels.values())
        for kind in ("f1", "em", "n"):
            logging_output[f"span_{kind}"] = sum(logging_output[f"span_{kind}_{x}"] for x in labels)
        return logging_output


def torch_nonzero(mask):
    """Row indices where a boolean tensor is true."""
    return mask.nonzero(as_tuple=True)[0]


def predict(model, reader, contexts, pad_idx, stream="tgt", n_best=N_BEST,
            max_answer_length=MAX_ANSWER_LENGTH, batch_size=32, progress=False):
    """``{question id: n-best list}`` over every window of ``reader`` (a
    :class:`~.data.PairReader` or :class:`~.data.PairList`); ``contexts`` maps question ids to
    the contexts of ``stream``.  Batches hold at most ``batch_size`` windows, all windows of their
    questions.  A split that mixes languages (``grafusion-preprocess combine``) takes
    ``{lang: contexts}`` and gives ``{lang: {question id: n-best list}}``, the original ids."""
    import torch
    from fairseq import utils
    from tqdm import tqdm

    from .data import GraphPairDataset

    if stream == "src" and not model.fusion:
        raise GraFusionError("a --no-fusion model has no source stream to answer in")
    languages = list(reader.languages)
    if len(languages) > 1:
        scorer = LanguageSpanScorer(reader, {lang: (contexts[lang], {}) for lang in languages},
                                    stream=stream, n_best=n_best, max_answer_length=max_answer_length)
    else:
        scorer = SpanScorer(reader, contexts, stream=stream, n_best=n_best,
                            max_answer_length=max_answer_length)
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
            logits = out[f"{stream}_start"].float().cpu(), out[f"{stream}_end"].float().cpu()
            if len(languages) > 1:
                results.update(scorer.decode(sample["id"].cpu(), sample["lang"].cpu(), *logits))
            else:
                results.update(scorer.decode(sample["id"].cpu(), *logits))
    keys = (reader.ids if len(languages) == 1 else
            [reader.question_key(i) for i in range(len(reader))])
    missing = [q for q in dict.fromkeys(keys) if q not in results]
    if missing:
        raise GraFusionError(f"{len(missing)} questions were not decoded, e.g. {missing[0]!r}")
    if len(languages) == 1:
        return results
    per_language = {lang: {} for lang in languages}
    for (lang, q), nbest in results.items():
        per_language[lang][q] = nbest
    return per_language


def predict_split(model, task, data, split, stream="tgt", gold=None, **kwargs):
    """:func:`predict` over the binarized ``data/split``, with the contexts of its gold file
    (``gold``, default :func:`gold_path`; per language for a combined split, which gives
    ``{lang: {id: n-best}}``); ``kwargs`` go to :func:`predict`."""
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
        path = gold or gold_path(data, split, stream)
        contexts, _ = read_gold(path)
        check_gold_contexts(reader, contexts, stream, path)  # before any decoding
    return predict(model, reader, contexts, task.source_dictionary.pad(), stream, **kwargs)
