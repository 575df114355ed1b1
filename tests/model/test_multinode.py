"""Two nodes on localhost through fairseq's own cluster entry points (issue 24, item 1).

One ``fairseq-train --task xmrc_span`` (+ad, per-language F1 in validation) on a directory of two
languages, three ways, with the same total batch of 16 per update:

* **single**: one process, ``--batch-size 8 --update-freq 2``;
* **SLURM**: two processes, each with the environment ``srun --nodes 2 --ntasks-per-node 1``
  gives it (``SLURM_JOB_NODELIST``, ``SLURM_NNODES``, ``SLURM_NODEID``, ``SLURM_PROCID``, ...)
  and ``--distributed-port``; fairseq's ``infer_init_method`` builds the process group from them
  and each "node" spawns its one worker, as it spawns one per GPU on a cluster;
* **torchrun**: ``torchrun --nnodes 2 --node-rank {0,1} --nproc-per-node 1`` with a c10d
  rendezvous on 127.0.0.1; fairseq reads ``MASTER_ADDR`` / ``WORLD_SIZE`` / ``RANK``.

Each of the two runs must log the single run's training losses and every ``f1_<lang>`` /
``f1_avg`` and save its checkpoint (same update count, weights within float tolerance): fairseq
hands each worker every other batch of the same shuffled list, which is what ``--update-freq 2``
groups into one update, and the gradients are summed across workers.  Dropout is 0 (its masks
come from a per-worker stream, which no single process reproduces).  Batches are loaded in the
training process (``--num-workers 0``): a worker that fairseq's SLURM path spawned starts its
data-loader processes by spawning too, a fresh interpreter importing torch and fairseq (about 7 s
of CPU) for every epoch and every validation, which is all this test would measure of them.

The shims, both for a CPU-only machine standing in for GPU nodes:

* ``scontrol`` on ``PATH``: fairseq runs ``scontrol show hostnames $SLURM_JOB_NODELIST`` for the
  master's address; the stand-in prints the comma-separated names one per line (both "nodes" are
  127.0.0.1).
* ``sitecustomize.py``: fairseq counts a node's GPUs to size the SLURM world
  (``nnodes * device_count()``) and picks a worker's device as ``RANK % device_count()``; on a CPU
  machine the count is 0.  The stand-in reports one device per node, and makes
  ``torch.cuda.set_device`` a no-op; with ``--cpu`` nothing runs on it.  ``tests/gpu`` runs the
  GPU path itself.
"""
import json
import os
import socket
import sys

import pytest
import torch
from test_predict import predict

from conftest import REPO, finish_logged, logged, start_logged, train_args
from fairseq_grafusion.data.languages import gold_file
from fairseq_grafusion.scoring.qa_metrics import evaluate

LANGS = ("de", "zh")
SCONTROL = """#!/bin/sh
# stand-in for `scontrol show hostnames LIST` (comma-separated names, no ranges)
[ "$1 $2" = "show hostnames" ] || { echo "scontrol stand-in: $*" >&2; exit 1; }
echo "$3" | tr ',' '\\n'
"""
ONE_DEVICE_PER_NODE = """import torch
if not torch.cuda.is_available():  # a CPU "node" with one device that --cpu never uses
    torch.cuda.device_count = lambda: 1
    torch.cuda.set_device = lambda device: None
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_all(commands, log_dir, name, env):
    started = [start_logged(c, os.path.join(log_dir, f"{name}{i}.log"), dict(os.environ, **e, **env))
               for i, (c, e) in enumerate(commands)]
    done = [finish_logged(s, timeout=600) for s in started]
    assert [code for code, _ in done] == [0] * len(done), "\n".join(t[-3000:] for _, t in done)
    # the master logs the training (the others log warnings only)
    return max((t for _, t in done), key=lambda t: t.count("train_inner"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from fairseq_grafusion.preprocess import cli as preprocess_cli
    from fairseq_grafusion.synthetic import SyntheticXMRC

    tmp = tmp_path_factory.mktemp("nodes")
    pairs = []
    # 192 training examples = 12 updates of 16 per epoch (the runs end in epoch 2); 20 + 19
    # validation questions = 5 batches of <= 8, straddling the languages: one worker gets 3, the
    # other 2 and fairseq's dummy batch, whose logging outputs must not count
    for lang, words, seed, valid in zip(LANGS, ((6, 9), (12, 15)), (1, 2), (20, 19)):
        directory = str(tmp / f"en-{lang}")
        SyntheticXMRC(task="key", passage_words=words).write(directory, (("train", 96), ("valid", valid)),
                                                              seed=seed)
        pairs += ["--pair", lang, directory]
    data = str(tmp / "data")
    preprocess_cli.main(["combine", "--out", data] + pairs)
    shims = tmp / "shims"
    shims.mkdir()
    (shims / "scontrol").write_text(SCONTROL)
    (shims / "scontrol").chmod(0o755)
    (shims / "sitecustomize.py").write_text(ONE_DEVICE_PER_NODE)
    env = {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
           "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(shims), REPO, os.environ.get("PYTHONPATH", "")])}

    def args(save, *extra):
        return [*map(str, train_args(data, str(tmp / save), "--eval-span-f1", "--dropout", "0",
                                     "--attention-dropout", "0", "--validate-interval-updates", "8",
                                     "--log-interval", "2", "--num-workers", "0", *extra, updates=16))]

    train = [sys.executable, "-m", "fairseq_cli.train"]
    dist = ["--batch-size", "8", "--distributed-world-size", "2", "--distributed-backend", "gloo",
            "--ddp-backend", "legacy_ddp"]
    logs = {"single": run_all([(train + args("single", "--batch-size", "8", "--update-freq", "2"), {})],
                              tmp, "single", env)}
    port, slurm = free_port(), []
    for node in range(2):
        slurm.append((train + args("slurm", *dist, "--distributed-port", str(port)), {
            "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "127.0.0.1,127.0.0.1", "SLURM_NNODES": "2",
            "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1", "SLURM_NODEID": str(node),
            "SLURM_PROCID": str(node), "SLURM_LOCALID": "0"}))
    logs["slurm"] = run_all(slurm, tmp, "slurm", env)
    port, torchrun = free_port(), []
    for node in range(2):
        torchrun.append(([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank",
                          str(node), "--nproc-per-node", "1", "--rdzv-backend", "c10d",
                          "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "grafusion-two-nodes",
                          "-m", "fairseq_cli.train", *args("torchrun", *dist)], {}))
    logs["torchrun"] = run_all(torchrun, tmp, "torchrun", env)
    return data, tmp, logs


def weights(path):
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state["optimizer_history"][-1]["num_updates"], state["model"]


@pytest.mark.parametrize("launcher", ["slurm", "torchrun"])
def test_two_nodes_train_the_single_process_model(runs, launcher):
    _, tmp, logs = runs
    single, multi = logs["single"], logs[launcher]
    assert "training on 2 devices" in multi and "training on 1 devices" in single
    if launcher == "slurm":  # fairseq's SLURM discovery built the group, not a given init method
        assert "distributed init (rank 0): tcp://127.0.0.1:" in multi
    else:
        assert "distributed init (rank 0): env://" in multi
    for kind, key in [("train_inner", "src_loss"), ("train_inner", "tgt_loss"), ("train_inner", "bsz"),
                      ("train_inner", "gnorm"), ("train", "loss"),
                      ("valid", "loss"), ("valid", "f1"), ("valid", "em"), ("valid", "f1_avg"),
                      *[("valid", f"f1_{lang}") for lang in LANGS]]:
        expected = logged(single, kind, key)
        assert expected and logged(multi, kind, key) == expected, (kind, key)
    assert set(logged(multi, "train_inner", "bsz")) == {16.0}
    assert len(logged(multi, "valid", "f1_avg")) == 3  # updates 8, 12 (end of epoch 1) and 16
    updates, a = weights(tmp / "single" / "checkpoint_last.pt")
    multi_updates, b = weights(tmp / launcher / "checkpoint_last.pt")
    assert updates == multi_updates == 16
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-6), k


def test_validation_f1_of_two_nodes_is_predict_then_evaluate(runs, tmp_path):
    """The two-node run's last per-language F1 (summed over the workers) is what predict +
    evaluate of its checkpoint give in one process."""
    data, tmp, logs = runs
    log = logs["slurm"]
    proc = predict("--path", tmp / "slurm" / "checkpoint_last.pt", "--data", data, "--split", "valid",
                   "--output", tmp_path / "pred.{lang}.json", "--cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    per_lang = {}
    for lang in LANGS:
        with open(gold_file(data, "valid", "tgt", lang), encoding="utf-8") as f:
            per_lang[lang] = evaluate(json.load(f), json.loads((tmp_path / f"pred.{lang}.json").read_text()),
                                      lang, metric="auto")
        assert per_lang[lang]["f1"] == pytest.approx(logged(log, "valid", f"f1_{lang}")[-1], abs=0.01)
        assert per_lang[lang]["exact_match"] == pytest.approx(logged(log, "valid", f"em_{lang}")[-1], abs=0.01)
    assert logged(log, "valid", "f1_avg")[-1] == pytest.approx(
        sum(r["f1"] for r in per_lang.values()) / len(LANGS), abs=0.01)
    total = sum(r["total"] for r in per_lang.values())
    assert logged(log, "valid", "f1")[-1] == pytest.approx(
        sum(r["f1"] * r["total"] for r in per_lang.values()) / total, abs=0.01)
