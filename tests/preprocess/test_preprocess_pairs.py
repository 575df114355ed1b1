"""Pairing by question id, translation of a missing side and answer projection (stage pairs/align).

The translator is a fake with fairseq's hub ``translate(list_of_str)`` interface that looks the
sentences up in the bundled parallel text (XQuAD's professional translations), so projection
runs on real translations and can be scored against XQuAD's Romanian gold answers.
"""
import json
import os

import pytest

import fairseq_grafusion.preprocess.translate
from conftest import REPO
from fairseq_grafusion.data import PairReader
from fairseq_grafusion.preprocess import cli
from fairseq_grafusion.preprocess.pairing import make_units
from fairseq_grafusion.squad import read_squad

SAMPLE = os.path.join(REPO, "examples", "sample")


class LookupTranslator:
    """Translates sentences of the bundled sample by lookup (a stand-in for an MT model)."""

    def __init__(self, reverse=False):
        self.table, self.calls = {}, 0
        for split in ("train", "valid"):
            with open(os.path.join(SAMPLE, "parallel", f"{split}.en"), encoding="utf-8") as f:
                en = f.read().splitlines()
            with open(os.path.join(SAMPLE, "parallel", f"{split}.ro"), encoding="utf-8") as f:
                ro = f.read().splitlines()
            for a, b in zip(en, ro):
                self.table[b if reverse else a] = a if reverse else b

    def translate(self, sentences):
        self.calls += 1
        return [self.table[s] for s in sentences]


def qa(split, lang):
    return os.path.join(SAMPLE, "qa", f"{split}.{lang}.json")


def test_pairing_reports_unpaired_ids(tmp_path):
    en = read_squad(qa("valid", "en"))[:2]
    passages, questions = read_squad(qa("valid", "ro"))[:2]
    half = [q for q in questions if q["passage"] == 0]  # the Lady Gaga paragraph only
    units, report = make_units(en, (passages, half), "en", "ro")
    assert sum(u.kind == "q" for u in units) == 12
    assert sum(u.kind == "p" for u in units) == 1
    assert report == ["15 question ids have no target side and were dropped (no --mt-model): "
                      "56beca913aeaaa14008c946d, 56beca913aeaaa14008c946e, 56beca913aeaaa14008c946f, "
                      "56beca913aeaaa14008c9470, 56beca913aeaaa14008c9471, ..."]
    # passage units come before their questions; questions point to their passage unit
    assert units[0].kind == "p" and all(u.passage == "p0" for u in units[1:])


@pytest.mark.parametrize("direction", ["translate-train", "translate-test"])
def test_translated_side_with_projected_answers(tmp_path, monkeypatch, capsys, direction):
    fake = LookupTranslator(reverse=direction == "translate-test")
    made = []

    def load(direction, source_lang, target_lang, *args):  # direction: an MTDirection
        made.append((direction.model, source_lang, target_lang))
        return fake

    monkeypatch.setattr(fairseq_grafusion.preprocess.translate, "load_hub_translator", load)
    src, tgt = (qa("train", "en"), "-") if direction == "translate-train" else ("-", qa("train", "ro"))
    cli.main(["all", "--sample", "--out", str(tmp_path), "--qa", "train", src, tgt, "--mt-model", "fake-dir"])
    out = capsys.readouterr().out
    fake_dir = os.path.abspath("fake-dir")  # resolved once, against the working directory
    assert made == [(fake_dir, "en", "ro")] if direction == "translate-train" else [(fake_dir, "ro", "en")]
    assert "47 question ids have no" in out and "answers to project: 47" in out
    missing = "tgt" if direction == "translate-train" else "src"
    lang = "ro" if missing == "tgt" else "en"
    # the translations are XQuAD's, so projected answers can be scored against the gold ones
    with open(qa("train", lang), encoding="utf-8") as f:
        gold = {q["id"]: q["answers"][0]["text"] for a in json.load(f)["data"]
                for p in a["paragraphs"] for q in p["qas"]}
    units = [json.loads(line) for line in open(tmp_path / "work" / "qa" / "train" / "units.jsonl")][1:]
    aligns = [json.loads(line) for line in open(tmp_path / "work" / "qa" / "train" / "align.jsonl")][1:]
    kept = {u["uid"]: a["answers"][missing] for u, a in zip(units, aligns)
            if u["kind"] == "q" and not a.get("dropped")}
    projected = {q: ans for q, ans in kept.items() if ans is not None}
    exact = sum(projected[q]["text"] == gold[q] for q in projected) / len(gold)
    print(f"{direction}: {len(projected)}/{len(gold)} answers projected, exact match {exact:.2f}")
    assert len(projected) >= 40 and exact >= 0.5
    failed = len(gold) - len(projected)
    assert ("failed" in out) == (failed > 0)
    if direction == "translate-test":  # test questions keep their target gold answer: never dropped
        assert set(kept) == set(gold)
    else:  # translate-train: without a projected target answer there is nothing to learn
        assert set(kept) == set(projected)
    reader = PairReader(str(tmp_path / "qa-bin" / "train"))
    assert set(reader.ids) == set(kept)
