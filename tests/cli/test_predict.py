"""F1 during validation, grafusion-predict and grafusion-evaluate agree on a trained tiny model."""
import json
import os
import subprocess
import sys

import pytest
import torch

import fairseq_grafusion.plugin  # noqa: F401
from conftest import REPO, logged, run_fairseq, run_module, train_args
from fairseq_grafusion.checkpoint_compat import load_state
from fairseq_grafusion.scoring.qa_metrics import evaluate


@pytest.fixture(scope="module")
def key_run(tmp_path_factory):
    """The harder synthetic task (answer = the words after the question's key word): after a short
    training the F1 is neither 0 nor 100, so agreement between the tools means something."""
    from fairseq_grafusion.synthetic import SyntheticXMRC

    tmp = tmp_path_factory.mktemp("key")
    data = SyntheticXMRC(task="key").write(str(tmp / "data"), splits=(("train", 800), ("valid", 120)))
    save = str(tmp / "ck")
    proc = run_fairseq("train", *train_args(
        data, save, "--eval-span-f1", "--best-checkpoint-metric", "f1",
        "--maximize-best-checkpoint-metric", updates=150))
    return data, save, proc.stdout + proc.stderr


def predict(*args):
    return run_module("fairseq_grafusion.cli.predict", *args)


def test_validation_f1_equals_predict_then_evaluate(key_run, tmp_path):
    data, save, log = key_run
    f1s, ems = logged(log, "valid", "f1"), logged(log, "valid", "em")
    assert f1s and ems and 0 < f1s[-1] < 100, f1s
    out, nbest = tmp_path / "pred.json", tmp_path / "nbest.json"
    proc = predict("--path", os.path.join(save, "checkpoint_last.pt"), "--data", data, "--split",
                   "valid", "--output", out, "--nbest-output", nbest, "--cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    preds = json.loads(out.read_text())
    gold = json.loads(open(os.path.join(data, "valid.tgt.json"), encoding="utf-8").read())
    contexts = {qa["id"]: p["context"] for a in gold["data"] for p in a["paragraphs"] for qa in p["qas"]}
    assert set(preds) == set(contexts)  # every question answered
    assert all(text in contexts[q] for q, text in preds.items())  # exact substrings
    scores = evaluate(gold, preds, "en", metric="squad")
    assert scores["f1"] == pytest.approx(f1s[-1], abs=0.01)
    assert scores["exact_match"] == pytest.approx(ems[-1], abs=0.01)
    best = json.loads(nbest.read_text())
    for q, entries in best.items():
        assert 1 <= len(entries) <= 20 and entries[0]["text"] == preds[q]
        assert [e["score"] for e in entries] == sorted((e["score"] for e in entries), reverse=True)
        assert sum(e["probability"] for e in entries) == pytest.approx(1.0, abs=1e-6)


def test_checkpoint_of_another_task_is_refused(key_run, tmp_path):
    data, save, _ = key_run
    state = load_state(os.path.join(save, "checkpoint_last.pt"))
    state["cfg"]["task"]["_name"] = "masked_lm"
    ckpt = tmp_path / "lm.pt"
    torch.save(state, ckpt)
    proc = predict("--path", ckpt, "--data", data, "--output", tmp_path / "p.json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("grafusion-predict: error:") and "task 'masked_lm', not xmrc_span" in last
    assert not (tmp_path / "p.json").exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    proc = predict("--path", tmp_path / "junk.pt", "--data", data, "--output", tmp_path / "p.json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "junk.pt: not a fairseq checkpoint" in proc.stderr.strip().splitlines()[-1]


def png_size(path):
    """Width and height from a PNG's IHDR chunk (and a check that it is a PNG)."""
    head = open(path, "rb").read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_attention_plot_is_a_png_of_the_requested_size(key_run, tmp_path):
    data, save, _ = key_run
    out = tmp_path / "fig5.png"
    proc = subprocess.run(
        [sys.executable, "-m", "fairseq_grafusion.cli.plot_attention", "--path",
         os.path.join(save, "checkpoint_last.pt"), "--data", data, "--split", "valid", "--id",
         "valid-7", "--output", str(out), "--width", "8", "--height", "4", "--dpi", "50"],
        capture_output=True, text=True, cwd=REPO, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert png_size(out) == (400, 200)
    assert out.stat().st_size > 5000  # two heatmaps, not a blank canvas
    bad = subprocess.run(
        [sys.executable, "-m", "fairseq_grafusion.cli.plot_attention", "--path",
         os.path.join(save, "checkpoint_last.pt"), "--data", data, "--id", "nope", "--output",
         str(tmp_path / "x.png")], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 1 and "question id 'nope' is not in" in bad.stderr.splitlines()[-1]


def test_attention_maps_match_the_model(key_run):
    """The plotted cells are the model's own last-layer attention and G, target rows x source cols."""
    from fairseq_grafusion.data import GraphPairDataset, PairReader
    from fairseq_grafusion.figures import attention_maps
    from fairseq_grafusion.inference import load_model

    data, save, _ = key_run
    model, task = load_model(os.path.join(save, "checkpoint_last.pt"), data)
    reader = PairReader(os.path.join(data, "valid"))
    ds = GraphPairDataset(reader, 1, shuffle=False)
    sample = ds.collater([ds[5]])
    attn, graph = attention_maps(model, sample)
    ls, lt = len(ds[5]["src.tok"]), len(ds[5]["tgt.tok"])
    assert attn.shape == (lt, ls) and graph.shape == (lt, ls)
    with torch.no_grad():
        out = model(**sample["net_input"], return_attention=True)
    torch.testing.assert_close(attn, out["attn"][0].mean(0)[ls:, :ls])
    torch.testing.assert_close(graph, out["graph_bias"][0][ls:, :ls])
    assert (attn >= 0).all() and attn.sum() > 0


def test_prediction_maps_the_checkpoint_and_never_reads_its_optimizer_state(key_run, tmp_path):
    """At XLM-R-base size a checkpoint is 3.7 GB, two thirds of it Adam's state, which prediction
    never needs: ``load_model`` maps the file, so what it reads is the weights.  A checkpoint
    with 768 MiB of optimizer state is loaded in a fresh process; its peak RSS grows by far less
    than that (the whole read grew it by more), and the model is the checkpoint's."""
    data, save, _ = key_run
    state = load_state(os.path.join(save, "checkpoint_last.pt"))
    state["last_optimizer_state"] = {"state": {0: {"exp_avg": torch.ones(96 * 2 ** 20, dtype=torch.float64)}},
                                     "param_groups": [{"params": [0]}]}
    big = tmp_path / "checkpoint_big.pt"
    torch.save(state, big)
    code = f"""
import sys, torch
sys.path.insert(0, {REPO!r})
from fairseq_grafusion.inference import load_model
def peak():  # VmHWM: this process's own peak (ru_maxrss would carry the forking parent's over exec)
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
before = peak()
model, _ = load_model({str(big)!r}, {data!r})
grown = (peak() - before) / 1024
torch.save(model.state_dict(), {str(tmp_path / "weights.pt")!r})
print("GROWN", grown)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path),
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    grown = float(proc.stdout.split("GROWN")[1])
    assert grown < 256, f"peak RSS grew by {grown:.0f} MiB loading a checkpoint with 768 MiB of optimizer state"
    weights = torch.load(tmp_path / "weights.pt", weights_only=True)
    assert weights.keys() == state["model"].keys()
    for name, tensor in state["model"].items():
        assert torch.equal(weights[name], tensor), name
