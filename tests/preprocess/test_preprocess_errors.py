"""Bad input: one line on stderr naming the file and the line or id, exit status 1, no output."""
import collections
import glob
import json
import os

from conftest import REPO, run_module

SAMPLE = os.path.join(REPO, "examples", "sample")
EN, RO = os.path.join(SAMPLE, "qa", "valid.en.json"), os.path.join(SAMPLE, "qa", "valid.ro.json")


def run(*args):
    return run_module("fairseq_grafusion.preprocess", *args, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)


def assert_fails(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("grafusion-preprocess: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def files(path):
    return [p for p in glob.glob(os.path.join(str(path), "**", "*"), recursive=True) if os.path.isfile(p)]


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dump(data, path):
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def pairs(out, src, tgt, *extra):
    return run("pairs", "--out", out, "--src-lang", "en", "--tgt-lang", "ro", "--qa", "valid", src, tgt, *extra)


def test_malformed_json(tmp_path):
    text = open(EN, encoding="utf-8").read()
    bad = tmp_path / "bad.json"
    bad.write_text(text.replace('"question":', '"question"', 1), encoding="utf-8")
    line = assert_fails(pairs(tmp_path / "out", bad, RO), "bad.json line ", "malformed JSON")
    assert "column" in line
    assert files(tmp_path / "out") == []


def test_question_without_id(tmp_path):
    data = load(EN)
    del data["data"][0]["paragraphs"][1]["qas"][2]["id"]
    bad = dump(data, tmp_path / "noid.json")
    assert_fails(pairs(tmp_path / "out", bad, RO), "noid.json line ", "has no 'id'",
                 "What Panther defender was called")
    assert files(tmp_path / "out") == []


def test_answer_start_not_matching(tmp_path):
    data = load(RO)
    data["data"][0]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] += 3
    bad = dump(data, tmp_path / "shifted.json")
    assert_fails(pairs(tmp_path / "out", EN, bad), "shifted.json", "56bec6ac3aeaaa14008c93fe",
                 "does not match the answer")
    assert files(tmp_path / "out") == []
    ok = pairs(tmp_path / "out2", EN, bad, "--skip-bad")  # counted and reported instead
    assert ok.returncode == 0 and "answer does not match its context (dropped): 1" in ok.stdout


def test_empty_passage(tmp_path):
    data = load(RO)
    data["data"][0]["paragraphs"][0]["context"] = "  "
    bad = dump(data, tmp_path / "empty.json")
    assert_fails(pairs(tmp_path / "out", EN, bad), "empty.json", "empty context", "56bec6ac3aeaaa14008c93fd")
    assert files(tmp_path / "out") == []
    ok = pairs(tmp_path / "out2", EN, bad, "--skip-bad")
    assert ok.returncode == 0 and "empty context (questions dropped): 12" in ok.stdout
    assert "12 question ids have no target side and were dropped" in ok.stdout


def test_parallel_line_count_mismatch(tmp_path):
    src, tgt = tmp_path / "a.en", tmp_path / "a.ro"
    src.write_text("One.\nTwo.\nThree.\n")
    tgt.write_text("Unu.\nDoi.\n")
    assert_fails(run("parallel", "--sample", "--out", tmp_path / "out", "--parallel", "train", src, tgt),
                 "a.en has 3 lines but", "a.ro has 2", "first unmatched line: 3")
    assert files(tmp_path / "out") == []


def qa_pairs(out, src, tgt, split, *extra):
    return run("pairs", "--out", out, "--src-lang", "en", "--tgt-lang", "ro", "--qa", split, src, tgt, *extra)


def test_inputs_that_used_to_pass_silently(tmp_path):
    """A training question without 'answers', an empty question, an integer id, a NUL byte in
    parallel text: each one line naming the file and the id or line (nothing written)."""
    data = load(RO)
    qa = data["data"][0]["paragraphs"][0]["qas"][1]
    del qa["answers"]
    no_answers = dump(data, tmp_path / "no_answers.json")
    assert_fails(qa_pairs(tmp_path / "o1", EN, no_answers, "train"), "no_answers.json line ",
                 qa["id"], "has no 'answers' list", "--skip-bad")
    data = load(RO)
    data["data"][0]["paragraphs"][0]["qas"][2]["question"] = " "
    empty = dump(data, tmp_path / "empty_question.json")
    qid = data["data"][0]["paragraphs"][0]["qas"][2]["id"]
    assert_fails(qa_pairs(tmp_path / "o2", EN, empty, "valid"), "empty_question.json line ", qid,
                 "empty question text")
    data = load(EN)
    data["data"][0]["paragraphs"][0]["qas"][0]["id"] = 1234
    integer = dump(data, tmp_path / "integer_id.json")
    assert_fails(qa_pairs(tmp_path / "o3", integer, RO, "valid"), "integer_id.json line ",
                 "question id 1234 is a int, not a string")
    src, tgt = tmp_path / "b.en", tmp_path / "b.ro"
    src.write_text("One.\nTwo\0 bytes.\nThree.\n")
    tgt.write_text("Unu.\nDoi.\nTrei.\n")
    assert_fails(run("parallel", "--sample", "--out", tmp_path / "o4", "--parallel", "train", src, tgt),
                 "b.en line 2: a NUL byte", "--skip-bad")
    for out in ("o1", "o2", "o3", "o4"):
        assert files(tmp_path / out) == []


def test_skip_bad_counts_what_it_drops(tmp_path):
    from fairseq_grafusion.preprocess.parallel import read_parallel
    from fairseq_grafusion.squad import read_squad

    data = load(RO)
    qas = data["data"][0]["paragraphs"][0]["qas"]
    del qas[1]["answers"]
    qas[2]["question"] = ""
    qas[3]["question"] = "Who\0?"
    path = dump(data, tmp_path / "bad.json")
    _, questions, stats = read_squad(str(path), skip_bad=True, require_answers=True)
    dropped = {qas[k]["id"] for k in (1, 2, 3)}
    assert not dropped & {q["id"] for q in questions}
    assert len(questions) == sum(len(p["qas"]) for p in load(RO)["data"][0]["paragraphs"]) \
        + sum(len(p["qas"]) for a in load(RO)["data"][1:] for p in a["paragraphs"]) - 3
    assert stats == {"no 'answers' list (dropped)": 1, "empty question text (dropped)": 1,
                     "a NUL byte in the question (dropped)": 1}
    # outside the training split a question without answers is kept, without gold, and counted
    data = load(RO)
    del data["data"][0]["paragraphs"][0]["qas"][1]["answers"]
    _, questions, stats = read_squad(str(dump(data, tmp_path / "test.json")))
    assert stats == {"questions without an 'answers' key (kept, no gold)": 1}
    src, tgt = tmp_path / "c.en", tmp_path / "c.ro"
    src.write_text("One.\nTwo\0.\n\nFour.\n")
    tgt.write_text("Unu.\nDoi.\nTrei.\nPatru\0.\n")
    counts = collections.Counter()
    units = read_parallel(str(src), str(tgt), counts, skip_bad=True)
    assert [u.src for u in units] == ["One."]
    assert counts["line pairs with a NUL byte (skipped)"] == 2
    assert counts["empty line pairs (skipped)"] == 1


def test_alignment_beyond_the_sentence(tmp_path):
    ok = run("words", "--sample", "--out", tmp_path / "out", "--qa", "valid", EN, RO)
    assert ok.returncode != 0  # words before pairs: the missing input is named
    assert "units.jsonl is missing" in ok.stderr
    for stage in ("pairs", "words"):
        assert run(stage, "--sample", "--out", tmp_path / "out", "--qa", "valid", EN, RO).returncode == 0
    n = len((tmp_path / "out" / "work" / "qa" / "valid" / "aligner-input.src.txt").read_text().splitlines())
    lines = ["0-0"] * n
    lines[2] = "0-0 99-1"
    (tmp_path / "bad.align").write_text("\n".join(lines) + "\n")
    before = files(tmp_path / "out")
    assert_fails(run("align", "--sample", "--out", tmp_path / "out", "--qa", "valid", EN, RO,
                     "--alignments", tmp_path / "bad.align"), "bad.align line 3: link 99-1 is beyond")
    assert files(tmp_path / "out") == before


def test_unreadable_sentencepiece_model(tmp_path):
    bad = tmp_path / "broken.model"
    bad.write_bytes(b"\x00garbage")
    assert_fails(run("all", "--sample", "--out", tmp_path / "out", "--spm", bad), "broken.model",
                 "cannot load the SentencePiece model")
    assert files(tmp_path / "out") == []
