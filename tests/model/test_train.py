"""fairseq-train end to end, for each variant: the loss falls, checkpoints are written, resume works."""
import os

import pytest

import fairseq_grafusion.plugin  # noqa: F401  (registers the plugin)
from conftest import logged, run_fairseq, train_args
from fairseq_grafusion.checkpoint_compat import load_state

VARIANTS = {
    "none": ["--graph", "none"],
    "align": ["--graph", "align"],
    "align,dep": ["--graph", "align,dep"],
    "no-fusion": ["--no-fusion"],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_train_learns_saves_and_resumes(variant, marker_data, tmp_path):
    save = str(tmp_path / "ckpt")
    first = run_fairseq("train", *train_args(marker_data, save, *VARIANTS[variant], updates=120))
    out = first.stdout + first.stderr
    start = logged(out, "train_inner", "tgt_loss")[0]
    final = logged(out, "valid", "tgt_loss")[-1]
    assert final < 0.2 * start, (start, final)
    assert logged(out, "valid", "tgt_start_acc")[-1] > 90
    has_src = bool(logged(out, "valid", "src_loss"))
    assert has_src == (variant != "no-fusion")
    assert os.path.exists(os.path.join(save, "checkpoint_last.pt"))
    assert os.path.exists(os.path.join(save, "checkpoint_best.pt"))

    state = load_state(os.path.join(save, "checkpoint_last.pt"))
    keys = state["model"].keys()
    assert any(k.startswith("src_bottom.") for k in keys) == (variant != "no-fusion")
    assert any(".graph.f_a." in k for k in keys) == (variant in ("align", "align,dep"))
    assert any(".graph.f_d." in k for k in keys) == (variant == "align,dep")

    # a second run continues from checkpoint_last.pt (torch >= 2.6, no environment variable)
    env_flag = os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    try:
        second = run_fairseq("train", *train_args(marker_data, save, *VARIANTS[variant], updates=150))
    finally:
        if env_flag is not None:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = env_flag
    out2 = second.stdout + second.stderr
    assert "Loaded checkpoint" in out2 and "@ 120 updates" in out2
    assert logged(out2, "valid", "num_updates")[-1] == 150
    assert logged(out2, "train_inner", "tgt_loss")[0] < 0.5 * start  # did not start from scratch
