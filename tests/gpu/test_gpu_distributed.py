"""Two fairseq-train processes with fairseq's c10d DDP on CUDA (NCCL when two GPUs exist, gloo
when both share one), then grafusion-predict on the GPU: the validation F1 logged by the two
workers equals predict + evaluate of the saved checkpoint."""
import json
import os

import pytest
import torch
from test_gpu_training import gpu_args
from test_multinode import free_port
from test_predict import predict

from conftest import logged, train_workers
from fairseq_grafusion.scoring.qa_metrics import evaluate

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def c10d_run(tmp_path_factory):
    from fairseq_grafusion.synthetic import SyntheticXMRC

    tmp = tmp_path_factory.mktemp("c10d")
    data = SyntheticXMRC(task="key").write(str(tmp / "data"), splits=(("train", 800), ("valid", 137)))
    save = str(tmp / "ck")
    backend = "nccl" if torch.cuda.device_count() >= 2 else "gloo"
    args = gpu_args(data, save, "--eval-span-f1", "--fp16", "--distributed-world-size", "2",
                    "--distributed-backend", backend, "--ddp-backend", "c10d",
                    "--distributed-init-method", f"tcp://127.0.0.1:{free_port()}",
                    "--distributed-no-spawn", "--validate-interval-updates", "50", updates=150)
    text = train_workers(args, tmp, lambda r: ["--device-id", str(r % torch.cuda.device_count())])
    return data, save, text[0], backend


def test_c10d_trains_one_model_on_two_workers(c10d_run):
    _, save, log, _ = c10d_run
    assert "training on 2 devices" in log
    assert set(logged(log, "train_inner", "bsz")) == {32.0}
    loss = logged(log, "train_inner", "tgt_loss")
    assert len(loss) >= 10 and loss[-1] < loss[0] - 1.0, loss
    assert os.path.exists(os.path.join(save, "checkpoint_last.pt"))


def test_validation_f1_equals_predict_on_gpu(c10d_run, tmp_path):
    data, save, log, _ = c10d_run
    f1s, ems = logged(log, "valid", "f1"), logged(log, "valid", "em")
    assert len(f1s) >= 3 and 0 < f1s[-1] < 100, f1s
    out = tmp_path / "pred.json"
    proc = predict("--path", os.path.join(save, "checkpoint_last.pt"), "--data", data, "--split",
                   "valid", "--output", out, "--batch-size", "16", "--fp16")
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(os.path.join(data, "valid.tgt.json"), encoding="utf-8") as f:
        scores = evaluate(json.load(f), json.loads(out.read_text()), "en", metric="squad")
    assert scores["f1"] == pytest.approx(f1s[-1], abs=0.01)
    assert scores["exact_match"] == pytest.approx(ems[-1], abs=0.01)
