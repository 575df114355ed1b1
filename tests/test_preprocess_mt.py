"""--mt-model with a real (tiny) fairseq translation model, trained here: translate-test end to end."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, run_fairseq
from fairseq_grafusion.data import PairReader
from fairseq_grafusion.errors import GraFusionError

SAMPLE = os.path.join(REPO, "examples", "sample")


@pytest.fixture(scope="module")
def mt_model(tmp_path_factory):
    """A 1-layer Romanian -> English transformer trained for a few updates on the sample's parallel
    text, saved as a fairseq hub directory (model.pt + dict.ro.txt + dict.en.txt)."""
    tmp = tmp_path_factory.mktemp("mt")
    for split in ("train", "valid"):
        for lang in ("en", "ro"):
            shutil.copy(os.path.join(SAMPLE, "parallel", f"{split}.{lang}"), tmp / f"{split}.{lang}")
    run_fairseq("preprocess", "--source-lang", "ro", "--target-lang", "en", "--trainpref",
                tmp / "train", "--validpref", tmp / "valid", "--destdir", tmp / "bin",
                "--workers", "1")
    run_fairseq("train", tmp / "bin", "--arch", "transformer", "--encoder-layers", "1",
                "--decoder-layers", "1", "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
                "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
                "--encoder-attention-heads", "2", "--decoder-attention-heads", "2",
                "--optimizer", "adam", "--lr", "1e-3", "--batch-size", "16", "--max-update", "3",
                "--cpu", "--save-dir", tmp / "ck", "--no-epoch-checkpoints",
                "--disable-validation")
    model = tmp / "model"
    model.mkdir()
    shutil.copy(tmp / "ck" / "checkpoint_last.pt", model / "model.pt")
    for lang in ("ro", "en"):
        shutil.copy(tmp / "bin" / f"dict.{lang}.txt", model / f"dict.{lang}.txt")
    return str(model)


def test_hub_translator_loads_and_translates(mt_model):
    from fairseq_grafusion.preprocess.translate import load_hub_translator, translate_texts

    hub = load_hub_translator(mt_model, "ro", "en", beam=1)
    texts = ["Ce a cântat Lady Gaga? Ea a cântat imnul.", "Cine a câștigat?"]
    out = translate_texts(hub, texts, "ro", "en")
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    with pytest.raises(GraFusionError, match=r"--mt-model .*: cannot load a ro->en"):
        load_hub_translator(os.path.dirname(mt_model), "ro", "en")


def test_translate_test_end_to_end(mt_model, tmp_path):
    """The English side of the validation split is missing: it is translated from Romanian with
    --mt-model, and every Romanian question still reaches the binarized split."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "fairseq_grafusion.preprocess", "all", "--qa", "valid", "-",
         os.path.join(SAMPLE, "qa", "valid.ro.json"), "--out", str(out), "--src-lang", "en",
         "--tgt-lang", "ro", "--mt-model", mt_model, "--mt-beam", "1",
         "--spm", os.path.join(SAMPLE, "spm", "sentencepiece.bpe.model"),
         "--dict", os.path.join(SAMPLE, "spm", "dict.txt")],
        capture_output=True, text=True, cwd=REPO, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    gold = json.load(open(os.path.join(SAMPLE, "qa", "valid.ro.json"), encoding="utf-8"))
    ids = {qa["id"] for a in gold["data"] for p in a["paragraphs"] for qa in p["qas"]}
    reader = PairReader(str(out / "qa-bin" / "valid"))
    assert set(reader.ids) == ids
    src = json.load(open(out / "qa-bin" / "valid.src.json", encoding="utf-8"))
    contexts = [p["context"] for a in src["data"] for p in a["paragraphs"]]
    assert contexts and all(isinstance(c, str) for c in contexts)
    original = json.load(open(os.path.join(SAMPLE, "qa", "valid.en.json"), encoding="utf-8"))
    assert contexts[0] != original["data"][0]["paragraphs"][0]["context"]  # it was translated
