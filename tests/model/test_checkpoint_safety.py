"""Checkpoints: none runs code, none is lost to a kill, none is overwritten by a silent fresh
start, and a resumed run ends where an uninterrupted one does."""
import os
import shutil

import pytest
import torch

import fairseq_grafusion.plugin  # noqa: F401  (registers the plugin)
from conftest import REPO, run_fairseq, run_module, train_args
from fairseq_grafusion.checkpoint_compat import load_state
from fairseq_grafusion.errors import GraFusionError

SAMPLE = os.path.join(REPO, "examples", "sample")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """200 training examples = 13 updates per epoch at batch 16."""
    from fairseq_grafusion.synthetic import SyntheticXMRC

    path = str(tmp_path_factory.mktemp("small") / "data")
    return SyntheticXMRC(task="marker").write(path, splits=(("train", 200), ("valid", 20)))


@pytest.fixture(scope="module")
def real_state(small_data, tmp_path_factory):
    save = tmp_path_factory.mktemp("real") / "ck"
    run_fairseq("train", *train_args(small_data, str(save), "--disable-validation", updates=2))
    return load_state(str(save / "checkpoint_last.pt"))


def plain(value):
    """The checkpoint's configuration as plain dicts and strings only (no pickled classes)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return plain(vars(value))
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def evil_checkpoint(real_state, path, mark, task="xmrc_span"):
    """What the attack looked like: strings and dicts only (so ``weights_only=True`` loads it),
    task ``xmrc_span`` (or ``translation``), model ``fconv`` whose builder ``eval()``s its layer
    specification, here a call that creates ``mark``."""
    payload = f"__import__('pathlib').Path({str(mark)!r}).touch() or [(64, 3)] * 2"
    cfg = plain(real_state["cfg"])
    cfg["task"] = dict(cfg["task"], _name=task)
    if task == "translation":
        cfg["task"].update(source_lang="en", target_lang="ro")
    cfg["model"] = {"_name": "fconv", "arch": "fconv", "encoder_layers": payload,
                    "decoder_layers": payload, "encoder_embed_dim": 64, "decoder_embed_dim": 64,
                    "decoder_out_embed_dim": 64, "decoder_attention": "True", "dropout": 0.1,
                    "max_source_positions": 64, "max_target_positions": 64,
                    "share_input_output_embed": False}
    state = {"cfg": cfg, "model": {}, "args": None,
             "optimizer_history": plain(real_state["optimizer_history"]),
             "extra_state": plain(real_state["extra_state"])}
    torch.save(state, path)
    torch.load(path, weights_only=True)  # the file passes torch's safe loader by itself
    return path


def one_line_error(proc, mark):
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not os.path.exists(mark), "the checkpoint's code ran"
    return proc.stderr.strip().splitlines()[-1]


def test_no_code_runs_from_a_checkpoint_on_any_loading_path(real_state, small_data, tmp_path):
    mark = tmp_path / "PWNED"
    evil = evil_checkpoint(real_state, tmp_path / "evil.pt", mark)
    # grafusion-predict
    last = one_line_error(run_module("fairseq_grafusion.cli.predict", "--path", evil, "--data",
                                 small_data, "--split", "valid", "--output", tmp_path / "p.json"),
                          mark)
    assert "is not a fairseq-grafusion model" in last and "fconv" in last, last
    # grafusion-plot-attention
    last = one_line_error(run_module("fairseq_grafusion.cli.plot_attention", "--path", evil, "--data",
                                 small_data, "--split", "valid", "--output", tmp_path / "x.png"),
                          mark)
    assert "fconv" in last, last
    # the hub
    model_dir = tmp_path / "hub"
    model_dir.mkdir()
    shutil.copy(evil, model_dir / "checkpoint_best.pt")
    for name in ("dict.txt", "sentencepiece.bpe.model"):
        shutil.copy(os.path.join(SAMPLE, "spm", name), model_dir / name)
    from fairseq_grafusion.models import GraFusionModel

    with pytest.raises(GraFusionError, match="fconv"):
        GraFusionModel.from_pretrained(str(model_dir), checkpoint_file="checkpoint_best.pt",
                                       src_lang="en", tgt_lang="ro")
    assert not mark.exists()
    # grafusion-preprocess --mt-model (a "translation" checkpoint with the same payload)
    mt = tmp_path / "mt"
    mt.mkdir()
    evil_checkpoint(real_state, mt / "model.pt", mark, task="translation")
    for lang in ("en", "ro"):
        shutil.copy(os.path.join(SAMPLE, "spm", "dict.txt"), mt / f"dict.{lang}.txt")
    last = one_line_error(run_module("fairseq_grafusion.preprocess", "pairs", "--out", tmp_path / "out", "--src-lang",
                                 "en", "--tgt-lang", "ro", "--qa", "train", "-",
                                 os.path.join(SAMPLE, "qa", "train.ro.json"), "--mt-model", mt),
                          mark)
    assert "not a fairseq transformer translation model" in last, last


class Payload:
    def __reduce__(self):
        return (os.system, ("true",))


def test_pickled_objects_are_refused(tmp_path, small_data):
    path = tmp_path / "pickled.pt"
    torch.save({"cfg": {}, "model": {}, "x": Payload()}, path)
    proc = run_module("fairseq_grafusion.cli.predict", "--path", path, "--data", small_data,
                  "--split", "valid", "--output", tmp_path / "p.json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "refused" in proc.stderr.strip().splitlines()[-1]


def test_only_namespace_is_allowed_and_only_while_we_load(tmp_path):
    """The allow-list is not process-wide: plain torch.load still refuses argparse.Namespace."""
    import argparse

    path = tmp_path / "ns.pt"
    torch.save({"args": argparse.Namespace(a=1)}, path)
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)
    assert load_state(str(path))["args"].a == 1


KILL_AT_COPY = '''
import os, shutil
_target = os.environ.get("GRAFUSION_TEST_KILL_COPY_TO")
if _target:
    _copyfile = shutil.copyfile

    def copyfile(src, dst, *args, **kwargs):
        if os.path.basename(str(dst)).startswith(_target):
            with open(src, "rb") as f, open(dst, "wb") as g:  # half of the file, then a kill
                data = f.read()
                g.write(data[: len(data) // 2])
            os._exit(137)
        return _copyfile(src, dst, *args, **kwargs)

    shutil.copyfile = copyfile
'''


def train(data, save, *extra, updates, env=None, check=True):
    args = [a for a in train_args(data, str(save), "--disable-validation", *extra, updates=updates)
            if a != "--no-epoch-checkpoints"]
    if env is None:
        return run_fairseq("train", *args, check=check)
    full = dict(os.environ, OMP_NUM_THREADS="1", **env)
    return run_module("fairseq_cli.train", *args, env=full, timeout=600)


def updates_of(path):
    return load_state(str(path))["optimizer_history"][-1]["num_updates"]


def test_a_kill_while_copying_leaves_checkpoint_last_whole(small_data, tmp_path):
    save = tmp_path / "ck"
    train(small_data, save, updates=13)  # end of epoch 1: checkpoint1.pt copied to _last
    assert updates_of(save / "checkpoint_last.pt") == 13
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_AT_COPY)
    env = {"PYTHONPATH": f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "GRAFUSION_TEST_KILL_COPY_TO": "checkpoint_last"}
    killed = train(small_data, save, updates=26, env=env)
    assert killed.returncode == 137, killed.stderr[-2000:]
    assert updates_of(save / "checkpoint2.pt") == 26  # the save itself happened
    assert updates_of(save / "checkpoint_last.pt") == 13  # the old file, whole
    assert [f for f in os.listdir(save) if ".tmp" in f]  # the killed copy's temporary file
    resumed = train(small_data, save, updates=30)
    assert "removed 1 temporary checkpoint files" in resumed.stdout + resumed.stderr
    assert not [f for f in os.listdir(save) if ".tmp" in f]
    assert updates_of(save / "checkpoint_last.pt") == 30


def test_a_damaged_checkpoint_is_one_line_naming_what_to_restore(small_data, tmp_path):
    save = tmp_path / "ck"
    train(small_data, save, updates=13)
    last = save / "checkpoint_last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    proc = train(small_data, save, updates=20, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert "checkpoint_last.pt: not a fairseq checkpoint, or a damaged one" in line, line
    assert f"--restore-file {save / 'checkpoint1.pt'}" in line, line


def test_no_silent_fresh_start_over_a_best_checkpoint(small_data, tmp_path):
    save = tmp_path / "ck"
    train(small_data, save, updates=13)
    shutil.copy(save / "checkpoint_last.pt", save / "checkpoint_best.pt")
    os.remove(save / "checkpoint_last.pt")  # what a user does with a damaged last checkpoint
    before = (save / "checkpoint_best.pt").read_bytes()
    proc = train(small_data, save, updates=20, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert "would start from update 0" in line and "--restore-file" in line, line
    assert (save / "checkpoint_best.pt").read_bytes() == before
    train(small_data, save, "--reset-meters", updates=5)  # told to: it starts anew


def test_resuming_in_epoch_two_ends_with_the_uninterrupted_weights(small_data, tmp_path):
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    train(small_data, straight, updates=30)
    train(small_data, broken, updates=20)  # stops in epoch 2
    train(small_data, broken, updates=30)
    a = load_state(str(straight / "checkpoint_last.pt"))["model"]
    b = load_state(str(broken / "checkpoint_last.pt"))["model"]
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]


SIGTERM_AT = '''
import io, os, shutil, signal
_at = os.environ.get("GRAFUSION_TEST_SIGTERM_AT")  # "update:N", "write:N" or "copy:N"
if _at:
    import fairseq.checkpoint_utils as cu
    import fairseq.trainer
    import torch

    _where, _n = _at.split(":")
    _n = int(_n)

    def _term():  # what SLURM sends a job it preempts; no handler: the default action ends it
        os.kill(os.getpid(), signal.SIGTERM)

    if _where == "update":  # between two updates, mid-epoch
        _step = fairseq.trainer.Trainer.train_step

        def train_step(self, *args, **kwargs):
            out = _step(self, *args, **kwargs)
            if self.get_num_updates() == _n:
                _term()
            return out
        fairseq.trainer.Trainer.train_step = train_step
    elif _where == "write":  # half of the save's first file written
        _write = cu._torch_persistent_save

        def _torch_persistent_save(obj, f):
            if obj["optimizer_history"][-1]["num_updates"] == _n:
                buf = io.BytesIO()
                torch.save(obj, buf)
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                f.flush()
                _term()
            return _write(obj, f)
        cu._torch_persistent_save = _torch_persistent_save
    else:  # half of the copy to checkpoint_last.pt written
        _copyfile = shutil.copyfile

        def copyfile(src, dst, *args, **kwargs):
            if "checkpoint_last" in os.path.basename(str(dst)) and f"_{_n}.pt" in str(src):
                with open(src, "rb") as f, open(dst, "wb") as g:
                    data = f.read()
                    g.write(data[: len(data) // 2])
                    g.flush()
                _term()
            return _copyfile(src, dst, *args, **kwargs)
        shutil.copyfile = copyfile
'''
INTERVAL = ("--save-interval-updates", "6")  # 13 updates per epoch: saves at 6, 12, 13 (end of epoch 1), 18


@pytest.fixture(scope="module")
def uninterrupted(small_data, tmp_path_factory):
    save = tmp_path_factory.mktemp("straight") / "ck"
    train(small_data, save, *INTERVAL, updates=22)
    return load_state(str(save / "checkpoint_last.pt"))["model"]


@pytest.mark.parametrize("at, last", [("update:21", 18), ("write:18", 13), ("copy:18", 13)])
def test_a_sigterm_leaves_the_last_save_and_the_restart_ends_bit_exact(small_data, uninterrupted,
                                                                         tmp_path, at, last):
    """SIGTERM (SLURM's notice before a preemption) between two updates, or while a save is
    writing its first file (``checkpoint_2_18.pt``) or copying it to ``checkpoint_last.pt``:
    fairseq has no handler, so the run ends there (no save on the signal), and
    ``checkpoint_last.pt`` is the last complete save (``--save-interval-updates`` or the end of
    an epoch), readable.  The same command run again resumes from it and ends with the
    uninterrupted run's weights, bit for bit."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SIGTERM_AT)
    env = {"PYTHONPATH": f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "GRAFUSION_TEST_SIGTERM_AT": at}
    save = tmp_path / "ck"
    killed = train(small_data, save, *INTERVAL, updates=22, env=env)
    assert killed.returncode == -15, killed.stderr[-2000:]
    assert updates_of(save / "checkpoint_last.pt") == last
    resumed = train(small_data, save, *INTERVAL, updates=22)
    loaded = f"Loaded checkpoint {save / 'checkpoint_last.pt'} (epoch 2 @ {last} updates)"
    assert loaded in resumed.stdout + resumed.stderr
    assert not [f for f in os.listdir(save) if ".tmp" in f]
    assert updates_of(save / "checkpoint_last.pt") == 22
    final = load_state(str(save / "checkpoint_last.pt"))["model"]
    assert final.keys() == uninterrupted.keys()
    different = [k for k in final if not torch.equal(final[k], uninterrupted[k])]
    assert not different, different[:5]
