"""Thai and Lao: never an empty word (random strings, a Thai QA file end to end), and the
optional PyThaiNLP segmenter."""
import json

import numpy as np
import pytest

from fairseq_grafusion.preprocess import cli
from fairseq_grafusion.preprocess.vocab import train_vocab
from fairseq_grafusion.preprocess.wordseg import Segmenter, split_sentences, tokenize, words_of
from fairseq_grafusion.preprocess.workdir import read_jsonl

# Thai: consonants, vowels and tone marks, leading vowels, signs, digits; Lao likewise
THAI = ([chr(c) for c in range(0x0E01, 0x0E2F)] + [chr(c) for c in range(0x0E30, 0x0E3B)]
        + list("เแโใไ") * 6 + [chr(c) for c in range(0x0E47, 0x0E4F)] + list("ๆฯ") * 3
        + [chr(c) for c in range(0x0E50, 0x0E5A)])
LAO = ([chr(c) for c in range(0x0E81, 0x0EAF) if chr(c).isprintable()] + list("ະາຳິີຶືຸູ")
       + list("ເແໂໃໄ") * 6 + list("່້໊໋ໆ"))
EXTRA = [" "] * 12 + list(".,?()") + ["ABC", "2024"]

SENTENCES = [  # real Thai sentences (leading vowels after spaces, digits, abbreviations)
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย มีประชากรประมาณ 10 ล้านคน",
    "แม่น้ำเจ้าพระยาไหลผ่านใจกลางเมือง และเป็นเส้นทางคมนาคมที่สำคัญ",
    "ในปี พ.ศ. 2325 พระบาทสมเด็จพระพุทธยอดฟ้าจุฬาโลกมหาราชทรงย้ายราชธานีมาที่ฝั่งตะวันออกของแม่น้ำ",
    "โรงเรียนแห่งนี้ก่อตั้งขึ้นเมื่อปี 1990 โดยมีนักเรียน 1,200 คน",
    "ไก่ ไข่ ใจ ใหม่ เมือง แม่ โต๊ะ เสือ ก เมือง",
    "เขาไปโรงเรียนทุกวัน ๆ แต่ไม่เคยสาย",
]
LAO_SENTENCE = "ນະຄອນຫຼວງວຽງຈັນ ເປັນເມືອງຫຼວງຂອງລາວ ແລະ ເປັນເມືອງໃຫຍ່ທີ່ສຸດ"


def random_text(rng, alphabet, n):
    return "".join(rng.choice(alphabet + EXTRA, size=n))


def check_words(text, offsets):
    spans = list(zip(offsets[::2], offsets[1::2]))
    assert all(a < b for a, b in spans), (text, spans)  # no empty word
    assert all(b <= c for (_, b), (c, _) in zip(spans, spans[1:]))
    covered = {i for a, b in spans for i in range(a, b)}
    assert covered == {i for i, ch in enumerate(text) if not ch.isspace()}


@pytest.mark.parametrize("lang,alphabet", [("th", THAI), ("lo", LAO)])
def test_random_strings_never_give_an_empty_word(lang, alphabet):
    rng = np.random.RandomState(0)
    texts = [random_text(rng, alphabet, n) for n in rng.randint(1, 60, 3000)]
    texts += [" " + v + c for v in "เแโใไເແໂໃໄ" for c in "กขເ "] + ["ก เมือง", "ເ", "เ" * 5, "ะเ"]
    for text in texts:
        offsets = tokenize(text, lang)
        check_words(text, offsets)
        split_sentences(text, offsets)  # used to fail with IndexError on an empty word
    assert tokenize("ก เมือง", "th") == [0, 1, 2, 7]


def test_dictionary_segmenter_hook_and_its_fallback():
    text = "ไปโรงเรียน abc ไก่"
    words = words_of(text, tokenize(text, "th",
                                    sea_words=lambda run: [2, len(run) - 2] if len(run) > 3 else [len(run)]))
    assert words == ["ไป", "โรงเรียน", "abc", "ไก่"]
    # a segmenter whose words do not spell the run falls back to the rules
    assert tokenize(text, "th", sea_words=lambda run: [1]) == tokenize(text, "th")


def test_pythainlp_words_when_installed():
    pytest.importorskip("pythainlp")
    seg = Segmenter("th")
    assert seg.backend == "rules + pythainlp newmm"
    for text in SENTENCES:
        offsets, starts = seg.segment(text)
        check_words(text, offsets)
    offsets, _ = seg.segment("ตึกคู่ใช้เวลาสร้างเท่าไหร่")
    assert words_of("ตึกคู่ใช้เวลาสร้างเท่าไหร่", offsets) == ["ตึก", "คู่", "ใช้เวลา", "สร้าง", "เท่าไหร่"]


def thai_qa(rng, n_passages=12):
    """An English-Thai pair of SQuAD files: real and random Thai contexts, answers inside words."""
    data = {"en": [], "th": []}
    for k in range(n_passages):
        th = " ".join([SENTENCES[k % len(SENTENCES)], random_text(rng, THAI, 80), LAO_SENTENCE])
        start = int(rng.randint(0, len(th) - 6))
        while th[start].isspace():
            start += 1
        answer = th[start:start + 4].rstrip() or th[start]
        qas_th = [{"id": f"q{k}", "question": "อะไร " + answer + "?",
                   "answers": [{"text": answer, "answer_start": start}]}]
        qas_en = [{"id": f"q{k}", "question": f"What is {k}?", "answers": [{"text": "passage", "answer_start": 5}]}]
        data["th"].append({"title": "", "paragraphs": [{"context": th, "qas": qas_th}]})
        english = f"This passage {k} is English, this passage."
        data["en"].append({"title": "", "paragraphs": [{"context": english, "qas": qas_en}]})
    return data


def test_thai_qa_file_end_to_end(tmp_path, capsys):
    """grafusion-preprocess all --tgt-lang th on every context of a Thai QA file (it used to stop
    with IndexError in split_sentences): no empty word, every question binarized."""
    from fairseq_grafusion.data import PairReader

    rng = np.random.RandomState(1)
    files = {}
    for lang, articles in thai_qa(rng).items():
        files[lang] = tmp_path / f"train.{lang}.json"
        files[lang].write_text(json.dumps({"version": "1.1", "data": articles}, ensure_ascii=False), encoding="utf-8")
    lines = [p["context"] for lang in files for a in json.loads(files[lang].read_text())["data"]
             for p in a["paragraphs"]]
    spm_path, dict_path = train_vocab(lines * 3, str(tmp_path / "spm"), vocab_size=300)
    cli.main(["all", "--out", str(tmp_path / "out"), "--src-lang", "en", "--tgt-lang", "th",
              "--qa", "train", str(files["en"]), str(files["th"]), "--spm", spm_path, "--dict", dict_path,
              "--max-len", "64", "--doc-stride", "24"])
    printed = capsys.readouterr().out
    assert "tgt (th) tokenizer: rules" in printed  # the segmenter used is reported
    records = read_jsonl(str(tmp_path / "out" / "work" / "qa" / "train" / "words.jsonl"), "words")
    assert len(records) == 24
    for r in records:
        spans = list(zip(r["tgt"][::2], r["tgt"][1::2]))
        assert all(a < b for a, b in spans)
    reader = PairReader(str(tmp_path / "out" / "qa-bin" / "train"))
    assert set(reader.ids) == {f"q{k}" for k in range(12)}
    for i in range(len(reader)):
        word = reader.field("tgt.word", i)
        assert (np.bincount(word) > 0).all()  # no empty node
