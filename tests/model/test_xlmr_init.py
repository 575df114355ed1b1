"""Initialisation from an XLM-R-format checkpoint written by fairseq-train --task masked_lm."""
import os
import shutil

import numpy as np
import pytest
import torch
from fairseq import options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

import fairseq_grafusion.plugin  # noqa: F401
from conftest import logged, run_fairseq, train_args
from fairseq_grafusion.checkpoint_compat import load_state
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.models import xlmr_init

SIZES = ["--encoder-embed-dim", "64", "--encoder-ffn-embed-dim", "128",
         "--encoder-attention-heads", "4"]


def write_roberta(tmp, data_dir, layers):
    """A tiny RoBERTa trained for a few updates, saved as XLM-R ships it: model.pt + dict.txt."""
    rng = np.random.RandomState(0)
    symbols = [line.split()[0] for line in open(os.path.join(data_dir, "dict.txt"))]
    text = tmp / "mono.txt"
    text.write_text("\n".join(" ".join(rng.choice(symbols, 20)) for _ in range(200)) + "\n")
    bin_dir = tmp / "mono-bin"
    run_fairseq("preprocess", "--only-source", "--srcdict", os.path.join(data_dir, "dict.txt"),
                "--trainpref", text, "--validpref", text, "--destdir", bin_dir, "--workers", "1")
    save = tmp / f"roberta{layers}"
    run_fairseq("train", bin_dir, "--task", "masked_lm", "--arch", "roberta_base", *SIZES,
                "--encoder-layers", str(layers), "--max-positions", "512",
                "--tokens-per-sample", "64", "--batch-size", "8", "--optimizer", "adam",
                "--lr", "1e-3", "--max-update", "3", "--cpu", "--save-dir", save,
                "--no-epoch-checkpoints", "--disable-validation", "--criterion", "masked_lm")
    model_dir = tmp / f"xlmr{layers}"
    model_dir.mkdir()
    shutil.copy(save / "checkpoint_last.pt", model_dir / "model.pt")
    shutil.copy(os.path.join(data_dir, "dict.txt"), model_dir / "dict.txt")
    return str(model_dir)


@pytest.fixture(scope="module")
def roberta(marker_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roberta")
    return write_roberta(tmp, marker_data, layers=4)


def build(data, *extra):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, train_args(data, "/nonexistent", *extra))
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    return task.build_model(cfg.model)


@pytest.mark.parametrize("fusion", [True, False])
def test_every_tensor_comes_from_the_checkpoint(roberta, marker_data, fusion):
    model = build(marker_data, "--pretrained-xlmr", roberta, *([] if fusion else ["--no-fusion"]))
    theirs = load_state(os.path.join(roberta, "model.pt"))["model"]
    enc = "encoder.sentence_encoder."
    ours = model.state_dict()
    checked = 0
    for name in ("embed_tokens.weight", "embed_positions.weight", "layernorm_embedding.weight",
                 "layernorm_embedding.bias"):
        torch.testing.assert_close(ours[name], theirs[enc + name], rtol=0, atol=0)
        checked += 1
    mapping = {0: ["tgt_bottom"] + (["src_bottom"] if fusion else []), 1: ["sa_layers.0"],
               2: ["sa_layers.1"], 3: ["tgt_top"] + (["src_top"] if fusion else [])}
    for layer, modules in mapping.items():
        prefix = f"{enc}layers.{layer}."
        params = [k[len(prefix):] for k in theirs if k.startswith(prefix)]
        assert len(params) == 16
        for module in modules:
            for p in params:
                torch.testing.assert_close(ours[f"{module}.{p}"], theirs[prefix + p], rtol=0, atol=0)
                checked += 1
    assert checked == 4 + 16 * (6 if fusion else 4)
    # what XLM-R lacks is freshly initialised, not copied from anywhere
    assert "tgt_span_head.weight" in ours and ours["tgt_span_head.weight"].abs().max() < 0.2
    assert any(".graph." in k for k in ours) == fusion


@pytest.mark.parametrize("arch,names", [
    ("filter_tiny", ["local.0", "fusion_layers.0", "fusion_layers.1", "domain.0"]),
    ("xlmr_translate_train_tiny", ["local.0", "local.1", "local.2", "local.3"])])
def test_filter_and_translate_train_take_the_layers_in_order(roberta, marker_data, arch, names):
    model = build(marker_data, "--pretrained-xlmr", roberta, "--arch", arch)
    theirs = load_state(os.path.join(roberta, "model.pt"))["model"]
    ours, enc = model.state_dict(), "encoder.sentence_encoder."
    for name in ("embed_tokens.weight", "embed_positions.weight", "layernorm_embedding.bias"):
        torch.testing.assert_close(ours[name], theirs[enc + name], rtol=0, atol=0)
    for layer, module in enumerate(names):  # one copy of each XLM-R layer, nothing per language
        prefix = f"{enc}layers.{layer}."
        params = [k[len(prefix):] for k in theirs if k.startswith(prefix)]
        for p in params:
            torch.testing.assert_close(ours[f"{module}.{p}"], theirs[prefix + p], rtol=0, atol=0)
    assert sorted(k for k in ours if not k.startswith(tuple(names) + ("embed", "layernorm"))) == \
        ["span_head.bias", "span_head.weight"]
    with pytest.raises(GraFusionError, match="has 4 layers but the model has 5"):
        build(marker_data, "--pretrained-xlmr", roberta, "--arch", arch, "--encoder-layers", "5")


def test_old_release_layout_converts_the_same(roberta):
    theirs = load_state(os.path.join(roberta, "model.pt"))["model"]
    old = {}
    for k, v in theirs.items():
        k = k.replace("encoder.", "decoder.", 1).replace("layernorm_embedding", "emb_layer_norm")
        if ".self_attn.q_proj." in k:
            kind = k.rsplit(".", 1)[1]
            stem = k.split(".q_proj.")[0]
            parts = [theirs[k2.replace("decoder.", "encoder.", 1)] for k2 in
                     (f"{stem}.{p}.{kind}" for p in ("q_proj", "k_proj", "v_proj"))]
            old[f"{stem}.in_proj_{kind}"] = torch.cat(parts, 0)
        elif ".self_attn.k_proj." in k or ".self_attn.v_proj." in k:
            continue
        else:
            old[k] = v
    new = xlmr_init.xlmr_to_grafusion(theirs, 2, True)
    converted = xlmr_init.xlmr_to_grafusion(old, 2, True)
    assert set(new) == set(converted)
    for k in new:
        torch.testing.assert_close(new[k], converted[k], rtol=0, atol=0)


def test_fairseq_train_starts_from_the_checkpoint(roberta, marker_data, tmp_path):
    proc = run_fairseq("train", *train_args(marker_data, str(tmp_path / "ck"), "--pretrained-xlmr",
                                            roberta, updates=20))
    out = proc.stdout + proc.stderr
    assert "initialised from XLM-R checkpoint" in out
    assert logged(out, "valid", "num_updates")[-1] == 20


def test_layer_count_mismatch(roberta, marker_data):
    with pytest.raises(GraFusionError, match=r"has 4 layers but the model needs 1 \+ 3 SA \+ 1 = 5"):
        build(marker_data, "--pretrained-xlmr", roberta, "--sa-layers", "3")


def test_dictionary_mismatch(roberta, marker_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(marker_data, data)
    lines = (data / "dict.txt").read_text().splitlines()
    (data / "dict.txt").write_text("\n".join(lines[:5] + ["someotherword 1"] + lines[6:]) + "\n")
    with pytest.raises(GraFusionError, match=r"dictionary mismatch: symbol 9 is 'someotherword'"):
        build(str(data), "--pretrained-xlmr", roberta)
    (data / "dict.txt").write_text("\n".join(lines[:-3]) + "\n")  # same prefix, fewer symbols
    with pytest.raises(GraFusionError, match=r"the data's dictionary has \d+ symbols, .*dict.txt has"):
        build(str(data), "--pretrained-xlmr", roberta)
    # dict.txt files agree but model.pt was trained with another vocabulary
    other = tmp_path / "xlmr"
    shutil.copytree(roberta, other)
    (other / "dict.txt").write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(GraFusionError, match=r"the dictionary does not match the checkpoint: it has "
                                             r"\d+ symbols \(with <mask>\) but the XLM-R checkpoint has"):
        build(str(data), "--pretrained-xlmr", str(other))


def test_dictionary_mismatch_is_one_line_in_fairseq_train(roberta, marker_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(marker_data, data)
    lines = (data / "dict.txt").read_text().splitlines()
    (data / "dict.txt").write_text("\n".join(lines[:5] + ["someotherword 1"] + lines[6:]) + "\n")
    proc = run_fairseq("train", *train_args(str(data), str(tmp_path / "ck"), "--pretrained-xlmr",
                                            roberta), check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fairseq-grafusion: error: dictionary mismatch: symbol 9")


def test_a_resumed_run_does_not_read_the_release_again(roberta, marker_data, tmp_path):
    """``fairseq-train`` builds the model before it restores ``checkpoint_last.pt``, which replaces
    every weight: reading ``--pretrained-xlmr`` then (12 s and 2.7 GiB for XLM-R-large) is wasted,
    and a release that is gone (a node's scratch disk) stopped the resume.  The resumed run does
    not read it, and ends where an uninterrupted run ends."""
    release = tmp_path / "xlmr"
    shutil.copytree(roberta, release)
    save, whole = str(tmp_path / "ck"), str(tmp_path / "whole")
    first = run_fairseq("train", *train_args(marker_data, save, "--pretrained-xlmr", release, updates=4))
    assert "initialised from XLM-R checkpoint" in first.stdout + first.stderr
    shutil.rmtree(release)  # the release is gone
    again = run_fairseq("train", *train_args(marker_data, save, "--pretrained-xlmr", release, updates=8))
    out = again.stdout + again.stderr
    assert f"--pretrained-xlmr {release} not read: the weights come from {save}/checkpoint_last.pt" in out
    assert "initialised from XLM-R checkpoint" not in out
    assert logged(out, "valid", "num_updates")[-1] == 8
    shutil.copytree(roberta, release)
    run_fairseq("train", *train_args(marker_data, whole, "--pretrained-xlmr", release, updates=8))
    resumed = load_state(os.path.join(save, "checkpoint_last.pt"))["model"]
    uninterrupted = load_state(os.path.join(whole, "checkpoint_last.pt"))["model"]
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), name
