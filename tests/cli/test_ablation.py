"""The ablation script (examples/ablation/run.py) runs end to end for every variant: a 1-seed
miniature (tiny data, a few updates).  Only that it runs and writes the table's columns is
checked; the numbers belong to the benchmark (examples/ablation/RESULTS.md), not to assertions."""
import importlib.util
import json
import os
import shutil

import pytest

from conftest import REPO


def load_script():
    path = os.path.join(REPO, "examples", "ablation", "run.py")
    spec = importlib.util.spec_from_file_location("ablation_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mini_ablation_runs_every_variant_and_writes_the_table(tmp_path):
    run = load_script()
    out, work = tmp_path / "out", tmp_path / "w"
    rows = run.main(["--mini", "--noise", "0.3", "--out", str(out), "--work", str(work)])
    assert [r["variant"] for r in rows] == list(run.VARIANTS)
    assert {"no-fusion", "none", "align", "align,dep", "xlmr-tt", "filter", "filter-st",
            "none-shared", "align-shared", "align,dep-shared"} == set(run.VARIANTS)
    assert all(r["noise"] == 0.3 and r["seeds"] == 1 for r in rows)
    table = (out / "RESULTS.md").read_text(encoding="utf-8")
    header = next(line for line in table.splitlines() if line.startswith("| variant"))
    assert [c.strip() for c in header.strip("|").split("|")] == list(run.COLUMNS)
    assert {"variant", "noise", "F1", "EM", "seeds"} <= set(run.COLUMNS)
    means, wins = table.split("## Paired wins per seed")
    body = [line for line in means.splitlines() if line.startswith("| ") and line != header]
    assert len(body) == len(run.VARIANTS)  # one row per variant
    # paired wins: a row per variant that reads the alignment, a column per variant
    wins_rows = [line for line in wins.splitlines() if line.startswith("| ") and not line.startswith("| |")]
    assert [r.split("|")[1].strip() for r in wins_rows] == [v for v in run.VARIANTS if v in run.READS_ALIGNMENT]
    assert all(r.count("/1") == len(run.VARIANTS) - 1 for r in wins_rows)
    assert "python examples/ablation/run.py --mini" in table  # the exact command is recorded
    runs = json.loads((out / "runs.json").read_text(encoding="utf-8"))["runs"]
    assert sorted(r["variant"] for r in runs) == sorted(run.VARIANTS)
    assert all(r["returncode"] == 0 and r["f1"] is not None and r["em"] is not None
               and r["cpu_seconds"] > 0 for r in runs)
    # the self-teaching student learned from the FILTER run of its seed, which saved its model
    teacher = next(r["checkpoint"] for r in runs if r["variant"] == "filter")
    assert os.path.isfile(teacher)
    student_log = (work / "ck-filter-st-0.3-1.log").read_text(encoding="utf-8")
    assert f"--self-teaching-teacher {teacher}" in student_log.splitlines()[0]
    assert "tgt_kl" in student_log
    shared_log = (work / "ck-align+dep-shared-0.3-1.log").read_text(encoding="utf-8")
    assert "--share-sa-graph --share-lang-layers both" in shared_log.splitlines()[0]

    # the grid as a job array: every cell is recorded, so a task, a rerun or the table job
    # trains nothing again (a training now fails the test)
    def no_training(*args, **kwargs):
        raise AssertionError("a recorded cell was trained again")

    run.train_one = no_training
    mini = ["--mini", "--noise", "0.3", "--work", str(work)]
    assert run.main(mini + ["--count"]) == len(run.plan(run.parse_args(mini))) == len(run.VARIANTS)
    cell = run.main(mini + ["--task-id", "3"])
    assert (cell["variant"], cell["seed"]) == run.plan(run.parse_args(mini))[3][::2]
    again = run.main(mini + ["--out", str(tmp_path / "again")])
    assert [r["F1"] for r in again] == [r["F1"] for r in rows]
    table_only = run.main(mini + ["--table", "--out", str(tmp_path / "table")])
    assert [r["F1"] for r in table_only] == [r["F1"] for r in rows]
    with pytest.raises(SystemExit, match="another budget"):  # another --lr: another grid
        run.main(mini + ["--task-id", "3", "--lr", "0.003"])
    with pytest.raises(SystemExit, match="the grid has 10 cells"):
        run.main(mini + ["--task-id", "10"])
    with pytest.raises(SystemExit, match="not finished"):
        run.main(["--mini", "--noise", "0", "--work", str(work), "--table", "--out", str(tmp_path / "t2")])

    # records carried to another machine without the checkpoints: a self-teaching cell still to
    # run trains its teacher again there first (and records it anew); nothing else is trained
    moved = tmp_path / "moved"
    (moved / "cells").mkdir(parents=True)
    shutil.rmtree(os.path.dirname(teacher))  # the records' checkpoint is not on "this" machine
    for record in (work / "cells").glob("*.json"):
        if not record.name.startswith("filter-st-"):
            shutil.copy(record, moved / "cells" / record.name)
    trained = []

    def fake_training(args, data, variant, noise, seed, work_dir, teacher_checkpoint=None):
        trained.append((variant, teacher_checkpoint))
        checkpoint = os.path.join(work_dir, f"ck-{variant}", "checkpoint_last.pt") if variant == "filter" else None
        if checkpoint:
            os.makedirs(os.path.dirname(checkpoint))
            open(checkpoint, "wb").close()
        return dict(variant=variant, noise=noise, seed=seed, f1=50.0, em=25.0, cpu_seconds=1.0, checkpoint=checkpoint)

    run.train_one = fake_training
    moved_args = ["--mini", "--noise", "0.3", "--work", str(moved)]
    student = run.plan(run.parse_args(moved_args)).index(("filter-st", 0.3, 1))
    run.main(moved_args + ["--task-id", str(student)])
    retrained = str(moved / "ck-filter" / "checkpoint_last.pt")
    assert trained == [("filter", None), ("filter-st", retrained)]
    assert json.loads((moved / "cells" / "filter-0.3-1.json").read_text())["run"]["checkpoint"] == retrained
    run.main(moved_args + ["--out", str(tmp_path / "moved-out")])  # every cell recorded now
    assert len(trained) == 2


def test_plan_selects_variants_and_seeds_and_runs_teachers_first():
    run = load_script()
    args = run.parse_args(["--variants", "align", "filter-st", "--seeds", "2", "--first-seed", "4",
                           "--noise", "0,0.3"])
    jobs = run.plan(args)
    assert jobs[:2] == [("filter", 0.0, 4), ("filter", 0.0, 5)]  # added: filter-st's teacher
    assert sorted(jobs[2:]) == sorted([("filter-st", 0.0, 4), ("filter-st", 0.0, 5), ("align", 0.0, 4),
                                       ("align", 0.0, 5), ("align", 0.3, 4), ("align", 0.3, 5)])
    args = run.parse_args(["--variants", "none", "--seeds", "1", "--noise", "0,0.3",
                           "--repeat-invariant"])
    assert run.plan(args) == [("none", 0.0, 1), ("none", 0.3, 1)]


def test_table_so_far_pairs_seeds_on_one_kind_of_cpu_only(tmp_path, capsys):
    """``--table --so-far`` writes the table from the cells recorded so far and names how many are
    missing; a paired win is counted only where both runs come from one kind of CPU (the name of
    the machine but its flags' digest); an alignment variant recorded at one noise level is not
    shown at another."""
    run = load_script()
    avx2, avx512 = ("2 CPU cores (AMD EPYC, flags {}, torch kernels {}), no GPU; Python 3.11.7, "
                    "torch 2.13.0+cpu".format(*k) for k in (("716e95dd", "AVX2"), ("30614b81", "AVX512")))
    assert run.numerics(avx2) == run.numerics(avx2.replace("716e95dd", "1b7e2ea9")) != run.numerics(avx512)
    assert run.numerics(avx2) == avx2.replace("flags 716e95dd, ", "")
    given = ["--variants", "none", "align", "--seeds", "3", "--noise", "0,0.3", "--work", str(tmp_path)]
    args = run.parse_args(given)
    (tmp_path / "cells").mkdir()
    recorded = {  # (variant, noise, seed) -> (F1, machine)
        ("none", 0.0, 1): (50.0, "A"), ("none", 0.0, 2): (70.0, "A"), ("none", 0.0, 3): (60.0, "B"),
        ("align", 0.0, 1): (80.0, "A"), ("align", 0.0, 2): (60.0, "A"), ("align", 0.0, 3): (90.0, "A"),
    }
    for (variant, noise, seed), (f1, machine) in recorded.items():
        run.write_json(str(tmp_path / "cells" / (run.cell_name(variant, noise, seed) + ".json")),
                       {"budget": run.budget(args), "run": dict(
                           variant=variant, noise=noise, seed=seed, f1=f1, em=f1 / 2, cpu_seconds=60.0,
                           checkpoint=None, machine=machine)})
    with pytest.raises(SystemExit, match="3 of 9 cells are not finished.*--so-far"):
        run.main(given + ["--table", "--out", str(tmp_path / "t")])
    with pytest.raises(SystemExit):
        run.parse_args(given + ["--so-far"])
    assert "--so-far goes with --table" in capsys.readouterr().err
    rows = run.main(given + ["--table", "--so-far", "--out", str(tmp_path / "t")])
    assert [(r["variant"], r["noise"], r["seeds"]) for r in rows] == [
        ("none", 0.0, 3), ("align", 0.0, 3), ("none", 0.3, 3)]  # align has no run at 30% yet
    assert rows[1]["F1"] == "76.7 ± 15.3"
    text = (tmp_path / "t" / "RESULTS.md").read_text(encoding="utf-8")
    assert "(SO FAR: 6 of 9 cells recorded" in text
    assert "Machine: A: 5 runs; B: 1 runs." in text
    # seed 1: 80 > 50 (A, A); seed 2: 60 < 70 (A, A); seed 3: A against B, left out
    assert "| align | 1/2 (+1 on two kinds of CPU) |  |" in text  # columns: none, align
    # machines that differ in their flags only are one kind of CPU: their pairs count
    def restamp(variant, seed, **fields):
        path = tmp_path / "cells" / (run.cell_name(variant, 0.0, seed) + ".json")
        record = json.loads(path.read_text(encoding="utf-8"))
        record["run"].update(fields)
        run.write_json(path, record)

    for seed, (f1, flags) in {1: (55.0, "716e95dd"), 2: (45.0, "1b7e2ea9"), 3: (85.0, "716e95dd")}.items():
        restamp("none", seed, f1=f1, machine=avx2.replace("716e95dd", flags))
        restamp("align", seed, machine=avx512 if seed == 3 else avx2)
    run.main(given + ["--table", "--so-far", "--out", str(tmp_path / "t")])
    text = (tmp_path / "t" / "RESULTS.md").read_text(encoding="utf-8")
    # seed 1: 80 > 55, seed 2: 60 > 45 (AVX2 against AVX2, other flags); seed 3: AVX512 against AVX2
    assert "| align | 2/2 (+1 on two kinds of CPU) |  |" in text
    assert "Noise 30%: no run of a variant that reads the alignment yet." in text
    with pytest.raises(SystemExit, match="no cell of this grid"):
        run.main(["--variants", "none", "--seeds", "1", "--first-seed", "7", "--noise", "0",
                  "--work", str(tmp_path), "--table", "--so-far", "--out", str(tmp_path / "t3")])


def test_the_local_array_trains_seed_by_seed_students_before_their_teachers():
    run = load_script()
    cells = run.plan(run.parse_args(["--variants", "none", "filter-st", "align", "--seeds", "2",
                                     "--noise", "0,0.3"]))
    assert run.seed_by_seed(cells) == [
        ("filter-st", 0.0, 1), ("none", 0.0, 1), ("align", 0.0, 1), ("align", 0.3, 1), ("filter", 0.0, 1),
        ("filter-st", 0.0, 2), ("none", 0.0, 2), ("align", 0.0, 2), ("align", 0.3, 2), ("filter", 0.0, 2)]
