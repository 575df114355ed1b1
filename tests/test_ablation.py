"""The ablation script (examples/ablation/run.py) runs end to end for every variant: a 1-seed
miniature (tiny data, a few updates).  Only that it runs and writes the table's columns is
checked; the numbers belong to the benchmark (examples/ablation/RESULTS.md), not to assertions."""
import importlib.util
import json
import os

from conftest import REPO


def load_script():
    path = os.path.join(REPO, "examples", "ablation", "run.py")
    spec = importlib.util.spec_from_file_location("ablation_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mini_ablation_runs_every_variant_and_writes_the_table(tmp_path):
    run = load_script()
    out = tmp_path / "out"
    rows = run.main(["--mini", "--noise", "0.3", "--out", str(out), "--work", str(tmp_path / "w")])
    assert [r["variant"] for r in rows] == ["no-fusion", "none", "align", "align,dep"]
    assert all(r["noise"] == 0.3 and r["seeds"] == 1 for r in rows)
    table = (out / "RESULTS.md").read_text(encoding="utf-8")
    header = next(line for line in table.splitlines() if line.startswith("| variant"))
    assert [c.strip() for c in header.strip("|").split("|")] == list(run.COLUMNS)
    assert {"variant", "noise", "F1", "EM", "seeds"} <= set(run.COLUMNS)
    body = [line for line in table.splitlines() if line.startswith("| ") and line != header]
    assert len(body) == 4  # one row per variant
    assert "python examples/ablation/run.py --mini" in table  # the exact command is recorded
    runs = json.loads((out / "runs.json").read_text(encoding="utf-8"))["runs"]
    assert sorted(r["variant"] for r in runs) == sorted(run.VARIANTS)
    assert all(r["returncode"] == 0 and r["f1"] is not None and r["em"] is not None for r in runs)
