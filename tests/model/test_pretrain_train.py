"""fairseq-train --task sa_graph_pretrain end to end: both losses fall; xmrc_span starts from the
result (--pretrained-sagraph, --finetune-from-model) with exactly the pre-trained weights."""
import os

import pytest
import torch
from test_pretrain_loss import build

import fairseq_grafusion.plugin  # noqa: F401  (registers the plugin)
from conftest import USER_DIR, logged, run_fairseq, train_args
from fairseq_grafusion.checkpoint_compat import load_state
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.synthetic import SyntheticXMRC


def pretrain_args(data, save_dir, *extra, updates=300):
    return [data, "--user-dir", USER_DIR, "--task", "sa_graph_pretrain",
            "--criterion", "sa_graph_pretrain", "--arch", "grafusion_tiny", "--cpu",
            "--optimizer", "adam", "--lr", "1e-3", "--batch-size", "16",
            "--max-update", str(updates), "--save-dir", save_dir, "--log-format", "simple",
            "--log-interval", "20", "--no-progress-bar", "--no-epoch-checkpoints", "--seed", "1",
            *extra]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """Pre-training on synthetic parallel sentences (the dictionary of ``marker_data``)."""
    tmp = tmp_path_factory.mktemp("pretrain")
    data = SyntheticXMRC().write(str(tmp / "data"), splits=(("train", 1000), ("valid", 100)),
                                 with_span=False)
    save = str(tmp / "ckpt")
    proc = run_fairseq("train", *pretrain_args(data, save))
    return data, os.path.join(save, "checkpoint_last.pt"), proc.stdout + proc.stderr


def test_both_losses_fall(pretrained):
    _, ckpt, out = pretrained
    tlm, sa = logged(out, "train_inner", "tlm_loss"), logged(out, "train_inner", "sa_loss")
    valid_tlm, valid_sa = logged(out, "valid", "tlm_loss"), logged(out, "valid", "sa_loss")
    assert len(tlm) >= 10 and len(valid_sa) >= 3
    assert valid_tlm[-1] < tlm[0] - 0.5, (tlm[0], valid_tlm[-1])
    assert valid_sa[-1] < sa[0] - 1.0, (sa[0], valid_sa[-1])
    # below the unigram entropy of a language's pieces: L_SA reads its neighbours
    assert valid_sa[-1] < 6.0 and logged(out, "valid", "sa_acc")[-1] > 10
    mono = logged(out, "train_inner", "mono")
    assert 35 < sum(mono) / len(mono) < 65  # half the batches mono-lingual
    assert logged(out, "valid", "num_updates")[-1] == 300
    state = load_state(ckpt)
    assert any(k.startswith("pretrain_heads.sa.") for k in state["model"])
    assert not any("span_head" in k for k in state["model"])


def body(state):
    return {k: v for k, v in state.items() if not k.startswith("pretrain_heads.")}


def test_pretrained_sagraph_copies_every_tensor(pretrained, marker_data):
    _, ckpt, _ = pretrained
    theirs = body(load_state(ckpt)["model"])
    _, model, _ = build(marker_data, "xmrc_span", "--pretrained-sagraph", ckpt)
    ours = model.state_dict()
    assert set(ours) - set(theirs) == {"tgt_span_head.weight", "tgt_span_head.bias",
                                       "src_span_head.weight", "src_span_head.bias"}
    assert set(theirs) <= set(ours)
    assert any(".graph.f_a." in k for k in theirs) and any(".graph.f_d." in k for k in theirs)
    for k, v in theirs.items():
        torch.testing.assert_close(ours[k], v, rtol=0, atol=0)


@pytest.mark.parametrize("how", ["--pretrained-sagraph", "--finetune-from-model"])
def test_fine_tuning_run_starts_from_the_pretrained_weights(pretrained, marker_data, tmp_path, how):
    _, ckpt, _ = pretrained
    save = str(tmp_path / "ft")
    # one update at learning rate 0: the saved model is the model the run started from
    proc = run_fairseq("train", *train_args(marker_data, save, how, ckpt, "--lr", "0",
                                            "--disable-validation", updates=1))
    out = proc.stdout + proc.stderr
    assert ("initialised from SA-Graph pre-training checkpoint" in out
            if how == "--pretrained-sagraph" else "loading pretrained model from" in out)
    theirs = body(load_state(ckpt)["model"])
    ours = load_state(os.path.join(save, "checkpoint_last.pt"))["model"]
    assert {k for k in ours if k not in theirs} == {
        "tgt_span_head.weight", "tgt_span_head.bias", "src_span_head.weight", "src_span_head.bias"}
    for k, v in theirs.items():
        torch.testing.assert_close(ours[k], v, rtol=0, atol=0)


def test_one_line_errors(pretrained, marker_data, tmp_path):
    data, ckpt, _ = pretrained
    with pytest.raises(GraFusionError, match=r"does not fit the model: it has sa_layers\.0\.graph\.f_d"):
        build(marker_data, "xmrc_span", "--pretrained-sagraph", ckpt, "--graph", "align")
    with pytest.raises(GraFusionError, match="no such checkpoint file"):
        build(marker_data, "xmrc_span", "--pretrained-sagraph", str(tmp_path / "nope.pt"))
    with pytest.raises(GraFusionError, match="not both"):
        build(marker_data, "xmrc_span", "--pretrained-sagraph", ckpt, "--pretrained-xlmr", "x")
    with pytest.raises(GraFusionError, match="to continue pre-training use --restore-file"):
        build(data, "sa_graph_pretrain", "--pretrained-sagraph", ckpt)
    state = load_state(ckpt)
    state["model"] = body(state["model"])
    torch.save(state, tmp_path / "plain.pt")
    with pytest.raises(GraFusionError, match="not a sa_graph_pretrain checkpoint"):
        build(marker_data, "xmrc_span", "--pretrained-sagraph", str(tmp_path / "plain.pt"))
    proc = run_fairseq("train", *pretrain_args(data, str(tmp_path / "x"), "--mask-prob", "1.5"),
                       check=False)
    assert proc.returncode != 0
    assert "fairseq-grafusion: error: --mask-prob must be between 0 and 1, got 1.5" in proc.stderr


def test_fine_tuned_model_loads_without_the_pretraining_checkpoint(pretrained, marker_data, tmp_path):
    """--pretrained-sagraph only initialises a new model: rebuilding the fine-tuned model from its
    checkpoint (grafusion-predict) must not need the pre-training file any more."""
    import shutil

    from fairseq_grafusion.inference import load_model

    _, ckpt, _ = pretrained
    moved = str(tmp_path / "pretrain.pt")
    shutil.copy(ckpt, moved)
    save = str(tmp_path / "ft")
    run_fairseq("train", *train_args(marker_data, save, "--pretrained-sagraph", moved,
                                     "--disable-validation", updates=2))
    os.remove(moved)
    model, _ = load_model(os.path.join(save, "checkpoint_last.pt"), marker_data)
    assert model.fusion and model.pretrain_heads is None
