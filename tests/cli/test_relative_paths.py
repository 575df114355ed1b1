"""Every command as a user types it: run from a directory outside the repository with every path
option relative (``--out``, ``--qa``, ``--parallel``, ``--spm``, ``--dict``, ``--align-extra``,
``--pair``, ``--save-dir``, ``--path``, ``--data``, ``--output``, ``--eval``, ``--json``,
``--row``), each command gives what it gives with absolute paths.

The absolute side of the preprocessing is the session's ``sample_run`` (``grafusion-preprocess
all --out ABSOLUTE`` on the bundled en-ro sample); the relative side gives the same inputs by
hand, copied into the user's directory.  The commands after it run twice each, relative and
absolute, through ``forked_commands.py``.
"""
import filecmp
import json
import os
import shutil

import pytest
import torch

from conftest import REPO, preprocess, run_forked, train_args
from fairseq_grafusion.checkpoint_compat import load_state

SAMPLE = os.path.join(REPO, "examples", "sample")


def relative_preprocess_args(out, inputs):
    """``grafusion-preprocess all`` of the sample's en-ro pair, every path relative to the user's
    directory: what ``--sample`` fills in, given by hand."""
    i = lambda *p: os.path.join(inputs, *p)  # noqa: E731
    return ["all", "--out", out, "--src-lang", "en", "--tgt-lang", "ro",
            "--qa", "train", i("qa", "train.en.json"), i("qa", "train.ro.json"),
            "--qa", "valid", i("qa", "valid.en.json"), i("qa", "valid.ro.json"),
            "--parallel", "train", i("parallel", "train.en"), i("parallel", "train.ro"),
            "--parallel", "valid", i("parallel", "valid.en"), i("parallel", "valid.ro"),
            "--align-extra", i("parallel", "train.en"), i("parallel", "train.ro"),
            "--spm", i("spm", "sentencepiece.bpe.model"), "--dict", i("spm", "dict.txt")]


@pytest.fixture(scope="module")
def user(sample_run, tmp_path_factory):
    """The user's directory (outside the repository) with the sample's inputs in ``in/`` and the
    relative run's output in ``out/``; the absolute run's output (``sample_run``)."""
    home = tmp_path_factory.mktemp("user")
    shutil.copytree(SAMPLE, home / "in")
    preprocess(*relative_preprocess_args("out", "in"), cwd=home)
    return home, sample_run[0]


def binary_files(directory):
    """The data files of a directory: not the manifests (they fingerprint where the inputs
    were), not the run's lock file."""
    return sorted(f for f in os.listdir(directory)
                  if not f.endswith(".meta.json") and f != "combine.json" and not f.startswith("."))


def test_preprocessing_with_relative_paths_equals_the_absolute_run(user):
    """The step that broke README command 1: eflomal started in a directory of its own met the
    relative --out.  Every binary file, gold file and dictionary is the absolute run's, byte for
    byte; the manifests differ only in what fingerprints the inputs' locations."""
    home, absolute = user
    for sub in ("qa-bin", "parallel-bin"):
        names = binary_files(absolute / sub)
        assert names and binary_files(home / "out" / sub) == names
        different = [n for n in names if not filecmp.cmp(absolute / sub / n, home / "out" / sub / n,
                                                         shallow=False)]
        assert not different, (sub, different)
        for meta in (f for f in os.listdir(absolute / sub) if f.endswith(".meta.json")):
            a, r = (json.loads((d / sub / meta).read_text()) for d in (absolute, home / "out"))
            assert a["files"] == r["files"] and a["size"] == r["size"], meta
    # the alignment model, estimated in each run, is the same model
    assert filecmp.cmp(absolute / "work" / "alignment.priors", home / "out" / "work" / "alignment.priors",
                       shallow=False)


def command_lines(root, data, sample_dir, out):
    """The commands after preprocessing, every path under ``root`` (relative: ``root`` is '' and
    the commands run in the user's directory)."""
    p = lambda *parts: os.path.join(root, *parts)  # noqa: E731
    spm = os.path.join(sample_dir, "spm")
    return [
        ("grafusion-preprocess", ["combine", "--out", p(out, "combined"), "--pair", "ro", data]),
        # --user-dir: the plugin's absolute directory, what "$(grafusion-user-dir)" gives
        ("fairseq-train", train_args(data, p(out, "ck"), "--disable-validation", updates=2)),
        ("grafusion-predict", ["--path", p(out, "ck", "checkpoint_last.pt"), "--data", data,
                               "--split", "valid", "--output", p(out, "pred.json"), "--cpu"]),
        ("grafusion-predict", ["--path", p(out, "ck", "checkpoint_last.pt"), "--qa",
                               os.path.join(sample_dir, "qa", "valid.en.json"),
                               os.path.join(sample_dir, "qa", "valid.ro.json"), "--src-lang", "en",
                               "--tgt-lang", "ro", "--spm", os.path.join(spm, "sentencepiece.bpe.model"),
                               "--dict", os.path.join(spm, "dict.txt"),
                               "--output", p(out, "pred.qa.json"), "--cpu"]),
        ("grafusion-evaluate", ["--eval", "ro", os.path.join(data, "valid.tgt.json"),
                                p(out, "pred.json"), "--json", p(out, "scores.json")]),
        ("grafusion-results", ["--row", "+ad", p(out, "scores.json"), "--output", p(out, "table.md")]),
        ("grafusion-plot-attention", ["--path", p(out, "ck", "checkpoint_last.pt"), "--data", data,
                                      "--split", "valid", "--output", p(out, "attention.png")]),
    ]


def test_every_command_with_relative_paths_gives_the_absolute_runs_results(user, tmp_path):
    home, absolute = user
    logs = tmp_path / "logs"
    logs.mkdir()
    jobs = []
    for side, (root, data, sample_dir, cwd) in {
            "rel": ("", os.path.join("out", "qa-bin"), "in", home),
            "abs": (str(tmp_path), str(absolute / "qa-bin"), SAMPLE, REPO)}.items():
        for k, (command, argv) in enumerate(command_lines(root, data, sample_dir, side)):
            jobs.append((command, argv, logs / f"{side}{k}.log", cwd))
    results = run_forked(jobs, tmp_path)
    for (command, argv, log, cwd), (code, output) in zip(jobs, results):
        assert code == 0, f"{command} {' '.join(map(str, argv))} (in {cwd}):\n{output[-3000:]}"
    rel, ab = home / "rel", tmp_path / "abs"
    for name in ("pred.json", "pred.qa.json", "table.md"):
        assert (rel / name).read_text() == (ab / name).read_text(), name
    scores = [json.loads((d / "scores.json").read_text()) for d in (rel, ab)]
    assert scores[0]["avg"] == scores[1]["avg"] and scores[0]["metrics"] == scores[1]["metrics"]
    assert scores[0]["languages"]["ro"]["gold"] == str(home / "out" / "qa-bin" / "valid.tgt.json")
    weights = [load_state(d / "ck" / "checkpoint_last.pt")["model"] for d in (rel, ab)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[1])
    for name in binary_files(ab / "combined"):
        assert filecmp.cmp(rel / "combined" / name, ab / "combined" / name, shallow=False), name
    assert (rel / "attention.png").stat().st_size > 1000
