"""The real Stanza path (``--stanza-dir``): tiny Stanza models trained here from the UD fixture with
multi-word tokens (Spanish AnCora, ``al`` = ``a el``, ``del`` = ``de el``): tokenizer, MWT
expander, POS tagger and parser without pretrained word vectors (``--no_pretrain``), dictionary
lemmatizer; laid out as Stanza's resources directory and loaded by ``stanza.Pipeline`` with
``download_method=None`` exactly as the pipeline does."""
import contextlib
import io
import json
import logging
import os
import re
import shutil

import numpy as np
import pytest

from conftest import REPO
from fairseq_grafusion.preprocess import cli, parse
from fairseq_grafusion.preprocess.wordseg import Segmenter, words_of

FIXTURE = os.path.join(REPO, "tests", "fixtures", "preprocess", "es_ancora_mwt.conllu")
COPIES = 40  # the fixture's sentence, repeated: enough for the trainers to run


def _train_data(tmp):
    with open(FIXTURE, encoding="utf-8") as f:
        raw = f.read()
    block = raw[raw.index("# sent_id"):].strip()
    text = re.search(r"# text = (.*)", block).group(1)
    blocks = [block.replace("# sent_id = test-s5", f"# sent_id = s{k}") for k in range(COPIES)]
    conllu, txt = os.path.join(tmp, "train.conllu"), os.path.join(tmp, "train.txt")
    with open(conllu, "w", encoding="utf-8") as f:
        f.write("\n\n".join(blocks) + "\n\n")
    with open(txt, "w", encoding="utf-8") as f:
        f.write("\n\n".join([text] * COPIES) + "\n")
    return conllu, txt, text


@pytest.fixture(scope="session")
def stanza_dir(tmp_path_factory):
    """``(resources dir, training sentence)``: es tokenize / mwt / pos / lemma / depparse, trained."""
    import torch
    from stanza.models import lemmatizer, mwt_expander, parser, tagger, tokenizer
    from stanza.utils.datasets import prepare_tokenizer_data

    tmp = str(tmp_path_factory.mktemp("stanza_train"))
    conllu, txt, text = _train_data(tmp)
    models = os.path.join(tmp, "models")
    common = ["--shorthand", "es_tiny", "--save_dir", models]
    small = ["--no_pretrain", "--word_emb_dim", "16", "--char_emb_dim", "16", "--char_hidden_dim", "16",
             "--hidden_dim", "32", "--deep_biaff_hidden_dim", "16", "--tag_emb_dim", "8",
             "--eval_interval", "30", "--max_steps", "30"]  # one evaluation: tagger.train needs it
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stdout(io.StringIO()), _quiet():
            labels, mwt_json = os.path.join(tmp, "train.toklabels"), os.path.join(tmp, "train.mwt.json")
            prepare_tokenizer_data.main([txt, conllu, "-o", labels, "-m", mwt_json])
            tokenizer.main(["--mode", "train", "--txt_file", txt, "--label_file", labels,
                            "--mwt_json_file", mwt_json, "--lang", "es", "--save_name", "tokenize.pt",
                            "--steps", "150", "--batch_size", "8", "--max_seqlen", "300",
                            "--emb_dim", "16", "--hidden_dim", "32",
                            "--dev_txt_file", txt, "--dev_label_file", labels,
                            "--dev_conll_gold", conllu, "--eval_steps", "100000", *common])
            mwt_expander.main(["--train_file", conllu, "--eval_file", conllu, "--gold_file", conllu,
                               "--output_file", os.path.join(tmp, "mwt.conllu"), "--lang", "es",
                               "--save_name", "mwt.pt", "--dict_only", *common])
            tagger.main(["--train_file", conllu, "--eval_file", conllu, "--lang", "es",
                         "--output_file", os.path.join(tmp, "pos.conllu"), "--save_name", "pos.pt",
                         "--batch_size", "100", "--composite_deep_biaff_hidden_dim", "8",
                         "--transformed_dim", "16", "--num_layers", "1", *small, *common])
            lemmatizer.main(["--train_file", conllu, "--eval_file", conllu, "--dict_only",
                             "--output_file", os.path.join(tmp, "lemma.conllu"), "--save_name",
                             "lemma.pt", *common])
            parser.main(["--train_file", conllu, "--eval_file", conllu, "--lang", "es",
                         "--output_file", os.path.join(tmp, "dep.conllu"), "--save_name", "depparse.pt",
                         "--batch_size", "500", "--transformed_dim", "16", "--num_layers", "1",
                         *small, *common])
    finally:
        torch.set_num_threads(threads)
    out = str(tmp_path_factory.mktemp("stanza_resources"))
    processors = ("tokenize", "mwt", "pos", "lemma", "depparse")
    resources = {"es": {"lang_name": "Spanish", "packages": {"default": {p: "tiny" for p in processors}},
                        "default_processors": {p: "tiny" for p in processors},
                        **{p: {"tiny": {}} for p in processors}}}
    for p in processors:
        os.makedirs(os.path.join(out, "es", p))
        shutil.copy(os.path.join(models, f"{p}.pt"), os.path.join(out, "es", p, "tiny.pt"))
    with open(os.path.join(out, "resources.json"), "w", encoding="utf-8") as f:
        json.dump(resources, f)
    return out, text


@contextlib.contextmanager
def _quiet():
    logger = logging.getLogger("stanza")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def test_stanza_tokenizer_keeps_multi_word_tokens(stanza_dir):
    directory, text = stanza_dir
    seg = Segmenter("es", directory)
    assert seg.backend == "stanza"
    offsets, starts = seg.segment(text + " " + text)
    words = words_of(text + " " + text, offsets)
    spans = list(zip(offsets[::2], offsets[1::2]))
    assert all(a < b for a, b in spans) and all(b <= c for (_, b), (c, _) in zip(spans, spans[1:]))
    assert starts[0] == 0 and len(starts) >= 1
    # "al" and "del" stay one word each: the multi-word token is our unit (its syntactic words
    # share a node in the parse)
    assert "al" in words and "del" in words and "el" in words


def test_stanza_parser_on_pretokenised_sentences(stanza_dir):
    directory, text = stanza_dir
    assert parse.has_parser("es", directory)
    sentences = [text[:-1].split() + ["."], [], ["El", "presidente", "del", "gobierno", "."]]
    arcs = parse.stanza_arcs("es", directory, sentences, batch_words=8)
    assert len(arcs) == 3 and arcs[1] == []
    for words, flat in zip(sentences, arcs):
        pairs = np.asarray(flat, dtype=np.int64).reshape(-1, 2)
        assert len(words) == 0 or len(pairs) >= 1
        assert ((pairs >= 0) & (pairs < max(len(words), 1))).all() and (pairs[:, 0] != pairs[:, 1]).all()


def test_grafusion_preprocess_with_stanza_dir(stanza_dir, tmp_path):
    """``grafusion-preprocess all --stanza-dir``: Spanish words from Stanza's tokenizer, arcs from
    its parser, English without models (rules, no parser); the summary says which ran where."""
    from fairseq_grafusion.data import PairReader

    directory, text = stanza_dir
    sample = os.path.join(REPO, "examples", "sample")
    en_context = ("The Chinese ministry defended the result of the elections held in Peru and offered its "
                  "support to the new government of president Alberto Fujimori.")
    answer_es, answer_en = "Alberto Fujimori", "Alberto Fujimori"
    files = {}
    for lang, context, question, answer in (("en", en_context, "Who is the president?", answer_en),
                                            ("es", text + " " + text, "¿Quién es el presidente?", answer_es)):
        qa = {"id": "q1", "question": question,
              "answers": [{"text": answer, "answer_start": context.index(answer)}]}
        data = {"version": "1.1", "data": [{"title": "", "paragraphs": [{"context": context, "qas": [qa]}]}]}
        files[lang] = tmp_path / f"valid.{lang}.json"
        files[lang].write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), _quiet():
        cli.main(["all", "--out", str(tmp_path / "out"), "--src-lang", "en", "--tgt-lang", "es",
                  "--qa", "valid", str(files["en"]), str(files["es"]), "--stanza-dir", directory,
                  "--spm", os.path.join(sample, "spm", "sentencepiece.bpe.model"),
                  "--dict", os.path.join(sample, "spm", "dict.txt")])
    out = printed.getvalue()
    assert "tgt (es) tokenizer: stanza" in out and "src (en) tokenizer: rules" in out
    assert f"tgt (es) parser: Stanza ({directory}, cpu" in out
    arcs = int(re.search(r"tgt dependency arcs: (\d+)", out).group(1))
    assert arcs >= 20 and "src dependency arcs: 0" in out
    reader = PairReader(str(tmp_path / "out" / "qa-bin" / "valid"))
    assert reader.ids == ["q1"]
    ex = reader[0]
    assert len(ex["tgt.dep"]) >= 2 * 10  # the window holds the parser's arcs, mapped to nodes
