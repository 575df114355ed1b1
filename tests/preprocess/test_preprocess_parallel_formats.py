"""grafusion-preprocess parallel --parallel-format: parallel text as MT pipelines leave it (moses-tokenised,
escaped, BPE'd; fairseq-preprocess --dataset-impl raw output) goes in as it is, restored to the raw text."""
import collections
import os

import numpy as np

from conftest import REPO
from fairseq_grafusion.data import PairReader
from fairseq_grafusion.preprocess.parallel import read_lines, read_parallel

SAMPLE = os.path.join(REPO, "examples", "sample")


def raw_lines(split, lang):
    return read_lines(os.path.join(SAMPLE, "parallel", f"{split}.{lang}"))


def test_formats_restore_the_raw_text(moses_bpe_mt, tmp_path):
    """Every line restored from moses + BPE (the fairseq-preprocess'd raw files the MT model was
    trained on) is the original line up to spaces around punctuation (moses does not keep them),
    most lines exactly; no escape or BPE mark is left.  'bpe' alone gives the moses-tokenised
    text back (sacremoses' tokenizer applied to the original, computed here), 'moses' on that
    text the same as 'moses-bpe' on the BPE'd one."""
    from sacremoses import MosesTokenizer

    mt = moses_bpe_mt
    for split in ("train", "valid"):
        src, tgt = (os.path.join(mt.raw, f"{split}.ro-en.{lang}") for lang in ("en", "ro"))
        with open(src, encoding="utf-8") as f:
            given = f.read()
        assert "@@ " in given and "&apos;" in given and " @-@ " in given  # what an MT pipeline leaves
        stats = collections.Counter()
        units = read_parallel(src, tgt, stats, "moses-bpe", ("en", "ro"))
        assert stats["line pairs restored from moses-bpe"] == len(units) == len(raw_lines(split, "en"))
        for side, lang in (("src", "en"), ("tgt", "ro")):
            original = raw_lines(split, lang)
            restored = [u.text(side) for u in units]
            assert [r.replace(" ", "") for r in restored] == [o.replace(" ", "") for o in original]
            exact = sum(r == o for r, o in zip(restored, original))
            print(f"{split}.{lang}: {exact}/{len(original)} lines exactly the original")
            assert exact >= 0.9 * len(original)
            assert not any(m in r for r in restored for m in ("@@", "&apos;", "&quot;", "&amp;", "@-@"))
        bpe_only = read_parallel(src, tgt, collections.Counter(), "bpe", ("en", "ro"))
        tokenised = {lang: [MosesTokenizer(lang).tokenize(line, aggressive_dash_splits=True, escape=True,
                                                          return_str=True) for line in raw_lines(split, lang)]
                     for lang in ("en", "ro")}
        assert [u.src for u in bpe_only] == tokenised["en"]
        assert [u.tgt for u in bpe_only] == tokenised["ro"]
        for lang in ("en", "ro"):
            (tmp_path / f"{split}.tok.{lang}").write_text("\n".join(tokenised[lang]) + "\n", encoding="utf-8")
        moses_only = read_parallel(tmp_path / f"{split}.tok.en", tmp_path / f"{split}.tok.ro",
                                   collections.Counter(), "moses", ("en", "ro"))
        assert moses_only == units


def test_parallel_chain_from_fairseq_raw_files(moses_bpe_mt, sample_run, tmp_path, capsys):
    """grafusion-preprocess parallel on fairseq-preprocess'd raw files (moses + BPE) with
    --parallel-format moses-bpe: every line pair becomes an example, and an example whose line was
    restored exactly holds the same tokens as the raw sample's run (conftest.sample_run)."""
    from fairseq_grafusion.preprocess import cli

    mt, out = moses_bpe_mt, tmp_path / "out"
    cli.main(["parallel", "--out", str(out), "--src-lang", "en", "--tgt-lang", "ro",
              "--parallel", "valid", os.path.join(mt.raw, "valid.ro-en.en"),
              os.path.join(mt.raw, "valid.ro-en.ro"), "--parallel-format", "moses-bpe",
              "--spm", os.path.join(SAMPLE, "spm", "sentencepiece.bpe.model"),
              "--dict", os.path.join(SAMPLE, "spm", "dict.txt")])
    assert "line pairs restored from moses-bpe: 49" in capsys.readouterr().out
    ours = PairReader(str(out / "parallel-bin" / "valid"))
    reference = PairReader(str(sample_run[0] / "parallel-bin" / "valid"))
    assert list(ours.ids) == list(reference.ids) and len(ours) == len(raw_lines("valid", "en"))
    units = read_parallel(os.path.join(mt.raw, "valid.ro-en.en"), os.path.join(mt.raw, "valid.ro-en.ro"),
                          collections.Counter(), "moses-bpe", ("en", "ro"))
    exact = {u.uid for u in units
             if u.src == raw_lines("valid", "en")[int(u.uid) - 1]
             and u.tgt == raw_lines("valid", "ro")[int(u.uid) - 1]}
    assert len(exact) >= 40
    index = {uid: k for k, uid in enumerate(reference.ids)}
    for k, uid in enumerate(ours.ids):
        if uid in exact:
            for name in ("src.tok", "tgt.tok", "src.word", "tgt.word"):
                assert np.array_equal(ours.field(name, k), reference.field(name, index[uid])), (uid, name)
