"""README command 1 (``bash examples/run_sample.sh``, exactly as written: a copy of the
repository, its root, the default ``OUT``; the session fixture ``readme_command_1``) and the
miniatures of the MLQA and TyDiQA-GoldP recipes (``examples/{mlqa,tydiqa}/run.sh`` with ``MINI=1``:
tiny architecture, CPU, 2 seeds, 3 and 2 languages, run from a directory that is not the
repository) run end to end and write their tables.  The recipes take the three pairs command 1
preprocessed (copied: they skip preprocessing), run side by side, and train a few updates each."""
import json
import os
import re
import shutil
import sys

import pytest

from conftest import REPO, finish_logged, start_logged


def _finish(started):
    code, text = finish_logged(started)
    assert code == 0, f"exit code {code}:\n{text[-4000:]}"
    return text


def _table(text):
    """The rows of a markdown table: ``{row name: [cells]}`` and the header."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if set(cells[0]) - set("-"):
            rows[cells[0]] = cells[1:]
    return header, rows


def test_readme_command_1_as_written(readme_command_1):
    copy, code, text, seconds = readme_command_1
    assert code == 0, f"exit code {code}:\n{text[-4000:]}"
    sample = copy / "sample-run"  # the default OUT, relative to the repository's root
    # every language validated, every pair aligned by its training run's model, the table
    assert re.search(r"epoch 003\s+f1_de [0-9.]+\s+em_de [0-9.]+\s+f1_zh [0-9.]+\s+em_zh [0-9.]+\s+"
                     r"f1_ar [0-9.]+\s+em_ar [0-9.]+\s+f1_avg [0-9.]+", text), text[-3000:]
    for xx in ("de", "zh", "ar"):
        assert f"{xx}: 27 questions answered" in text
        assert re.search(rf"qa/valid: en 0\.\d+  {xx} 0\.\d+  \(eflomal started from the alignment model", text)
    header, rows = _table((sample / "table.md").read_text(encoding="utf-8"))
    assert header == ["Model", "de", "zh", "ar", "Avg.", "runs"] and rows["+ad"][-1] == "1"
    assert "| +ad |" in text and "Scored with MLQA's official script (mlqa): de, zh, ar." in text
    scores = json.loads((sample / "scores.json").read_text())
    f1 = [scores["languages"][xx]["f1"] for xx in ("de", "zh", "ar")]
    assert scores["avg"]["f1"] == pytest.approx(sum(f1) / 3, abs=1e-6)
    assert rows["+ad"][3].startswith(f"{sum(f1) / 3:.1f} ± 0.0")
    assert "Traceback" not in text
    print(f"README command 1 took {seconds:.0f} s")


def test_the_recipe_miniatures(xquad_pairs, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHON=sys.executable)
    recipes = {"mlqa": ("de zh ar", "filter"), "tydiqa": ("de ar", "ad")}
    jobs = {}
    for recipe, (langs, variants) in recipes.items():
        work = tmp_path / recipe
        for xx in langs.split():
            shutil.copytree(xquad_pairs[xx], work / "pairs" / f"en-{xx}")
        jobs[recipe] = start_logged(["bash", os.path.join(REPO, "examples", recipe, "run.sh")],
                                    tmp_path / f"{recipe}.log",
                                    dict(env, MINI="1", WORK=recipe, VARIANTS=variants, SEEDS="1 2",
                                         UPDATES="2"), cwd=tmp_path)  # WORK: relative to the caller
    for job in jobs.values():
        _finish(job)
    # one row per variant over 2 seeds, every language and the Avg.
    for recipe, (langs, variants) in recipes.items():
        work = tmp_path / recipe
        header, rows = _table((work / "table.md").read_text(encoding="utf-8"))
        assert header == ["Model"] + langs.split() + ["Avg.", "runs"], header
        table = json.loads((work / "table.json").read_text())
        for seed in (1, 2):
            assert (work / "scores" / f"{variants}.seed{seed}.json").is_file()
            assert (work / "runs" / f"{variants}.seed{seed}" / "checkpoint_last.pt").is_file()
        (_, cells), = rows.items()
        assert cells[-1] == "2", (recipe, cells)
        print(recipe, table)
    # TyDiQA-GoldP: ar plays a language without a parser, so the +ad row reads n/a there and its
    # Avg. is over de alone
    _, rows = _table((tmp_path / "tydiqa" / "table.md").read_text(encoding="utf-8"))
    de, ar, avg = rows["+ad"][:3]
    assert ar == "n/a" and de != "n/a" and avg.split(" / ")[0] == de.split(" / ")[0]
    _, rows = _table((tmp_path / "mlqa" / "table.md").read_text(encoding="utf-8"))
    assert "n/a" not in " ".join(rows["FILTER"])


def test_docs_pair_dev_and_test_files_with_their_english_translation():
    """README, docs/ and recipes: a target dev / test file is paired with its machine translation into
    English (XTREME's translate-test, or '-' with --mt-model), never with MLQA's own English file
    of another language's context."""
    import glob

    docs = [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md"))) + [
        os.path.join(REPO, "examples", name, f) for name in ("mlqa", "tydiqa")
        for f in ("README.md", "run.sh")] + [os.path.join(REPO, "examples", "recipe_lib.sh")]
    text = "".join(open(path, encoding="utf-8").read() for path in docs)
    pairs = re.findall(r"--qa (valid|test) (\S+) \\?\s*(\S+)", text)
    assert len(pairs) >= 4, pairs
    for split, english, target in pairs:
        english_of = re.search(r"context-en-question-en", english)
        target_lang = re.search(r"context-(\w+)-question", target)
        assert not (english_of and target_lang and target_lang.group(1) != "en"), (split, english, target)
        # the English side of an MLQA target file is its translate-test file (or '-')
        if target_lang and target_lang.group(1) != "en":
            assert english == "-" or "translate-test" in english or english.startswith("$src_test"), \
                (split, english, target)
    assert "translate-test/test-context-$xx-question-$xx.json" in text
