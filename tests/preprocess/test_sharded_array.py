"""Preprocessing as a job array (issue 24, item 3): ``align-model`` estimates the alignment model
once; K = 3 shards, started side by side as an array starts them, each apply it
(``--align-priors OUT/work/alignment.priors --align-apply lexical``); ``merge`` joins them.  The
result is the directory one process writes over the whole data with the same model: every file
byte for byte, the manifests but for their ``inputs`` (the cache key of the stage files a split
was made from: one run's key, or the shards' keys)."""
import json
import os
import subprocess
import sys

import pytest
from test_slurm import SLURM, job_logs, standin

from conftest import REPO, preprocess
from fairseq_grafusion.errors import GraFusionError

SAMPLE = os.path.join(REPO, "examples", "sample")
QA = ["--qa", "train", os.path.join(SAMPLE, "qa", "train.en.json"), os.path.join(SAMPLE, "qa", "train.ro.json"),
      # 2 passages for 3 shards: one shard of this split is empty, and merge still joins it
      "--qa", "valid", os.path.join(SAMPLE, "qa", "valid.en.json"), os.path.join(SAMPLE, "qa", "valid.ro.json")]


def more_passages(tmp_path):
    """The sample's training split with each paragraph cut into paragraphs of 4 questions (the
    same context): 13 passages, so that each of 3 shards gets 4 or 5, not one."""
    files = []
    for lang in ("en", "ro"):
        with open(os.path.join(SAMPLE, "qa", f"train.{lang}.json"), encoding="utf-8") as f:
            data = json.load(f)
        for article in data["data"]:
            article["paragraphs"] = [{"context": p["context"], "qas": p["qas"][k:k + 4]}
                                     for p in article["paragraphs"] for k in range(0, len(p["qas"]), 4)]
        path = tmp_path / f"train.{lang}.json"
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        files.append(str(path))
    assert sum(len(a["paragraphs"]) for a in data["data"]) == 13
    return ["--qa", "train", *files, *QA[4:]]


def test_three_shards_side_by_side_merge_to_one_run(tmp_path):
    QA = more_passages(tmp_path)
    model = preprocess("align-model", "--sample", "--out", tmp_path / "model", *QA)
    priors = tmp_path / "model" / "work" / "alignment.priors"
    assert f"alignment model: {priors}" in model.stdout and priors.is_file()
    assert not (tmp_path / "model" / "qa-bin").exists()  # the model only: no parse, no binarize
    apply = ["--align-priors", priors, "--align-apply", "lexical"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    shards = [subprocess.Popen([sys.executable, "-m", "fairseq_grafusion.preprocess", "all", "--sample",
                                "--out", str(tmp_path / "array"), *map(str, QA + apply), "--num-shards", "3",
                                "--shard-id", str(i)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL) for i in range(3)]
    logs = [p.communicate(timeout=300)[0] for p in shards]
    assert [p.returncode for p in shards] == [0, 0, 0], "\n".join(log[-2000:] for log in logs)
    per_shard = [int(log.split(f"question pairs in shard {i}/3: ")[1].split()[0]) for i, log in enumerate(logs)]
    assert sum(per_shard) == 47 and all(per_shard), per_shard  # train: 4 or 5 passages in each shard
    assert all("aligned one by one by the alignment model" in log and "eflomal on" not in log for log in logs)
    assert "holds none of the split's passages" in logs[2]
    preprocess("merge", "--sample", "--out", tmp_path / "array", *QA, "--num-shards", 3)
    preprocess("all", "--sample", "--out", tmp_path / "one", *QA, *apply)
    one, array = tmp_path / "one" / "qa-bin", tmp_path / "array" / "qa-bin"
    names = sorted(os.listdir(one))
    assert len(names) > 40 and all(f"{s}.meta.json" in names for s in ("train", "valid"))
    assert set(names) <= set(os.listdir(array))
    for name in names:
        if name.endswith(".meta.json"):
            a, b = (json.loads((d / name).read_text(encoding="utf-8")) for d in (one, array))
            assert len(b.pop("inputs")["shards"]) == 3 and isinstance(a.pop("inputs"), str)
            assert a == b, name
        else:
            assert (one / name).read_bytes() == (array / name).read_bytes(), name


@pytest.mark.parametrize("extra, message", [
    (["--num-shards", "2"], "neither --align-priors nor --num-shards"),
    (["--align-priors", __file__], "neither --align-priors nor --num-shards"),
    (["--qa", "valid", "a.json", "b.json"], "give the training split"),
    (["--align-apply", "other"], "invalid choice"),
])
def test_align_model_refuses_what_would_not_be_one_model(tmp_path, extra, message, capsys):
    from fairseq_grafusion.preprocess import cli

    qa = [] if "--qa" in extra else QA[:4]
    with pytest.raises((GraFusionError, SystemExit)) as e:
        cli.main(["align-model", "--sample", "--out", str(tmp_path), *qa, *extra])
    assert message in str(e.value) + capsys.readouterr().err


def test_preprocess_arrays_then_the_grid_finds_the_pairs_done(tmp_path):
    """examples/slurm/preprocess.sbatch through the stand-in sbatch of tests/cli/test_slurm.py,
    on the sample (one pair, 2 shards): an array of alignment models,
    one of shards after it, one of merges after that; the merged pairs have every question, and
    the recipe's own preprocessing then finds them done."""
    env, state = standin(tmp_path)
    env = dict(os.environ, **env, OMP_NUM_THREADS="1", PYTHON=sys.executable, MINI="1", WORK="pp",
               LANGS="de", SHARDS="2", WORKERS="1", XLMR="")
    proc = subprocess.run(["bash", os.path.join(SLURM, "preprocess.sbatch")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    jobs = [json.loads(line) for line in (state / "jobs.jsonl").read_text().splitlines()]
    assert proc.returncode == 0, proc.stderr[-3000:] + job_logs(tmp_path, jobs)[-3000:]
    assert [(j["step"], j["array"]) for j in jobs] == [("align-model", [0]), ("shard", [0, 1]), ("merge", [0])]
    assert [j["dependency"] for j in jobs] == [None, f"afterok:{jobs[0]['id']}", f"afterok:{jobs[1]['id']}"]
    for xx in ("de",):
        pair = tmp_path / "pp" / "pairs" / f"en-{xx}"
        assert (pair / "work" / "alignment.priors").is_file()
        for split, questions in (("train", 47), ("valid", 27)):
            with open(pair / "qa-bin" / f"{split}.tgt.json", encoding="utf-8") as f:
                data = json.load(f)["data"]
            assert sum(len(p["qas"]) for a in data for p in a["paragraphs"]) == questions, (xx, split)
    for xx in ("de",):  # each shard's own log (recipe_lib.sh's step), one line per split
        for i in range(2):
            text = (tmp_path / "pp" / "pairs" / f"en-{xx}.shard{i}.log").read_text()
            assert text.count(f"question pairs in shard {i}/2") == 2 and "aligned one by one" in text
    prepare = subprocess.run(["bash", os.path.join(REPO, "examples", "mlqa", "run.sh")], cwd=tmp_path,
                             env=dict(env, STEP="prepare", LANGS="de", VARIANTS="ad"), capture_output=True,
                             text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert prepare.returncode == 0, prepare.stderr[-3000:]
    assert prepare.stderr.count("/qa-bin is there") == 1
    assert (tmp_path / "pp" / "data-bin" / "train.meta.json").is_file()
