"""Each row of the MLQA / TyDiQA recipes runs the model it is named after (a stand-in for
``python`` records every command of ``examples/mlqa/run.sh``; no model is trained):

* "FILTER": ``--arch filter_*`` with the plain loss;
* "FILTER + self-teaching": the self-teaching criterion, its teacher the FILTER row's checkpoint
  of the same seed, trained first;
* "XLM-R (translate-train)": ``--arch xlmr_translate_train_*`` (each language read once);
* "FILTER (published settings)": FILTER's train.sh (lr 5e-6, 4 x 2 accumulation, no warm-up,
  ``--clip-norm 1.0``) on its own data: windows paired by position, zh out of training;
* +a / +ad / +adp: GraFusion with their graph;

and the table's notes print each row's command."""
import os
import shlex
import subprocess
import sys

from conftest import REPO

FAKE = r'''#!/bin/bash
# stands in for python: "-c CODE" runs, "-m MODULE ARGS" is recorded and leaves what the recipe reads
[[ $1 == -c ]] && exec REAL "$@"
module=$2; shift 2
printf '%s\0' "$module" "$@" >> "$RECORD/calls"; printf '\n' >> "$RECORD/calls"
value() { local key=$1; shift; while (( $# )); do [[ $1 == "$key" ]] && { echo "$2"; return; }; shift; done; }
case $module in
    fairseq_grafusion.cli.user_dir) echo /user-dir ;;
    fairseq_grafusion.preprocess)
        out=$(value --out "$@")
        if [[ $1 == all ]]; then mkdir -p "$out/qa-bin"; echo '{"size": 10}' > "$out/qa-bin/valid.meta.json"
        else mkdir -p "$out"; echo '{"size": 40}' > "$out/train.meta.json"; fi ;;
    fairseq_cli.train)
        save=$(value --save-dir "$@"); mkdir -p "$save"; touch "$save/checkpoint_last.pt" "$save/checkpoint_best.pt" ;;
    fairseq_grafusion.cli.evaluate) echo '{"avg": {"f1": 1.0}}' > "$(value --json "$@")" ;;
    fairseq_grafusion.cli.results) echo "| table |" > "$(value --output "$@")" ;;
esac
'''
VARIANTS = "xlmr-tt filter filter-st filter-published a ad adp"


def recipe_calls(tmp_path, **extra):
    fake = tmp_path / "python"
    fake.write_text(FAKE.replace("REAL", sys.executable))
    fake.chmod(0o755)
    (tmp_path / "record").mkdir()
    env = dict(os.environ, PYTHON=str(fake), RECORD=str(tmp_path / "record"), MINI="1",
               WORK=str(tmp_path / "work"), VARIANTS=VARIANTS, SEEDS="1 2", LANGS="de zh ar")
    env.update(extra)
    proc = subprocess.run(["bash", os.path.join(REPO, "examples", "mlqa", "run.sh")], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    raw = (tmp_path / "record" / "calls").read_bytes().decode().split("\0\n")
    return [call.split("\0") for call in raw if call]


def option(args, name):
    return args[args.index(name) + 1] if name in args else None


def test_each_row_runs_the_model_it_is_named_after(tmp_path):
    calls = recipe_calls(tmp_path)
    work = str(tmp_path / "work")
    trains = [(k, c[1:]) for k, c in enumerate(calls) if c[0] == "fairseq_cli.train"
              and "xmrc_span" == option(c, "--task")]
    runs = {os.path.basename(option(args, "--save-dir")): (k, args) for k, args in trains}
    assert set(runs) == {f"{v}.seed{s}" for v in VARIANTS.split() for s in (1, 2)}, sorted(runs)
    for seed in (1, 2):
        arch = {v: option(runs[f"{v}.seed{seed}"][1], "--arch") for v in VARIANTS.split()}
        assert arch == {"xlmr-tt": "xlmr_translate_train_tiny", "filter": "filter_tiny",
                        "filter-st": "filter_tiny", "filter-published": "filter_tiny",
                        "a": "grafusion_tiny", "ad": "grafusion_tiny", "adp": "grafusion_tiny"}
        criterion = {v: option(runs[f"{v}.seed{seed}"][1], "--criterion") for v in VARIANTS.split()}
        assert criterion == {v: "xmrc_span_self_teaching" if v == "filter-st" else "xmrc_span"
                             for v in VARIANTS.split()}
        graph = {v: option(runs[f"{v}.seed{seed}"][1], "--graph") for v in VARIANTS.split()}
        assert graph == {"xlmr-tt": None, "filter": None, "filter-st": None, "filter-published": None,
                         "a": "align", "ad": "align,dep", "adp": "align,dep"}
        assert not any("--no-fusion" in args for _, args in runs.values())
        # the teacher: the FILTER row's checkpoint of the same seed, trained before the student
        student_at, student = runs[f"filter-st.seed{seed}"]
        teacher = option(student, "--self-teaching-teacher")
        assert teacher == os.path.join(work, "runs", f"filter.seed{seed}", "checkpoint_best.pt")
        assert runs[f"filter.seed{seed}"][0] < student_at
        assert option(student, "--lr") == option(runs[f"filter.seed{seed}"][1], "--lr")
        # FILTER's published settings, on their own data
        published = runs[f"filter-published.seed{seed}"][1]
        assert published[0] == os.path.join(work, "data-bin-published")
        assert (option(published, "--lr"), option(published, "--batch-size"),
                option(published, "--update-freq"), option(published, "--warmup-updates"),
                option(published, "--clip-norm")) == ("5e-6", "4", "2", "0", "1.0")
        assert all(args[0] == os.path.join(work, "data-bin") for name, (_, args) in runs.items()
                   if not name.startswith("filter-published"))
        assert not any("--clip-norm" in args for name, (_, args) in runs.items()
                       if not name.startswith("filter-published"))
    preprocess = [c[1:] for c in calls if c[0] == "fairseq_grafusion.preprocess"]
    published_pairs = [a for a in preprocess if a[0] == "all" and "/pairs-published/" in option(a, "--out")]
    assert sorted(option(a, "--tgt-lang") for a in published_pairs) == ["ar", "de", "zh"]
    assert all(option(a, "--window-pairing") == "position" for a in published_pairs)
    assert not any("--window-pairing" in a for a in preprocess if a not in published_pairs)
    combines = {option(a, "--out"): a for a in preprocess if a[0] == "combine"}
    train_langs = combines[os.path.join(work, "data-bin-published")]
    assert train_langs[train_langs.index("--train-langs") + 1:] == ["de", "ar"]  # zh out
    assert "--train-langs" not in combines[os.path.join(work, "data-bin")]
    # the table's notes: one per row, its command as run (seed 1)
    results, = [c[1:] for c in calls if c[0] == "fairseq_grafusion.cli.results"]
    notes = [results[k + 1] for k, a in enumerate(results) if a == "--note"]
    assert len(notes) == len(VARIANTS.split())
    for note, variant in zip(notes, VARIANTS.split()):
        command = shlex.split(note.split(": ", 1)[1])
        assert command == ["-m", "fairseq_cli.train", *runs[f"{variant}.seed1"][1]], variant


def test_a_squad_fine_tuned_start_gives_its_qa_head_to_the_fine_tuning_rows(tmp_path):
    """XLMR=DIR XLMR_QA=1 (a HuggingFace XLMRobertaForQuestionAnswering): every fine-tuning row
    starts from it with --init-span-heads-from-pretrained; the SA-Graph pre-training (no span
    heads) and +adp (which starts from that pre-training) do not take the flag."""
    calls = recipe_calls(tmp_path, XLMR="xlmr-squad", XLMR_QA="1")
    trains = [c[1:] for c in calls if c[0] == "fairseq_cli.train"]
    by_task = {}
    for args in trains:
        by_task.setdefault(option(args, "--task"), []).append(args)
    pretrain, = by_task["sa_graph_pretrain"]
    assert option(pretrain, "--pretrained-xlmr") == "xlmr-squad"
    assert "--init-span-heads-from-pretrained" not in pretrain
    for args in by_task["xmrc_span"]:
        name = os.path.basename(option(args, "--save-dir"))
        if name.startswith("adp."):
            assert "--pretrained-xlmr" not in args and "--init-span-heads-from-pretrained" not in args
        else:
            assert option(args, "--pretrained-xlmr") == "xlmr-squad", name
            assert "--init-span-heads-from-pretrained" in args, name
    assert len(by_task["xmrc_span"]) == 2 * len(VARIANTS.split())
