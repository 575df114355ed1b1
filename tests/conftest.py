"""Shared fixtures: synthetic data written by the tests, and fairseq-train as a user runs it."""
import os
import re
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_DIR = os.path.join(REPO, "fairseq_grafusion")


def run_fairseq(module, *args, timeout=600, check=True):
    """Run ``python -m fairseq_cli.<module> ...`` with the plugin; returns the completed process."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", f"fairseq_cli.{module}", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"fairseq_cli.{module} failed ({proc.returncode}):\n"
                             f"--- stdout (end) ---\n{proc.stdout[-2000:]}\n"
                             f"--- stderr (end) ---\n{proc.stderr[-3000:]}")
    return proc


def preprocess(*args, check=True):
    """Run ``grafusion-preprocess`` (``python -m fairseq_grafusion.preprocess``); returns the completed
    process."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "fairseq_grafusion.preprocess", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"grafusion-preprocess failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def train_workers(args, log_dir, rank_args=lambda rank: [], world=2, timeout=900):
    """``world`` fairseq-train processes (``--distributed-rank`` r plus ``rank_args(r)``), run
    to the end; returns their logs (stdout and stderr), rank 0 first."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    logs = [open(os.path.join(log_dir, f"rank{r}.log"), "w+") for r in range(world)]
    procs = [subprocess.Popen([sys.executable, "-m", "fairseq_cli.train", *map(str, args),
                               "--distributed-rank", str(r), *rank_args(r)], stdout=logs[r],
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO, env=env)
             for r in range(world)]
    codes = [p.wait(timeout=timeout) for p in procs]
    text = []
    for f in logs:
        f.seek(0)
        text.append(f.read())
        f.close()
    assert codes == [0] * world, f"exit codes {codes}:\n" + "\n".join(t[-3000:] for t in text)
    return text


def train_args(data, save_dir, *extra, updates=250, arch="grafusion_tiny"):
    return [data, "--user-dir", USER_DIR, "--task", "xmrc_span", "--criterion", "xmrc_span",
            "--arch", arch, "--cpu", "--optimizer", "adam", "--lr", "1e-3", "--batch-size", "16",
            "--max-update", str(updates), "--save-dir", save_dir, "--log-format", "simple",
            "--log-interval", "10", "--no-progress-bar", "--no-epoch-checkpoints", "--seed", "1",
            *extra]


def logged(output, kind, key):
    """Values of ``key`` in fairseq's ``simple`` log lines of one kind (train_inner / valid)."""
    values = []
    for line in output.splitlines():
        if f"| {kind} |" not in line and not (kind == "train_inner" and "train_inner" in line):
            continue
        m = re.search(rf"(?:\| |, ){key}[ =]([0-9.]+)", line)
        if m:
            values.append(float(m.group(1)))
    return values


@pytest.fixture(scope="session")
def marker_data(tmp_path_factory):
    """The easy synthetic task: learnable by every variant in a few hundred updates."""
    from fairseq_grafusion.synthetic import SyntheticXMRC

    path = str(tmp_path_factory.mktemp("marker_data"))
    return SyntheticXMRC(task="marker").write(path, splits=(("train", 1000), ("valid", 100)))


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """``grafusion-preprocess all`` on the bundled sample, once per session: (out, proc, seconds).
    Tests that change the output work on a copy."""
    out = tmp_path_factory.mktemp("run") / "sample-run"
    start = time.time()
    proc = preprocess("all", "--out", out)
    seconds = time.time() - start
    print(f"grafusion-preprocess all on the sample: {seconds:.1f}s")
    return out, proc, seconds


XQUAD_LANGS = ("de", "zh", "ar")


def xquad_pair_args(xx, out):
    """``grafusion-preprocess all`` of the (English, xx) pair of the bundled XQuAD sample, exactly
    as README command 1 (examples/run_sample.sh) and the recipes' miniatures run it (paths
    relative to the repository, so that their runs find these stages up to date)."""
    s = "examples/sample"
    return ["all", "--out", out, "--src-lang", "en", "--tgt-lang", xx,
            "--qa", "train", f"{s}/qa/train.en.json", f"{s}/qa/train.{xx}.json",
            "--qa", "valid", f"{s}/qa/valid.en.json", f"{s}/qa/valid.{xx}.json",
            "--align-extra", f"{s}/parallel/train.en-{xx}.en", f"{s}/parallel/train.en-{xx}.{xx}",
            "--spm", f"{s}/spm-xquad/sentencepiece.bpe.model", "--dict", f"{s}/spm-xquad/dict.txt"]


@pytest.fixture(scope="session")
def xquad_pairs(tmp_path_factory):
    """The three pairs of the multilingual sample preprocessed once per session:
    ``{lang: pair directory}`` (each with ``qa-bin/`` and ``work/``).  Tests copy them."""
    root = tmp_path_factory.mktemp("xquad-pairs")
    start = time.time()
    dirs = {}
    for xx in XQUAD_LANGS:
        dirs[xx] = root / f"en-{xx}"
        preprocess(*xquad_pair_args(xx, dirs[xx]))
    print(f"grafusion-preprocess all on the sample's en-de, en-zh, en-ar: {time.time() - start:.1f}s")
    return dirs
