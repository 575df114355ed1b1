"""grafusion-predict and the hub on CUDA in half precision agree with float32."""
import json
import os

import pytest
import torch
from test_hub import first_question, model_dir  # noqa: F401  (fixture)
from test_predict import key_run, predict  # noqa: F401  (fixture)

from conftest import REPO
from fairseq_grafusion.scoring.qa_metrics import evaluate

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_predict_on_cuda_fp16_agrees_with_fp32(key_run, tmp_path):  # noqa: F811
    data, save, _ = key_run
    outputs = {}
    for name, flags in (("cpu", ["--cpu"]), ("cuda", []), ("cuda-fp16", ["--fp16"])):
        out = tmp_path / f"{name}.json"
        proc = predict("--path", os.path.join(save, "checkpoint_last.pt"), "--data", data,
                       "--split", "valid", "--output", out, *flags)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs[name] = json.loads(out.read_text())
    gold = json.load(open(os.path.join(data, "valid.tgt.json"), encoding="utf-8"))
    scores = {k: evaluate(gold, v, "en", metric="squad")["f1"] for k, v in outputs.items()}
    assert outputs["cuda"] == outputs["cpu"]  # float32 on the GPU: the same answers
    same = sum(outputs["cuda-fp16"][q] == outputs["cuda"][q] for q in outputs["cuda"])
    assert same >= 0.95 * len(outputs["cuda"]), (same, len(outputs["cuda"]))
    assert scores["cuda-fp16"] == pytest.approx(scores["cuda"], abs=2.0), scores


def test_hub_on_cuda_fp16(model_dir):  # noqa: F811
    from fairseq_grafusion.models import GraFusionModel

    path, _ = model_dir
    qid, question, context = first_question(os.path.join(REPO, "examples", "sample", "qa", "valid.ro.json"))
    _, en_question, en_context = first_question(os.path.join(REPO, "examples", "sample", "qa", "valid.en.json"))
    qa = GraFusionModel.from_pretrained(path, checkpoint_file="checkpoint_best.pt", src_lang="en",
                                        tgt_lang="ro")
    cpu = qa.answer(question, context, source_question=en_question, source_context=en_context)
    qa = qa.cuda().half()
    assert next(qa.model.parameters()).dtype == torch.float16
    gpu = qa.answer(question, context, source_question=en_question, source_context=en_context)
    assert gpu["text"] == cpu["text"] and gpu["text"] in context
    assert gpu["score"] == pytest.approx(cpu["score"], abs=0.1)
