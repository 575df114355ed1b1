"""fairseq-train on a CUDA GPU: plain ``--fp16`` (fairseq's FP16Optimizer, fp32 master weights),
``--bf16``, ``--amp`` (autocast) and ``--checkpoint-activations``; the loss falls and stays finite.

Skipped without CUDA.  Run with ``pytest tests/gpu`` on a machine with a GPU.
"""
import math

import pytest
import torch

from conftest import logged, run_fairseq, train_args

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def gpu_args(data, save, *extra, updates=150):
    """The CPU tests' training arguments without ``--cpu``: fairseq then trains on CUDA."""
    return [a for a in train_args(data, save, *extra, updates=updates) if a != "--cpu"]


@pytest.mark.parametrize("precision", [["--fp16"], ["--bf16"], ["--amp"],
                                       ["--fp16", "--checkpoint-activations"]],
                         ids=["fp16", "bf16", "amp", "fp16-checkpoint-activations"])
def test_half_precision_training_learns(marker_data, tmp_path, precision):
    proc = run_fairseq("train", *gpu_args(marker_data, str(tmp_path / "ck"), *precision,
                                          "--graph", "align,dep"))
    out = proc.stdout + proc.stderr
    assert "cuda" in out.lower() or "GPU" in out, out[-2000:]
    train_loss = logged(out, "train_inner", "tgt_loss")
    valid_loss = logged(out, "valid", "tgt_loss")
    assert train_loss and valid_loss and all(math.isfinite(x) for x in train_loss + valid_loss)
    assert train_loss[0] > 5 and valid_loss[-1] < 1.0, (train_loss[0], valid_loss)
    assert logged(out, "valid", "tgt_start_acc")[-1] > 90
    if precision[0] == "--fp16":
        scales = logged(out, "train_inner", "loss_scale")
        assert scales and all(s >= 1 for s in scales), scales  # FP16Optimizer's dynamic scaler
