"""grafusion-export-hf: a one-stream checkpoint as an HF XLMRobertaForQuestionAnswering directory,
answered alike by HF's question-answering pipeline and by grafusion-predict."""
import json
import os
import shutil

import pytest
import torch
import transformers

from conftest import REPO, run_module
from fairseq_grafusion.cli.export_hf import main as export_main
from fairseq_grafusion.errors import GraFusionError

SPM = os.path.join(REPO, "examples", "sample", "spm", "sentencepiece.bpe.model")


def export(*args):
    """``grafusion-export-hf`` as a user runs it: its own process, its exit status and stderr."""
    return run_module("fairseq_grafusion.cli.export_hf", *args, cwd=os.getcwd(), timeout=300)


def test_pipeline_answers_as_grafusion_predict(sample_checkpoints, tmp_path):
    from fairseq_grafusion.cli.predict import main as predict_main

    data, paths = sample_checkpoints
    out = tmp_path / "hf"
    proc = export("--path", paths["no-fusion"], "--data", data, "--spm", SPM, "--out", out)
    assert proc.returncode == 0 and "XLMRobertaForQuestionAnswering" in proc.stderr, proc.stderr[-3000:]
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors", "sentencepiece.bpe.model",
                                       "special_tokens_map.json", "tokenizer_config.json"]
    pred = tmp_path / "pred.json"
    predict_main(["--path", paths["no-fusion"], "--data", data, "--split", "valid", "--output", str(pred)])
    ours = json.loads(pred.read_text())
    with open(os.path.join(REPO, "examples", "sample", "qa", "valid.ro.json"), encoding="utf-8") as f:
        gold = json.load(f)["data"]
    questions = [(qa["id"], qa["question"], p["context"]) for art in gold for p in art["paragraphs"]
                 for qa in p["qas"]]
    qa = transformers.pipeline("question-answering", model=str(out), tokenizer=str(out), device=-1)
    # HF's defaults (384 tokens, 128 of overlap), 30-token answers; align_to_words=False: the text of
    # the tokens' character offsets, as grafusion-predict (and HF's run_qa.py) give it, not widened
    # to whole words; HF's offsets include a piece's leading space, so texts are compared stripped
    answers = qa(question=[q for _, q, _ in questions], context=[c for _, _, c in questions],
                 max_seq_len=384, doc_stride=128, max_answer_len=30, top_k=1, align_to_words=False)
    theirs = {qid: a["answer"] for (qid, _, _), a in zip(questions, answers)}
    differ = {qid: (ours[qid], theirs[qid]) for qid in theirs if theirs[qid].strip() != ours[qid].strip()}
    assert len(differ) <= 0.05 * len(questions), differ
    # the rest: questions whose passage takes more than one window, where the windows differ (ours
    # start 128 tokens apart, XTREME's doc_stride; HF's overlap by 128)
    from fairseq_grafusion.data import PairReader

    ids = PairReader(os.path.join(data, "valid")).ids
    assert all(ids.count(qid) > 1 for qid in differ), differ


def test_hf_reads_the_export_as_the_checkpoint(sample_checkpoints, tmp_path):
    """HF's model read from the exported directory gives the xlmr_translate_train checkpoint's start /
    end logits on the same pieces (numbered by HF's tokenizer, not by the data's dict.txt)."""
    import sentencepiece as spm

    from fairseq_grafusion.inference import load_model

    data, paths = sample_checkpoints
    out = tmp_path / "hf"
    export_main(["--path", paths["xlmr-tt"], "--data", data, "--spm", SPM, "--out", str(out)])
    hf = transformers.XLMRobertaForQuestionAnswering.from_pretrained(str(out)).eval()
    model, task = load_model(paths["xlmr-tt"], data)
    d = task.source_dictionary
    tokens = torch.tensor([[d.bos()] + [d.index(p) for p in ("▁a", "▁the", ",")] + [d.eos(), d.eos()]
                           + [d.index("▁în"), d.eos()]])
    sp = spm.SentencePieceProcessor(model_file=SPM)
    sp_ids = [0] + [sp.piece_to_id(p) + 1 for p in ("▁a", "▁the", ",")] + [2, 2, sp.piece_to_id("▁în") + 1, 2]
    with torch.no_grad():
        ours = model(tgt_tokens=tokens)
        theirs = hf(input_ids=torch.tensor([sp_ids]))
    torch.testing.assert_close(ours["tgt_start"], theirs.start_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours["tgt_end"], theirs.end_logits, rtol=0, atol=1e-5)


def test_a_fusion_model_is_refused_in_one_line(sample_checkpoints, tmp_path):
    data, paths = sample_checkpoints
    proc = export("--path", paths["align"], "--data", data, "--spm", SPM, "--out", tmp_path / "hf")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "two-stream model" in last and "no HuggingFace counterpart" in last
    assert not (tmp_path / "hf").exists() and not any(p.name.startswith(".hf.tmp") for p in tmp_path.iterdir())
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(GraFusionError, match="exists and is not an empty directory"):
        export_main(["--path", paths["no-fusion"], "--data", data, "--spm", SPM, "--out", str(tmp_path / "full")])
    assert (tmp_path / "full" / "x").read_text() == "keep"
    shutil.rmtree(tmp_path / "full")
