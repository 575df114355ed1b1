"""The bundled multilingual sample: aligned ids and answers in every language, parallel text that
keeps valid out of train, and (where XQuAD is at hand) rebuilt byte for byte by its builder."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

SAMPLE = os.path.join(REPO, "examples", "sample")
LANGS = ("en", "de", "zh", "ar", "ro")
XQUAD = os.path.join(os.path.dirname(REPO), "shared", "data", "xquad")


def questions(split, lang):
    with open(os.path.join(SAMPLE, "qa", f"{split}.{lang}.json"), encoding="utf-8") as f:
        data = json.load(f)
    return {q["id"]: (p["context"], q["answers"]) for a in data["data"]
            for p in a["paragraphs"] for q in p["qas"]}


@pytest.mark.parametrize("split,size", [("train", 47), ("valid", 27)])
def test_every_language_has_the_same_questions_with_answers_in_their_context(split, size):
    ids = None
    for lang in LANGS:
        qs = questions(split, lang)
        assert len(qs) == size and (ids is None or set(qs) == ids), lang
        ids = set(qs)
        for qid, (context, answers) in qs.items():
            assert answers and all(context[a["answer_start"]:].startswith(a["text"]) and a["text"]
                                   for a in answers), (lang, qid)


def read_lines(name):
    with open(os.path.join(SAMPLE, "parallel", name), encoding="utf-8") as f:
        return f.read().splitlines()


@pytest.mark.parametrize("xx", ["de", "zh", "ar"])
def test_parallel_text_is_line_aligned_and_keeps_valid_out_of_train(xx):
    pairs = {}
    for split in ("train", "valid"):
        en, other = read_lines(f"{split}.en-{xx}.en"), read_lines(f"{split}.en-{xx}.{xx}")
        assert len(en) == len(other) > 20 and all(en) and all(other)
        pairs[split] = set(zip(en, other))
    assert not pairs["train"] & pairs["valid"]
    valid_questions = {q for q in read_lines(f"valid.en-{xx}.en") if q.endswith("?")}
    assert len(valid_questions) >= 25


@pytest.mark.skipif(not os.path.isdir(XQUAD), reason="XQuAD is not at ../shared/data/xquad")
def test_the_builder_rebuilds_the_bundled_files():
    proc = subprocess.run([sys.executable, os.path.join(SAMPLE, "build_xquad_sample.py"),
                           "--xquad", XQUAD, "--check"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "en-zh train: 354 pairs" in proc.stdout
