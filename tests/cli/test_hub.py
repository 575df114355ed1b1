"""GraFusionModel.from_pretrained(...).answer(...) on real text: the bundled en-ro sample."""
import json
import os
import re
import shutil

import pytest
from test_predict import predict

import fairseq_grafusion.plugin  # noqa: F401
from conftest import REPO, run_fairseq, train_args
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.models import GraFusionModel
from fairseq_grafusion.scoring.qa_metrics import evaluate

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
                    top_k=5)
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


def questions(data, n):
    """``(question, context, English question, English context)`` of the first ``n`` valid ids."""
    def by_id(path):
        return {qa["id"]: (qa["question"], p["context"]) for a in json.load(open(path, encoding="utf-8"))["data"]
                for p in a["paragraphs"] for qa in p["qas"]}

    tgt, src = by_id(os.path.join(data, "valid.tgt.json")), by_id(os.path.join(data, "valid.src.json"))
    return [tgt[i] + src[i] for i in list(tgt)[:n]]


def ask(qa, items, **kwargs):
    return qa.answer([i[0] for i in items], [i[1] for i in items], source_question=[i[2] for i in items],
                     source_context=[i[3] for i in items], **kwargs)


def test_batch_call_top_k_offsets_and_max_answer_len(model_dir):
    model, data = model_dir
    qa = GraFusionModel.from_pretrained(model, src_lang="en", tgt_lang="ro")
    items = questions(data, 4)
    batch = ask(qa, items, top_k=3)
    single = [qa.answer(q, c, source_question=sq, source_context=sc, top_k=3) for q, c, sq, sc in items]
    assert isinstance(batch, list) and len(batch) == 4
    assert [(b["text"], b["char_start"]) for b in batch] == [(s["text"], s["char_start"]) for s in single]
    for answer, (_, context, _, _) in zip(batch, items):
        assert 1 <= len(answer["nbest"]) <= 3 and answer["nbest"][0]["text"] == answer["text"]
        for entry in answer["nbest"]:  # every entry has its character offsets in the context
            assert entry["text"] == context[entry["char_start"]:entry["char_end"]]
        scores = [e["score"] for e in answer["nbest"]]
        assert scores == sorted(scores, reverse=True)
    best = qa.answer(*items[0][:2], source_question=items[0][2], source_context=items[0][3])
    assert "nbest" not in best and best["text"] == batch[0]["text"]
    # one token at most: a token never crosses a space (words are encoded one by one)
    short = ask(qa, items[:2], top_k=20, max_answer_len=1)
    assert all(e["text"] and not any(ch.isspace() for ch in e["text"]) for a in short for e in a["nbest"])
    with pytest.raises(GraFusionError, match="2 questions but 1 src questions"):
        qa.answer(["Ce?", "Cine?"], ["Un text.", "Alt text."], source_question=["What?"],
                  source_context=["A text.", "Another."])
    with pytest.raises(GraFusionError, match="question 1: the context is empty"):
        qa.answer(["Ce?", "Cine?"], ["Un text.", " "], source_question=["What?", "Who?"],
                  source_context=["A text.", "Another."])


def test_in_memory_with_alignment_priors_estimated_once(model_dir, tmp_path, monkeypatch):
    """Priors come from align_extra once, at build; answering then writes no file, starts no
    process and runs no command.  Saved beside the model, they are found there next time."""
    import builtins
    import subprocess
    import tempfile

    import fairseq_grafusion.preprocess.align as align_mod
    import fairseq_grafusion.preprocess.cli as preprocess_cli

    model, data = model_dir
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    runs = []
    eflomal_links = align_mod._eflomal_links
    monkeypatch.setattr(align_mod, "_eflomal_links", lambda *a, **k: runs.append(1) or eflomal_links(*a, **k))
    extra = [os.path.join(REPO, "examples", "sample", "parallel", f"train.{lang}") for lang in ("en", "ro")]
    qa = GraFusionModel.from_pretrained(str(copy), src_lang="en", tgt_lang="ro", align_extra=extra)
    assert runs == [1] and len(qa.priors.lexical) > 500
    items = questions(data, 3)

    def forbidden(what):
        def fail(*args, **kwargs):
            raise AssertionError(f"the hub called {what}")
        return fail

    real_open = builtins.open

    def read_only_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+"):
            raise AssertionError(f"the hub opened {file} for writing")
        return real_open(file, mode, *args, **kwargs)

    with monkeypatch.context() as m:
        for name in ("mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryDirectory"):
            m.setattr(tempfile, name, forbidden(f"tempfile.{name}"))
        m.setattr(subprocess, "Popen", forbidden("subprocess.Popen"))
        m.setattr(preprocess_cli, "main", forbidden("grafusion-preprocess"))
        m.setattr(builtins, "open", read_only_open)
        first = ask(qa, items)
        again = [qa.answer(q, c, source_question=sq, source_context=sc) for q, c, sq, sc in items]
    assert runs == [1]  # no eflomal run per question
    assert [a["text"] for a in first] == [a["text"] for a in again]
    qa.priors.save(str(copy / "alignment.priors"))
    reloaded = GraFusionModel.from_pretrained(str(copy), src_lang="en", tgt_lang="ro")
    assert runs == [1] and reloaded.priors.lines() == qa.priors.lines()
    assert [a["text"] for a in ask(reloaded, items)] == [a["text"] for a in first]


def test_data_name_or_path_and_what_is_skipped(model_dir, tmp_path):
    """dict.txt may live elsewhere (fairseq's data_name_or_path); a model without dependency
    edges skips parsing, one without fusion also alignment."""
    import torch

    from fairseq_grafusion.hub import GraFusionHubInterface

    model, data = model_dir
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("checkpoint_best.pt", "sentencepiece.bpe.model"):
        shutil.copy(os.path.join(model, name), bare / name)
    with pytest.raises(GraFusionError, match="dict.txt is missing"):
        GraFusionModel.from_pretrained(str(bare), src_lang="en", tgt_lang="ro")
    qa = GraFusionModel.from_pretrained(str(bare), data_name_or_path=data, src_lang="en", tgt_lang="ro")
    assert qa.pipeline.align and not qa.pipeline.parse  # --graph none: windows still paired by links
    item = questions(data, 1)[0]
    assert qa.answer(item[0], item[1], source_question=item[2], source_context=item[3])["text"]

    class TargetOnly(torch.nn.Module):  # what the hub reads of a --no-fusion model
        fusion, use_dep = False, False

        def max_positions(self):
            return 512

    hub = GraFusionHubInterface(qa.task, TargetOnly(), os.path.join(SPM, "sentencepiece.bpe.model"),
                                os.path.join(data, "dict.txt"), "en", "ro")
    assert not hub.pipeline.align and not hub.pipeline.parse


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


def test_hub_translates_with_the_mt_options(model_dir, moses_bpe_mt):
    """Without an English side, the hub (mt=) translates the Romanian question and context with
    the moses + fastBPE ro->en model (conftest.moses_bpe_mt): no <unk> in the source, an exact
    substring of the context as the answer; the same model as the English -> Romanian one is
    refused in one line.  (grafusion-predict --qa passes its --mt-* options to the pipeline:
    test_preprocess_mt.test_options_reach_every_command.)"""
    model, _ = model_dir
    mt = moses_bpe_mt
    direction = {"model": mt.model, "tokenizer": "moses", "bpe": "fastbpe",
                 "bpe_codes": mt.fastbpe_codes, "beam": 1}
    qa = GraFusionModel.from_pretrained(model, src_lang="en", tgt_lang="ro", mt={"test": direction})
    ro = os.path.join(REPO, "examples", "sample", "qa", "valid.ro.json")
    _, question, context = first_question(ro)
    got = qa.answer(question, context)
    assert got["text"] == context[got["char_start"]:got["char_end"]] and got["char_start"] >= 0
    translator = qa.pipeline.translator_for("ro", "en")
    assert translator.tokens > 20 and translator.unknown == 0, (translator.tokens, translator.unknown)
    wrong = GraFusionModel.from_pretrained(model, src_lang="en", tgt_lang="ro", mt={"train": direction})
    with pytest.raises(GraFusionError, match=r"no English side"):  # only a train model
        wrong.answer(question, context)
    with pytest.raises(GraFusionError, match=r"--mt-train-model .*translates ro->en .*en->ro is asked"):
        wrong.pipeline.translator_for("en", "ro")
