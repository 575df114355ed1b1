"""fp16 forward of a trained tiny model: finite, and the same argmax spans as float32."""
import os

import pytest
import torch
from fairseq import checkpoint_utils

import fairseq_grafusion.plugin  # noqa: F401
from conftest import logged, run_fairseq, train_args


@pytest.fixture(scope="module")
def trained(marker_data, tmp_path_factory):
    save = str(tmp_path_factory.mktemp("fp16") / "ck")
    run_fairseq("train", *train_args(marker_data, save, "--graph", "align,dep", updates=120))
    return os.path.join(save, "checkpoint_last.pt")


def test_fp16_forward_is_finite_and_agrees_with_fp32(trained):
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([trained])
    model = models[0].eval()
    task.load_dataset("valid")
    ds = task.dataset("valid")
    batch = ds.collater([ds[i] for i in range(64)])
    with torch.no_grad():
        full = model(**batch["net_input"])
        half = model.half()(**batch["net_input"])
    for key in ("tgt_start", "tgt_end", "src_start", "src_end"):
        pad = torch.isinf(full[key])
        assert torch.isfinite(half[key][~pad]).all(), key
        assert half[key].dtype == torch.float16
        assert torch.equal(full[key].argmax(-1), half[key].float().argmax(-1)), key
    # the graph bias itself stays finite in fp16, even for large hidden states
    layer = model.sa_layers[-1]
    x = torch.randn(2, 40, model.cfg.encoder_embed_dim).half() * 50
    word_ids = torch.arange(40).repeat(2, 1)
    edges = torch.tensor([[[0, 1], [1, 2], [5, 30]]] * 2)
    with torch.no_grad():
        G = layer.graph(x, word_ids, edges, edges)
    assert G.dtype == torch.float16 and torch.isfinite(G).all()


def test_fp16_training_learns(marker_data, tmp_path):
    """fairseq's fp16 training path (half-precision model, dynamic loss scaling) end to end.  On a
    CPU only ``--memory-efficient-fp16`` runs (fairseq's FP16Optimizer keeps fp32 copies on CUDA);
    on a GPU plain ``--fp16`` is the usual choice."""
    proc = run_fairseq("train", *train_args(marker_data, str(tmp_path / "ck"), "--fp16",
                                            "--memory-efficient-fp16", "--graph", "align,dep",
                                            updates=150))
    out = proc.stdout + proc.stderr
    scales = logged(out, "train_inner", "loss_scale")
    assert scales and all(s >= 1 for s in scales), scales  # the fp16 optimizer's loss scale
    first, last = logged(out, "train_inner", "tgt_loss")[0], logged(out, "valid", "tgt_loss")[-1]
    assert first > 5 and last < 1.0, (first, last)
    assert logged(out, "valid", "tgt_start_acc")[-1] > 90


@pytest.mark.parametrize("graph", ["none", "align", "align,dep"])
def test_autocast_training_step(graph):
    """Under autocast (fairseq's ``--amp``; here CPU bfloat16) the graph's scatter/gather mixes
    half and float32 tensors: forward and backward must run and stay finite."""
    from test_memory import batch, build, loss_of

    torch.manual_seed(0)
    model = build(graph=graph).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch(2, 20, 15, 10, 18), return_attention=graph != "none")
        loss = loss_of({k: v for k, v in out.items() if k.endswith(("start", "end"))})
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    if graph != "none":
        assert torch.isfinite(out["graph_bias"]).all()
