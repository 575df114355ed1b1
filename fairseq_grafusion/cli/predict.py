"""``grafusion-predict``: answers for a QA file or a binarized split, as SQuAD-format predictions.

    grafusion-predict --path CKPT/checkpoint_best.pt --data DATA --split test \\
        --output preds.json [--nbest-output nbest.json] [--gold DATA/test.tgt.json]
    grafusion-predict --path CKPT/checkpoint_best.pt --qa test.en.json test.de.json \\
        --src-lang en --tgt-lang de --spm sentencepiece.bpe.model --dict dict.txt --output preds.json

With ``--qa`` the raw SQuAD files go through ``grafusion-preprocess`` first (in a temporary
directory; ``-`` for the English file translates the target side with ``--mt-model``), with
``--ignore-answers``: every question is answered whatever its gold answer (a bad one, none, or an
empty context, whose answer is ""); score the output against the original files.

Every window of a question is decoded (n-best over all windows, start <= end, at most
``--max-answer-length`` tokens, both ends in the passage) and the answer is the exact substring of
the original context.  The contexts come from the split's SQuAD file (``DATA/<split>.<stream>.json``
as ``grafusion-preprocess binarize`` writes it, or ``--gold``).  Score the output with
``grafusion-evaluate``.
"""
import argparse
import json
import logging
import os
import tempfile

import torch

from ..errors import GraFusionError
from . import run, setup_logging

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
    raw = p.add_argument_group("raw input (--qa), passed to grafusion-preprocess")
    raw.add_argument("--src-lang", default="en")
    raw.add_argument("--tgt-lang")
    raw.add_argument("--spm", help="SentencePiece model the checkpoint's data was encoded with")
    raw.add_argument("--dict", help="its fairseq dict.txt")
    raw.add_argument("--max-len", type=int, default=384)
    raw.add_argument("--doc-stride", type=int, default=128)
    raw.add_argument("--stanza-dir")
    raw.add_argument("--mt-model")
    raw.add_argument("--align-extra", nargs=2, metavar=("SRC_TXT", "TGT_TXT"))
    p.add_argument("--stream", choices=["tgt", "src"], default="tgt",
                   help="answer in the target (default) or the source language")
    p.add_argument("--gold", help="SQuAD file with the contexts (default DATA/<split>.<stream>.json)")
    p.add_argument("--output", required=True, help="predictions JSON {question id: answer}")
    p.add_argument("--nbest-output", help="optional n-best JSON with scores and probabilities")
    p.add_argument("--n-best", type=int, default=20)
    p.add_argument("--max-answer-length", type=int, default=30, help="in tokens (default 30)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per batch")
    p.add_argument("--cpu", action="store_true", help="do not use CUDA even if available")
    p.add_argument("--fp16", action="store_true", help="half precision on the GPU")
    p.add_argument("--user-dir", help=argparse.SUPPRESS)
    return p


def load_model(path, data, use_cuda=False, fp16=False):
    """The model and task of an ``xmrc_span`` checkpoint, reading dictionaries from ``data``."""
    from fairseq import checkpoint_utils

    if not os.path.isfile(path):
        raise GraFusionError(f"checkpoint {path} does not exist")
    overrides = {"data": data}
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path, arg_overrides=overrides)
    except Exception as e:  # a truncated or foreign file: say which, not a pickle traceback
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise GraFusionError(f"{path}: not a fairseq checkpoint ({type(e).__name__}: {first})") from None
    cfg = state.get("cfg") or {}
    task_name = (cfg.get("task") or {}).get("_name") if hasattr(cfg, "get") else None
    if task_name != "xmrc_span":
        raise GraFusionError(f"{path} was trained with task {task_name!r}, not xmrc_span; "
                             "predict needs a fine-tuned span-extraction checkpoint")
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [path], arg_overrides=overrides, state=state)
    model = models[0].eval()
    if use_cuda:
        model = model.cuda()
    if fp16:
        model = model.half()
    return model, task


def preprocess_qa(out, src_json, tgt_json, src_lang, tgt_lang, spm, dict_path, max_len=384,
                  doc_stride=128, stanza_dir=None, mt_model=None, align_extra=None, quiet=True):
    """Run ``grafusion-preprocess all`` on one QA pair of files into ``out``; returns the
    binarized directory (split ``test``, with its gold files and ``dict.txt``)."""
    import contextlib
    import io

    from preprocess.cli import main as preprocess_main

    if not tgt_lang:
        raise GraFusionError("--qa needs --tgt-lang (the target language code)")
    for name, path in (("--spm", spm), ("--dict", dict_path)):
        if not path:
            raise GraFusionError(f"--qa needs {name} (what the checkpoint's data was encoded with)")
    # gold answers are only for scoring: a bad or missing one never stops prediction
    args = ["all", "--ignore-answers", "--qa", "test", src_json, tgt_json, "--out", out, "--src-lang", src_lang,
            "--tgt-lang", tgt_lang, "--spm", spm, "--dict", dict_path, "--max-len", str(max_len),
            "--doc-stride", str(doc_stride)]
    if stanza_dir:
        args += ["--stanza-dir", stanza_dir]
    if mt_model:
        args += ["--mt-model", mt_model]
    if align_extra:
        args += ["--align-extra", *align_extra]
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        preprocess_main(args)
    return os.path.join(out, "qa-bin")


def predict_split(model, task, split, stream="tgt", gold=None, batch_size=32, n_best=20,
                  max_answer_length=30, progress=True, data=None):
    """``{question id: n-best list}`` over the whole split of ``data`` (default: the task's)."""
    from fairseq import utils
    from fairseq.logging import progress_bar

    from ..data import GraphPairDataset, PairReader
    from ..inference import SpanScorer, gold_path, read_squad

    data = data or task.cfg.data
    reader = PairReader(os.path.join(data, split))
    contexts, answers = read_squad(gold or gold_path(data, split, stream))
    scorer = SpanScorer(reader, contexts, answers, stream=stream, n_best=n_best,
                        max_answer_length=max_answer_length)
    if stream == "src" and not model.fusion:
        raise GraFusionError("a --no-fusion model has no source stream to answer in")
    dataset = GraphPairDataset(reader, task.source_dictionary.pad(), shuffle=False,
                               group_questions=True)
    itr = task.get_batch_iterator(dataset=dataset, max_sentences=batch_size,
                                  ignore_invalid_inputs=False).next_epoch_itr(shuffle=False)
    bar = progress_bar.progress_bar(itr, log_format="tqdm" if progress else "none",
                                    prefix=f"predict {split}")
    use_cuda = next(model.parameters()).is_cuda
    results = {}
    with torch.no_grad():
        for sample in bar:
            if use_cuda:
                sample = utils.move_to_cuda(sample)
            out = model(**sample["net_input"])
            results.update(scorer.decode(sample["id"].cpu(), out[f"{stream}_start"].float().cpu(),
                                         out[f"{stream}_end"].float().cpu()))
    missing = [q for q in dict.fromkeys(reader.ids) if q not in results]
    if missing:
        raise GraFusionError(f"{len(missing)} questions were not decoded, e.g. {missing[0]!r}")
    return results


def write_json(path, obj):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
    os.replace(tmp, path)


def main(argv=None):
    args = get_parser().parse_args(argv)
    setup_logging()
    import fairseq_grafusion  # noqa: F401  (registers the plugin)

    use_cuda = torch.cuda.is_available() and not args.cpu
    with tempfile.TemporaryDirectory(prefix="grafusion-predict-") as tmp:
        data, split = args.data, args.split
        if args.qa:
            data, split = preprocess_qa(tmp, *args.qa, args.src_lang, args.tgt_lang, args.spm,
                                        args.dict, args.max_len, args.doc_stride, args.stanza_dir,
                                        args.mt_model, args.align_extra, quiet=False), "test"
        model, task = load_model(args.path, data, use_cuda, args.fp16 and use_cuda)
        nbest = predict_split(model, task, split, args.stream, args.gold, args.batch_size,
                              args.n_best, args.max_answer_length)
    write_json(args.output, {q: (b[0].text if b else "") for q, b in nbest.items()})
    if args.nbest_output:
        write_json(args.nbest_output, {q: [{"text": p.text, "score": p.score,
                                            "probability": p.probability,
                                            "start_logit": p.start_logit, "end_logit": p.end_logit}
                                           for p in b] for q, b in nbest.items()})
    empty = sum(1 for b in nbest.values() if not b)
    logger.info("%d questions answered -> %s%s", len(nbest), args.output,
                f" ({empty} without a valid span: answer '')" if empty else "")


def cli_main(argv=None):
    run("grafusion-predict", main, argv)


if __name__ == "__main__":
    cli_main()
