"""The rule-based Unicode tokenizer and sentence splitter on real sentences of several scripts."""
import pytest

from fairseq_grafusion.preprocess.wordseg import Segmenter, split_sentences, tokenize, words_of

CASES = [
    # XQuAD (en): clitics, numbers with ':' and '½', hyphenated compounds, brackets
    ("en", "Carolina's secondary featured Pro Bowl safety Kurt Coleman, who didn't miss (118) 6½ sacks at 3:08.",
     ["Carolina", "'s", "secondary", "featured", "Pro", "Bowl", "safety", "Kurt", "Coleman", ",", "who",
      "did", "n't", "miss", "(", "118", ")", "6½", "sacks", "at", "3:08", "."]),
    ("en", "Six-time Grammy winner and Academy Award nominee Lady Gaga performed the national anthem.",
     ["Six", "-", "time", "Grammy", "winner", "and", "Academy", "Award", "nominee", "Lady", "Gaga",
      "performed", "the", "national", "anthem", "."]),
    # XQuAD (ro): comma-below letters, hyphen clitics
    ("ro", "Coechipierul de linie Mario Addison a adăugat încă 6½ sack-uri.",
     ["Coechipierul", "de", "linie", "Mario", "Addison", "a", "adăugat", "încă", "6½", "sack", "-", "uri", "."]),
    # MKQA queries (ru, ar) and an MLQA question (hi)
    ("ru", "как долго строились башни-близнецы",
     ["как", "долго", "строились", "башни", "-", "близнецы"]),
    ("ar", "من الذي غنى أغنية يور ماي إيفريثنج",
     ["من", "الذي", "غنى", "أغنية", "يور", "ماي", "إيفريثنج"]),
    ("hi", "रूस ने कितनी टीमों के लिए क्वालीफाई किया?",
     ["रूस", "ने", "कितनी", "टीमों", "के", "लिए", "क्वालीफाई", "किया", "?"]),
    # MLQA (zh): one word per Han character, full-width punctuation separate
    ("zh", "作为主办国，俄罗斯自动获得参赛资格。",
     ["作", "为", "主", "办", "国", "，", "俄", "罗", "斯", "自", "动", "获", "得", "参", "赛", "资", "格", "。"]),
    # MKQA (ja): Katakana loan word kept, Han and Hiragana one character each
    ("ja", "ツインタワーが建てられるまで",
     ["ツインタワー", "が", "建", "て", "ら", "れ", "る", "ま", "で"]),
    # MKQA (th): cut before leading vowels (เ ไ) and after syllable-closing signs
    ("th", "ตึกคู่ใช้เวลาสร้างเท่าไหร่",
     ["ตึกคู่", "ใช้", "เวลาสร้าง", "เท่า", "ไหร่"]),
    ("th", "รูปภาพของ samantha จากซีรีส์ sex and the city",
     ["รูปภาพของ", "samantha", "จากซีรีส์", "sex", "and", "the", "city"]),
    ("fr", "Qui chante la chanson dans l'église ?",
     ["Qui", "chante", "la", "chanson", "dans", "l'", "église", "?"]),
]


@pytest.mark.parametrize("lang,text,expected", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_words(lang, text, expected):
    offsets = tokenize(text, lang)
    assert words_of(text, offsets) == expected
    # offsets are exact, ordered, non-overlapping and cover every non-space character
    spans = list(zip(offsets[::2], offsets[1::2]))
    assert all(a < b for a, b in spans) and all(b <= c for (_, b), (c, _) in zip(spans, spans[1:]))
    covered = set()
    for a, b in spans:
        covered.update(range(a, b))
    assert {i for i, ch in enumerate(text) if not ch.isspace()} == covered


def test_clitics_only_where_the_language_has_them():
    text = "Manning's l'église"
    assert words_of(text, tokenize(text, "de")) == ["Manning's", "l'église"]


def test_sentences():
    text = ("The Panthers defense gave up just 308 points. Mr. Smith met J. P. Morgan on Jan. 3. "
            "It rained! Did it? “Yes.” the end 3.5 km.")
    offsets = tokenize(text, "en")
    words = words_of(text, offsets)
    starts = split_sentences(text, offsets)
    first = [words[s] for s in starts]
    assert first == ["The", "Mr", "It", "Did", "“"]
    zh = "本届冬奥会冰壶比赛参加资格有两种办法可以取得。作为主办国，俄罗斯自动获得参赛资格。"
    zo = tokenize(zh, "zh")
    assert [words_of(zh, zo)[s] for s in split_sentences(zh, zo)] == ["本", "作"]


def test_segmenter_falls_back_to_rules(tmp_path):
    seg = Segmenter("ro", stanza_dir=str(tmp_path))
    assert seg.backend == "rules"
    offsets, starts = seg.segment("Broncos a învins. Apoi au câștigat.")
    assert starts == [0, 4] and len(offsets) == 2 * 8
