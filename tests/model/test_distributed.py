"""Two fairseq-train processes (gloo, CPU) train one model on a directory of three languages
(``grafusion-preprocess combine``): the logged losses and the validation F1 are summed over both
workers exactly, overall and per language (each ``f1_<lang>`` equals a single-process predict +
evaluate of the saved checkpoint on that language, ``f1_avg`` their mean).  The CPU stand-in for
``--distributed-world-size 2`` on GPUs: fairseq's c10d DDP needs CUDA devices, so the run uses
``--ddp-backend legacy_ddp`` (same gradient all-reduce)."""
import json
import os
import socket

import pytest
from test_predict import predict

from conftest import logged, train_args, train_workers
from fairseq_grafusion.data.languages import gold_file
from fairseq_grafusion.scoring.qa_metrics import evaluate

LANGS = ("de", "zh", "ar")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    from fairseq_grafusion.preprocess import cli as preprocess_cli
    from fairseq_grafusion.synthetic import SyntheticXMRC

    tmp = tmp_path_factory.mktemp("dist")
    # 137 validation questions (46 + 46 + 45 in three languages) = 9 batches of <= 16: one worker
    # gets 5, the other 4 and fairseq's dummy batch, whose logging outputs must not count; batches
    # straddle languages
    pairs = []
    # 800 training examples = 50 full batches of 16 per epoch
    for lang, (words, seed), (train, valid) in zip(LANGS, (((6, 9), 1), ((20, 26), 2), ((12, 15), 3)),
                                                   ((267, 46), (267, 46), (266, 45))):
        directory = str(tmp / f"en-{lang}")
        SyntheticXMRC(task="key", passage_words=words).write(directory, (("train", train), ("valid", valid)),
                                                              seed=seed)
        pairs += ["--pair", lang, directory]
    data = str(tmp / "data")
    preprocess_cli.main(["combine", "--out", data] + pairs)
    save = str(tmp / "ck")
    args = train_args(data, save, "--eval-span-f1", "--distributed-world-size", "2",
                      "--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp",
                      "--distributed-init-method", f"tcp://127.0.0.1:{free_port()}",
                      "--distributed-no-spawn", "--validate-interval-updates", "50", updates=100)
    text = train_workers(args, tmp, timeout=600)
    return data, save, text[0]


def test_both_workers_train_one_model(two_workers):
    _, save, log = two_workers
    assert "training on 2 devices" in log
    # every update sees 2 x 16 examples: the logged batch size is the sum over the workers
    assert set(logged(log, "train_inner", "bsz")) == {32.0}
    loss = logged(log, "train_inner", "tgt_loss")
    assert len(loss) >= 10 and loss[-1] < loss[0] - 1.0, loss
    assert os.path.exists(os.path.join(save, "checkpoint_last.pt"))


def test_validation_f1_is_summed_over_workers(two_workers, tmp_path):
    """The 2-worker run's last validation (overall and per language) equals predict + evaluate
    of its checkpoint in one process, which is what a 1-worker run logs
    (test_combine.py::test_validation_logs_each_language_as_predict_then_evaluate_scores_it)."""
    data, save, log = two_workers
    f1s, ems = logged(log, "valid", "f1"), logged(log, "valid", "em")
    assert len(f1s) >= 3 and 0 < f1s[-1] < 100, f1s
    proc = predict("--path", os.path.join(save, "checkpoint_last.pt"), "--data", data, "--split",
                   "valid", "--output", tmp_path / "pred.{lang}.json", "--cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    per_lang = {}
    for lang in LANGS:
        with open(gold_file(data, "valid", "tgt", lang), encoding="utf-8") as f:
            per_lang[lang] = evaluate(json.load(f), json.loads((tmp_path / f"pred.{lang}.json").read_text()),
                                      lang, metric="auto")
        assert per_lang[lang]["f1"] == pytest.approx(logged(log, "valid", f"f1_{lang}")[-1], abs=0.01), lang
        assert per_lang[lang]["exact_match"] == pytest.approx(logged(log, "valid", f"em_{lang}")[-1], abs=0.01)
    print("2 workers, last validation:", {x: round(per_lang[x]["f1"], 2) for x in LANGS})
    assert len({round(r["f1"], 2) for r in per_lang.values()}) > 1  # not trivially equal
    assert logged(log, "valid", "f1_avg")[-1] == pytest.approx(
        sum(r["f1"] for r in per_lang.values()) / len(LANGS), abs=0.01)
    # overall: the mean over every question
    total = sum(r["total"] for r in per_lang.values())
    scores = {k: sum(r[k] * r["total"] for r in per_lang.values()) / total for k in ("f1", "exact_match")}
    assert scores["f1"] == pytest.approx(f1s[-1], abs=0.01)
    assert scores["exact_match"] == pytest.approx(ems[-1], abs=0.01)
