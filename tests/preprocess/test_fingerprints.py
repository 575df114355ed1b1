"""The dictionary and the contexts a split was made from travel with it and with the checkpoint:
another dict.txt (same size or smaller), a --gold file of the other stream or language, and a
pre-training checkpoint given to --restore-file are each one line, before anything is decoded."""
import json
import os
import shutil

import pytest
import torch
from test_pretrain_loss import build

import fairseq_grafusion.plugin  # noqa: F401
from conftest import USER_DIR, run_fairseq, train_args
from fairseq_grafusion.checkpoint_compat import load_state
from fairseq_grafusion.data.fingerprints import file_sha256
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.inference import load_model, predict_split
from fairseq_grafusion.synthetic import SyntheticXMRC


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-update xmrc_span checkpoint and a 1-update sa_graph_pretrain one, same dictionary."""
    tmp = tmp_path_factory.mktemp("fingerprints")
    data = SyntheticXMRC(task="marker").write(str(tmp / "data"), splits=(("train", 32), ("valid", 12)))
    parallel = SyntheticXMRC().write(str(tmp / "parallel"), splits=(("train", 32), ("valid", 8)),
                                     with_span=False)
    run_fairseq("train", *train_args(data, str(tmp / "ck"), "--disable-validation", updates=2))
    run_fairseq("train", parallel, "--user-dir", USER_DIR, "--task", "sa_graph_pretrain", "--criterion",
                "sa_graph_pretrain", "--arch", "grafusion_tiny", "--cpu", "--optimizer", "adam",
                "--lr", "1e-3", "--batch-size", "16", "--max-update", "1", "--save-dir", str(tmp / "pck"),
                "--no-progress-bar", "--disable-validation", "--seed", "1")
    return data, str(tmp / "ck" / "checkpoint_last.pt"), str(tmp / "pck" / "checkpoint_last.pt")


def other_dictionary(data, copy, edit):
    """A copy of ``data`` at ``copy`` whose dict.txt lines are ``edit(lines)``."""
    shutil.copytree(data, copy)
    lines = (copy / "dict.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    (copy / "dict.txt").write_text("".join(edit(lines)), encoding="utf-8")
    return str(copy)


def test_the_dictionary_travels_with_split_and_checkpoint(trained):
    data, ckpt, _ = trained
    expected = file_sha256(os.path.join(data, "dict.txt"))
    assert load_state(ckpt)["task_state"]["dictionary_sha256"] == expected
    for split in ("train", "valid"):
        with open(os.path.join(data, f"{split}.meta.json"), encoding="utf-8") as f:
            assert json.load(f)["dictionary_sha256"] == expected


@pytest.mark.parametrize("smaller", [False, True])
def test_another_dictionary_is_one_line_in_predict_and_training(trained, tmp_path, smaller):
    data, ckpt, _ = trained
    copy = other_dictionary(data, tmp_path / ("smaller" if smaller else "swapped"),
                            (lambda lines: lines[:-5]) if smaller else (lambda lines: [lines[1], lines[0]] + lines[2:]))
    with pytest.raises(GraFusionError) as e:  # grafusion-predict, the hub, plot-attention
        load_model(ckpt, copy)
    message = str(e.value)
    assert "\n" not in message and ckpt in message and os.path.join(copy, "dict.txt") in message
    task = build(copy, "xmrc_span")[0]  # the task as fairseq-train sets it up
    with pytest.raises(GraFusionError) as e:
        task.load_dataset("valid")
    message = str(e.value)
    assert "\n" not in message and "valid.meta.json" in message and "dict.txt" in message


def test_gold_of_another_stream_or_language_is_refused_before_decoding(trained, tmp_path):
    data, ckpt, _ = trained
    model, task = load_model(ckpt, data)
    answers = predict_split(model, task, data, "valid", "tgt")
    assert len(answers) == 12  # the split's own gold file passes
    with pytest.raises(GraFusionError, match="holds the source .English. stream's contexts"):
        predict_split(model, task, data, "valid", "tgt", gold=os.path.join(data, "valid.src.json"))
    with pytest.raises(GraFusionError, match="holds the target stream's contexts"):
        predict_split(model, task, data, "valid", "src", gold=os.path.join(data, "valid.tgt.json"))
    gold = json.load(open(os.path.join(data, "valid.tgt.json"), encoding="utf-8"))
    gold["data"][3]["paragraphs"][0]["context"] += " x"  # one passage of "another language"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(gold), encoding="utf-8")
    with pytest.raises(GraFusionError, match="contexts differ .* another language"):
        predict_split(model, task, data, "valid", "tgt", gold=str(other))


def test_restore_file_of_pretraining_is_one_line(trained, tmp_path):
    data, _, pretrained = trained
    save = tmp_path / "ck"
    proc = run_fairseq("train", *train_args(data, str(save), "--restore-file", pretrained,
                                            "--disable-validation", updates=4), check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fairseq-grafusion: error: --restore-file " + pretrained), last
    assert "'sa_graph_pretrain'" in last and f"--pretrained-sagraph {pretrained}" in last
    assert not save.exists() or not any(name.startswith("checkpoint") for name in os.listdir(save))


def test_smaller_dictionary_without_fingerprints(trained, tmp_path):
    """Checkpoints and splits written before the fingerprints: the sizes are still checked."""
    data, ckpt, _ = trained
    copy = tmp_path / "old"
    other_dictionary(data, copy, lambda lines: lines[:20])
    meta = json.loads((copy / "valid.meta.json").read_text())
    del meta["dictionary_sha256"], meta["contexts_sha256"]
    (copy / "valid.meta.json").write_text(json.dumps(meta))
    state = load_state(ckpt)
    del state["task_state"]["dictionary_sha256"]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    with pytest.raises(GraFusionError, match=r"embeddings for \d+ pieces, .*dict.txt gives 25"):
        load_model(str(old), str(copy))
    task = build(str(copy), "xmrc_span")[0]
    with pytest.raises(GraFusionError, match=r"valid: token id \d+ is beyond the 25 pieces"):
        task.load_dataset("valid")
