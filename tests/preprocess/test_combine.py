"""``combine``: several (English, target) directories -> one directory for translate-train-all;
the training batches really mix the languages, and fairseq-train reads the result."""
import collections
import json
import os

import numpy as np
import pytest
import torch

from conftest import USER_DIR, logged, run_fairseq, run_module, train_args
from fairseq_grafusion.criterions.xmrc_span import XMRCSpanCriterion
from fairseq_grafusion.data import PairReader
from fairseq_grafusion.data.languages import describe, gold_files, language_counts
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.models import FilterConfig, FilterModel
from fairseq_grafusion.preprocess import cli as preprocess_cli
from fairseq_grafusion.synthetic import SyntheticXMRC

# per language: passage length in words (so that lengths differ by language), text seed
LANGS = {"de": ((6, 9), 1), "zh": ((20, 26), 2), "ar": ((12, 15), 3)}
SIZES = (("train", 60), ("valid", 12))


@pytest.fixture(scope="module")
def pair_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    dirs = {}
    for lang, (words, seed) in LANGS.items():
        dirs[lang] = str(root / f"en-{lang}")
        SyntheticXMRC(passage_words=words, task="marker").write(dirs[lang], SIZES, seed=seed)
    return dirs


@pytest.fixture(scope="module")
def combined(pair_dirs, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("combined") / "data-bin")
    args = ["--out", out] + [x for lang, d in pair_dirs.items() for x in ("--pair", lang, d)]
    counts = preprocess_cli.main(["combine"] + args)
    return out, counts


def test_every_example_is_kept_with_its_language(pair_dirs, combined):
    out, counts = combined
    assert counts == {split: {lang: (n, n) for lang in LANGS} for split, n in SIZES}
    for split, n in SIZES:
        joined = PairReader(os.path.join(out, split))
        assert len(joined) == n * len(LANGS) and joined.languages == list(LANGS)
        assert language_counts(joined) == {lang: (n, n) for lang in LANGS}
        k = 0
        for lang, directory in pair_dirs.items():  # languages one after the other, order kept
            single = PairReader(os.path.join(directory, split))
            for i in range(len(single)):
                assert joined.question_key(k) == (lang, single.ids[i])
                for field in ("src.tok", "tgt.tok", "align", "span", "tgt.offsets"):
                    np.testing.assert_array_equal(joined[k][field], single[i][field])
                k += 1
        # the same question id in every language, told apart by the language
        assert len({joined.ids[i] for i in range(len(joined))}) == n
        assert len({joined.question_key(i) for i in range(len(joined))}) == n * len(LANGS)
        golds = gold_files(out, split, "tgt", joined.languages)
        for lang, path in golds.items():
            assert path.endswith(f"{split}.tgt.{lang}.json")
            with open(path) as f, open(os.path.join(pair_dirs[lang], f"{split}.tgt.json")) as g:
                assert json.load(f) == json.load(g)
    manifest = json.load(open(os.path.join(out, "combine.json")))
    assert manifest["splits"]["valid"]["zh"] == {"windows": 12, "questions": 12}
    assert "de: 12 windows / 12 questions" in describe(PairReader(os.path.join(out, "valid")))


def _training_task(data):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    import fairseq_grafusion.plugin  # noqa: F401

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [data, "--user-dir", USER_DIR, "--task", "xmrc_span",
                                                "--arch", "grafusion_tiny", "--batch-size", "8"])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    return task


def test_a_training_epoch_sees_every_language_in_mixed_batches(combined):
    out, _ = combined
    task = _training_task(out)
    dataset = task.dataset("train")
    langs = dataset.languages
    seen = []
    mixed = batches = 0
    for epoch in (1, 2):
        # fairseq-train's defaults: --required-batch-size-multiple 8 (180 = 22 x 8 + 4)
        epoch_itr = task.get_batch_iterator(dataset, max_sentences=8, max_positions=(384, 384),
                                            seed=1, epoch=epoch, required_batch_size_multiple=8)
        this_epoch = []
        for batch in epoch_itr.next_epoch_itr(shuffle=True):  # what fairseq-train iterates
            batch_langs = batch["lang"].tolist()
            this_epoch += [(langs[k], int(i)) for k, i in zip(batch_langs, batch["id"].tolist())]
            mixed += len(set(batch_langs)) > 1
            batches += 1
        # every example once per epoch: no language dropped, nothing repeated
        assert sorted(i for _, i in this_epoch) == list(range(len(dataset)))
        per_lang = {lang: sum(1 for x, _ in this_epoch if x == lang) for lang in langs}
        assert per_lang == {lang: 60 for lang in LANGS}
        seen.append(this_epoch)
    assert seen[0] != seen[1]  # reshuffled each epoch
    # the languages' lengths differ, so batches cut from the length-sorted order (fairseq's
    # default) would mostly hold one language; ours mix
    order = np.argsort(dataset.sizes, kind="mergesort")
    sorted_mixed = sum(len(set(dataset.reader.lang_ids[order[k:k + 8]].tolist())) > 1
                       for k in range(0, len(order), 8))
    print(f"batches with >1 language: {mixed}/{batches} shuffled, "
          f"{sorted_mixed}/{len(order) // 8 + 1} length-sorted")
    assert sorted_mixed <= 4 and mixed >= 0.9 * batches


def translate_train_reads(data):
    """``{(language, question id): readings}`` in an epoch of XLM-R translate-train on ``data``:
    each example's target stream is a reading of its language, its source stream (where the batch
    says ``english_once``, the rows whose source loss the criterion counts) one of English."""
    task = _training_task(data)
    dataset = task.dataset("train")
    reads = collections.Counter()
    epoch_itr = task.get_batch_iterator(dataset, max_sentences=8, max_positions=(384, 384), seed=1,
                                        epoch=1, required_batch_size_multiple=8)
    for batch in epoch_itr.next_epoch_itr(shuffle=True):
        for k, i, once in zip(batch["lang"].tolist(), batch["id"].tolist(), batch["english_once"].tolist()):
            question = dataset.reader.ids[i]
            reads[(dataset.languages[k], question)] += 1
            if once:
                reads[("en", question)] += 1
    return reads


def test_translate_train_reads_each_language_once(pair_dirs, combined, tmp_path):
    """XTREME's and FILTER's translate-train read every language once: the English originals
    once, each translation once, whether or not the split pairs English with itself."""
    out, _ = combined
    with_english = str(tmp_path / "with-en")
    SyntheticXMRC(passage_words=(8, 11), task="marker").write(str(tmp_path / "en-en"), SIZES, seed=4)
    preprocess_cli.main(["combine", "--out", with_english, "--pair", "en", str(tmp_path / "en-en")]
                        + [x for lang, d in pair_dirs.items() for x in ("--pair", lang, d)])
    for data in (out, with_english):
        reads = translate_train_reads(data)
        questions = set(PairReader(os.path.join(data, "train")).ids)
        assert len(questions) == 60
        assert set(reads) == {(lang, q) for lang in ("en", *LANGS) for q in questions}, data
        assert set(reads.values()) == {1}, data
        per_language = collections.Counter(lang for lang, _ in reads.elements())
        assert per_language == {lang: 60 for lang in ("en", *LANGS)}


def test_translate_train_loss_counts_the_english_stream_once(combined):
    """The criterion's source-stream loss of ``xlmr_translate_train_*`` covers the ``english_once``
    rows only; FILTER (the languages fused) keeps every row's English loss."""
    out, _ = combined
    task = _training_task(out)
    dataset = task.dataset("train")
    sample = dataset.collater([dataset[i] for i in range(0, len(dataset), 7)])  # de, zh and ar rows
    once = sample["english_once"].tolist()
    assert 0 < sum(once) < len(once)
    sizes = dict(encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=4,
                 encoder_layers=2, dropout=0.0, attention_dropout=0.0)
    criterion = XMRCSpanCriterion(task)
    for k, rows in ((0, [b for b, x in enumerate(once) if x]), (1, list(range(len(once))))):
        torch.manual_seed(0)
        model = FilterModel(FilterConfig(filter_m=1, filter_k=k, **sizes), task.source_dictionary).eval()
        with torch.no_grad():
            _, _, log = criterion(model, sample)
            logits = model(**sample["net_input"])
        spans = sample["target"]
        nll = sum(-torch.log_softmax(logits[f"src_{end}"][b], -1)[spans[b, col]].item()
                  for b in rows for end, col in (("start", 0), ("end", 1)))
        assert int(log["src_n"]) == len(rows)
        assert log["src_loss"].item() == pytest.approx(nll, rel=1e-5)


def test_fairseq_train_reads_the_combined_directory(combined, tmp_path):
    out, _ = combined
    proc = run_fairseq("train", *train_args(out, str(tmp_path / "ckpt"), "--graph", "align,dep",
                                            "--batch-size", "8", updates=60))
    log = proc.stdout + proc.stderr
    start, final = logged(log, "train_inner", "tgt_loss")[0], logged(log, "valid", "tgt_loss")[-1]
    assert final < 0.5 * start, (start, final)
    assert "data-bin/train: 180 examples" in log or "train: 180 examples" in log


def test_train_langs_leave_a_language_out_of_training_only(pair_dirs, tmp_path):
    out = str(tmp_path / "no-zh")
    counts = preprocess_cli.main(["combine", "--out", out, "--train-langs", "de", "ar"]
                                 + [x for lang, d in pair_dirs.items() for x in ("--pair", lang, d)])
    assert counts == {"train": {"de": (60, 60), "ar": (60, 60)},
                      "valid": {lang: (12, 12) for lang in LANGS}}
    assert PairReader(os.path.join(out, "train")).languages == ["de", "ar"]
    assert PairReader(os.path.join(out, "valid")).languages == list(LANGS)
    with pytest.raises(GraFusionError, match="--train-langs hi: no --pair of that language"):
        preprocess_cli.main(["combine", "--out", out, "--train-langs", "hi", "--pair", "de", pair_dirs["de"]])


def test_bad_inputs_fail_with_one_line(pair_dirs, tmp_path):
    other = str(tmp_path / "other")
    SyntheticXMRC(vocab=80, task="marker").write(other, (("train", 4),), seed=5)
    cases = [
        (["--pair", "de", pair_dirs["de"], "--pair", "zh", other], "dict.txt (--pair zh) differs"),
        (["--pair", "de", pair_dirs["de"], "--pair", "de", pair_dirs["zh"]], "de more than once"),
        (["--pair", "de", str(tmp_path)], "not a binarized directory"),
        (["--pair", "de", pair_dirs["de"], "--splits", "test"], "no input has a split 'test'"),
    ]
    for args, message in cases:
        with pytest.raises(GraFusionError) as e:
            preprocess_cli.main(["combine", "--out", str(tmp_path / "out")] + args)
        assert message in str(e.value) and "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "out" / "train.meta.json")


def test_a_disk_too_small_is_one_line_before_anything_is_written(pair_dirs, tmp_path, monkeypatch):
    """The joined binary files are counted first (11.5 GB at SQuAD scale x 7): a disk that cannot
    hold them is one line, not a full disk halfway through; exactly enough space is enough."""
    import collections
    import shutil

    need = sum(os.path.getsize(os.path.join(d, f)) for d in pair_dirs.values() for f in os.listdir(d)
               if f.endswith(".bin"))
    usage = collections.namedtuple("usage", "total used free")
    args = [x for lang, d in pair_dirs.items() for x in ("--pair", lang, d)]
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(need * 10, need * 9, need - 1))
    with pytest.raises(GraFusionError) as e:
        preprocess_cli.main(["combine", "--out", str(tmp_path / "small")] + args)
    assert f"--out {tmp_path / 'small'} needs" in str(e.value) and "GiB free" in str(e.value)
    assert "\n" not in str(e.value)
    assert not [f for f in os.listdir(tmp_path / "small") if f.endswith((".bin", ".idx", ".json"))]
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(need * 10, need * 9, need))
    counts = preprocess_cli.main(["combine", "--out", str(tmp_path / "enough")] + args)
    assert counts == {split: {lang: (n, n) for lang in LANGS} for split, n in SIZES}


@pytest.fixture(scope="module")
def key_pairs(tmp_path_factory):
    """The harder synthetic task per language (F1 neither 0 nor 100 after a short training) and
    its combined directory."""
    root = tmp_path_factory.mktemp("key-pairs")
    dirs = {}
    for lang, (words, seed) in LANGS.items():
        dirs[lang] = str(root / f"en-{lang}")
        SyntheticXMRC(passage_words=words, task="key").write(dirs[lang], (("train", 200), ("valid", 16)),
                                                             seed=seed)
    out = str(root / "data-bin")
    preprocess_cli.main(["combine", "--out", out] + [x for lang, d in dirs.items() for x in ("--pair", lang, d)])
    return dirs, out


def test_validation_logs_each_language_as_predict_then_evaluate_scores_it(key_pairs, tmp_path):
    """--eval-span-f1 on a combined directory: f1_<lang> / em_<lang> of the last validation equal
    grafusion-predict + grafusion-evaluate of the saved checkpoint on that language's own pair
    directory (an independent path: one language, its own gold file), f1_avg their mean."""


    pair_dirs, out = key_pairs
    save = str(tmp_path / "ckpt")
    # batches of 5: validation batches straddle languages and hold unequal numbers of each, so a
    # mean of per-batch figures would not be the mean of the languages' figures
    proc = run_fairseq("train", *train_args(out, save, "--eval-span-f1", "--batch-size", "5",
                                            "--best-checkpoint-metric", "f1_avg",
                                            "--maximize-best-checkpoint-metric", updates=30))
    log = proc.stdout + proc.stderr
    logged_scores = {lang: (logged(log, "valid", f"f1_{lang}")[-1], logged(log, "valid", f"em_{lang}")[-1])
                     for lang in LANGS}
    f1_avg, em_avg = logged(log, "valid", "f1_avg")[-1], logged(log, "valid", "em_avg")[-1]
    evals = []
    for lang, directory in pair_dirs.items():
        pred = tmp_path / f"pred.{lang}.json"
        p = run_module("fairseq_grafusion.cli.predict", "--path",
                            os.path.join(save, "checkpoint_last.pt"), "--data", directory, "--split",
                            "valid", "--output", str(pred), "--cpu")
        assert p.returncode == 0, p.stderr[-2000:]
        evals += ["--eval", lang, os.path.join(directory, "valid.tgt.json"), str(pred)]
    table = tmp_path / "table.json"
    p = run_module("fairseq_grafusion.cli.evaluate", *evals, "--json",
                        str(table))
    assert p.returncode == 0, p.stderr[-2000:]
    result = json.loads(table.read_text())
    print("valid per language:", logged_scores, "avg", f1_avg, em_avg)
    assert len({f1 for f1, _ in logged_scores.values()}) > 1 and 0 < f1_avg < 100  # not trivial
    for lang, (f1, em) in logged_scores.items():
        assert result["languages"][lang]["f1"] == pytest.approx(f1, abs=0.01), lang
        assert result["languages"][lang]["exact_match"] == pytest.approx(em, abs=0.01), lang
    assert f1_avg == pytest.approx(np.mean([f1 for f1, _ in logged_scores.values()]), abs=0.01)
    assert em_avg == pytest.approx(np.mean([em for _, em in logged_scores.values()]), abs=0.01)
    assert result["avg"]["f1"] == pytest.approx(f1_avg, abs=0.01)
    # grafusion-predict over the combined split: one file per language, original ids, the same
    # answers as on each pair's own directory
    p = run_module("fairseq_grafusion.cli.predict", "--path",
                        os.path.join(save, "checkpoint_last.pt"), "--data", out, "--split", "valid",
                        "--output", str(tmp_path / "all.{lang}.json"), "--cpu")
    assert p.returncode == 0, p.stderr[-2000:]
    for lang in LANGS:
        assert (json.loads((tmp_path / f"all.{lang}.json").read_text())
                == json.loads((tmp_path / f"pred.{lang}.json").read_text())), lang
    p = run_module("fairseq_grafusion.cli.predict", "--path",
                        os.path.join(save, "checkpoint_last.pt"), "--data", out, "--split", "valid",
                        "--output", str(tmp_path / "one.json"), "--cpu")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "put {lang} in the file name" in p.stderr.strip().splitlines()[-1]
