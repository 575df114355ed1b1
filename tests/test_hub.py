"""GraFusionModel.from_pretrained(...).answer(...) on real text: the bundled en-ro sample."""
import json
import os
import re
import shutil

import pytest

import fairseq_grafusion  # noqa: F401
from conftest import REPO, run_fairseq, train_args
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.scoring.qa_metrics import evaluate
from fairseq_grafusion.models import GraFusionModel
from test_predict import predict

SPM = os.path.join(REPO, "examples", "sample", "spm")


@pytest.fixture(scope="module")
def model_dir(sample_run, tmp_path_factory):
    """A tiny --graph none model trained briefly on the preprocessed sample, saved as a model dir
    (checkpoint + dict.txt + sentencepiece.bpe.model).  Without a graph, the answer does not
    depend on eflomal's alignment of one example, so hub and grafusion-predict must agree."""
    tmp = tmp_path_factory.mktemp("hub")
    out = sample_run[0]
    save = tmp / "ck"
    run_fairseq("train", *train_args(str(out / "qa-bin"), str(save), "--graph", "none",
                                     "--disable-validation", updates=20))
    model = tmp / "model"
    model.mkdir()
    shutil.copy(save / "checkpoint_last.pt", model / "checkpoint_best.pt")
    shutil.copy(out / "qa-bin" / "dict.txt", model / "dict.txt")
    shutil.copy(os.path.join(SPM, "sentencepiece.bpe.model"), model / "sentencepiece.bpe.model")
    return str(model), str(out / "qa-bin")


def first_question(path):
    article = json.load(open(path, encoding="utf-8"))["data"][0]["paragraphs"][0]
    return article["qas"][0]["id"], article["qas"][0]["question"], article["context"]


def test_answer_agrees_with_grafusion_predict(model_dir, tmp_path):
    model, data = model_dir
    qa = GraFusionModel.from_pretrained(model, checkpoint_file="checkpoint_best.pt",
                                        src_lang="en", tgt_lang="ro")
    qid, question, context = first_question(os.path.join(data, "valid.tgt.json"))
    _, src_question, src_context = first_question(os.path.join(data, "valid.src.json"))
    got = qa.answer(question, context, source_question=src_question, source_context=src_context,
                    n_best=5)
    assert got["text"] == context[got["char_start"]:got["char_end"]]
    assert 1 <= len(got["nbest"]) <= 5 and got["nbest"][0]["text"] == got["text"]
    preds = tmp_path / "p.json"
    proc = predict("--path", os.path.join(model, "checkpoint_best.pt"), "--data", data, "--split",
                   "valid", "--output", preds, "--cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(preds.read_text())[qid] == got["text"]


def test_answer_needs_an_english_side(model_dir):
    model, _ = model_dir
    qa = GraFusionModel.from_pretrained(model, src_lang="en", tgt_lang="ro")
    with pytest.raises(GraFusionError, match="no English side"):
        qa.answer("Ce?", "Un text.")
    with pytest.raises(GraFusionError, match="both source_question and source_context"):
        qa.answer("Ce?", "Un text.", source_question="What?")


def test_predict_from_raw_squad_files(model_dir, tmp_path):
    """grafusion-predict --qa: raw files preprocessed on the fly give the binarized split's answers."""
    model, data = model_dir
    sample = os.path.join(REPO, "examples", "sample", "qa")
    runs = {}
    for name, args in (("raw", ["--qa", os.path.join(sample, "valid.en.json"),
                                os.path.join(sample, "valid.ro.json"), "--src-lang", "en",
                                "--tgt-lang", "ro", "--spm", os.path.join(SPM, "sentencepiece.bpe.model"),
                                "--dict", os.path.join(SPM, "dict.txt")]),
                       ("bin", ["--data", data, "--split", "valid"])):
        out = tmp_path / f"{name}.json"
        proc = predict("--path", os.path.join(model, "checkpoint_best.pt"), *args, "--output", out,
                       "--cpu")
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[name] = json.loads(out.read_text())
    gold = json.load(open(os.path.join(sample, "valid.ro.json"), encoding="utf-8"))
    ids = {qa["id"] for a in gold["data"] for p in a["paragraphs"] for qa in p["qas"]}
    assert set(runs["raw"]) == ids
    assert runs["raw"] == runs["bin"]  # --graph none: same windows, same answers
    scores = evaluate(gold, runs["raw"], "ro", metric="auto")
    assert scores["total"] == len(ids) and not scores["missing"] and not scores["extra"]
    assert 0 <= scores["f1"] <= 100


def test_predict_answers_every_question_whatever_its_gold(model_dir, tmp_path):
    """grafusion-predict --qa: a gold answer that does not match its context and an empty context
    stop nothing (gold answers are only for scoring); every question gets an answer, and no
    message names an option grafusion-predict does not have."""
    from fairseq_grafusion.cli.predict import get_parser

    model, _ = model_dir
    sample = os.path.join(REPO, "examples", "sample", "qa")
    files = {}
    for lang in ("en", "ro"):
        data = json.load(open(os.path.join(sample, f"valid.{lang}.json"), encoding="utf-8"))
        paragraphs = [p for a in data["data"] for p in a["paragraphs"]]
        if lang == "ro":
            paragraphs[0]["qas"][0]["answers"][0]["answer_start"] += 3  # does not match
            paragraphs[0]["qas"][1]["answers"] = []                     # no gold answer
            empty = [qa["id"] for qa in paragraphs[1]["qas"]]
            paragraphs[1]["context"] = ""                               # empty context
        files[lang] = tmp_path / f"valid.{lang}.json"
        files[lang].write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "pred.json"
    proc = predict("--path", os.path.join(model, "checkpoint_best.pt"), "--qa", files["en"], files["ro"],
                   "--src-lang", "en", "--tgt-lang", "ro", "--spm", os.path.join(SPM, "sentencepiece.bpe.model"),
                   "--dict", os.path.join(SPM, "dict.txt"), "--output", out, "--cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    preds = json.loads(out.read_text())
    gold = json.load(open(os.path.join(sample, "valid.ro.json"), encoding="utf-8"))
    assert set(preds) == {qa["id"] for a in gold["data"] for p in a["paragraphs"] for qa in p["qas"]}
    assert all(preds[q] == "" for q in empty)
    options = set(get_parser()._option_string_actions)
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", proc.stdout + proc.stderr))
    assert named <= options, named - options
    # an error of the raw-input path names grafusion-predict's own option
    proc = predict("--path", os.path.join(model, "checkpoint_best.pt"), "--qa", files["en"], files["ro"],
                   "--tgt-lang", "ro", "--output", out, "--cpu")
    assert proc.returncode == 1 and "--spm" in proc.stderr.strip().splitlines()[-1]
