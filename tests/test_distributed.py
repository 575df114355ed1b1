"""Two fairseq-train processes (gloo, CPU) train one model: the logged losses and the validation
F1 are summed over both workers exactly (F1 equals a single-process predict + evaluate of the
saved checkpoint).  The CPU stand-in for ``--distributed-world-size 2`` on GPUs: fairseq's c10d
DDP needs CUDA devices, so the run uses ``--ddp-backend legacy_ddp`` (same gradient all-reduce)."""
import json
import os
import socket

import pytest

from conftest import logged, train_args, train_workers
from fairseq_grafusion.scoring.qa_metrics import evaluate
from test_predict import predict


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    from fairseq_grafusion.synthetic import SyntheticXMRC

    tmp = tmp_path_factory.mktemp("dist")
    # 137 validation questions = 9 batches of <= 16: one worker gets 5, the other 4 and fairseq's
    # dummy batch, whose logging outputs must not count
    data = SyntheticXMRC(task="key").write(str(tmp / "data"), splits=(("train", 800), ("valid", 137)))
    save = str(tmp / "ck")
    args = train_args(data, save, "--eval-span-f1", "--distributed-world-size", "2",
                      "--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp",
                      "--distributed-init-method", f"tcp://127.0.0.1:{free_port()}",
                      "--distributed-no-spawn", "--validate-interval-updates", "50", updates=150)
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
    data, save, log = two_workers
    f1s, ems = logged(log, "valid", "f1"), logged(log, "valid", "em")
    assert len(f1s) >= 3 and 0 < f1s[-1] < 100, f1s
    out = tmp_path / "pred.json"
    proc = predict("--path", os.path.join(save, "checkpoint_last.pt"), "--data", data, "--split",
                   "valid", "--output", out, "--cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(os.path.join(data, "valid.tgt.json"), encoding="utf-8") as f:
        scores = evaluate(json.load(f), json.loads(out.read_text()), "en", metric="squad")
    assert scores["f1"] == pytest.approx(f1s[-1], abs=0.01)
    assert scores["exact_match"] == pytest.approx(ems[-1], abs=0.01)
