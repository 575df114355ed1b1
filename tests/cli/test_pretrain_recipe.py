"""``examples/pretrain/run.sh full mlqa`` (the +adp recipe with the paper's settings) runs as
written, in miniature on a CPU: the bundled sample, a tiny XLM-R written by fairseq-train
--task masked_lm, 3 pre-training updates, one fine-tuning epoch, fp16 through
``--memory-efficient-fp16`` (the only fp16 path fairseq has on a CPU)."""
import os
import shutil
import subprocess
import sys

from test_xlmr_init import write_roberta

import fairseq_grafusion.plugin  # noqa: F401  (registers the plugin)
from conftest import REPO
from fairseq_grafusion.checkpoint_compat import load_state


def test_full_recipe_runs_in_miniature(sample_run, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample_run[0], data)
    xlmr = write_roberta(tmp_path, str(data / "qa-bin"), layers=4)  # grafusion_tiny: 1 + 2 + 1
    out = tmp_path / "adp"
    env = dict(os.environ, PARALLEL=str(data / "parallel-bin"), QA=str(data / "qa-bin"),
               XLMR=xlmr, OUT=str(out), ARCH="grafusion_tiny", NGPU="1", PRETRAIN_UPDATES="3",
               EPOCHS="1", PER_GPU="16", EXTRA_ARGS="--cpu --memory-efficient-fp16",
               PYTHON=sys.executable, OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", os.path.join(REPO, "examples", "pretrain", "run.sh"), "full",
                           "mlqa"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          stdin=subprocess.DEVNULL, timeout=900)  # not from the repository
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    log = "".join((out / "logs" / f"{name}.log").read_text() for name in ("pretrain", "finetune"))
    assert "initialised from SA-Graph pre-training checkpoint" in log
    assert "| valid |" in log and "f1" in log.split("| valid |")[-1]  # --eval-span-f1 selected
    pre = load_state(out / "pretrain" / "checkpoint_last.pt")
    ft = load_state(out / "finetune" / "checkpoint_best.pt")
    assert pre["optimizer_history"][-1]["num_updates"] == 3
    assert pre["cfg"]["common"]["fp16"] and ft["cfg"]["common"]["fp16"]
    assert ft["cfg"]["optimization"]["lr"] == [5e-5]  # appendix C, MLQA
    assert ft["cfg"]["checkpoint"]["best_checkpoint_metric"] == "f1"
