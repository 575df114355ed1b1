"""Bad input and failed writes, each one line naming the file and the line, id or option, and
nothing left behind: deep JSON, Pharaoh links with non-ASCII digits, CoNLL-U heads, ids with line
breaks, negative or empty answers, a truncated .bin, a full disk, a byte-order mark (read alike by
every reader), unknown language codes, the report an error refers to, and parallel files of
different lengths found before any stage runs."""
import builtins
import errno
import glob
import json
import os
import shutil

import numpy as np
import pytest

from conftest import REPO
from fairseq_grafusion.cli import evaluate
from fairseq_grafusion.data import PairReader, PairWriter
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.files import write_json
from fairseq_grafusion.preprocess import pipeline, stages
from fairseq_grafusion.preprocess.align import read_pharaoh
from fairseq_grafusion.preprocess.config import PipelineConfig
from fairseq_grafusion.preprocess.parallel import read_parallel
from fairseq_grafusion.preprocess.parse import read_conllu
from fairseq_grafusion.preprocess.workdir import SplitPaths
from fairseq_grafusion.squad import load_json, read_gold, read_squad, write_squad
from fairseq_grafusion.synthetic import SyntheticXMRC

SAMPLE = os.path.join(REPO, "examples", "sample")
EN, RO = os.path.join(SAMPLE, "qa", "valid.en.json"), os.path.join(SAMPLE, "qa", "valid.ro.json")
SPM, DICT = os.path.join(SAMPLE, "spm", "sentencepiece.bpe.model"), os.path.join(SAMPLE, "spm", "dict.txt")


def one_line(excinfo, *fragments):
    message = str(excinfo.value)
    assert "\n" not in message and "\u2028" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def squad(path, context="Ana are mere.", answers=({"text": "mere", "answer_start": 8},), qid="q1"):
    write_squad(str(path), [{"title": "t", "context": context}],
                [{"passage": 0, "id": qid, "question": "Ce are Ana?", "answers": list(answers)}])
    return str(path)


def test_json_nested_too_deep(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("\n" + "[" * 100000 + "]" * 100000)
    with pytest.raises(GraFusionError) as e:  # grafusion-preprocess
        read_squad(str(deep))
    one_line(e, "deep.json line 2", "nested too deep")
    with pytest.raises(GraFusionError) as e:  # grafusion-evaluate
        evaluate.main(["--gold", str(deep), "--pred", str(deep), "--lang", "en"])
    one_line(e, "deep.json line 2", "nested too deep")


def test_pharaoh_link_with_a_superscript_digit(tmp_path):
    path = tmp_path / "links.txt"
    path.write_text("0-0\n\u00b2-0 1-1\n", encoding="utf-8")
    assert "\u00b2".isdigit()  # what let it through
    with pytest.raises(GraFusionError) as e:
        read_pharaoh(str(path), [(2, 2), (2, 2)])
    one_line(e, "links.txt line 2", "'\u00b2-0' is not a Pharaoh link")


def test_conllu_head_outside_the_sentence(tmp_path):
    path = tmp_path / "bad.conllu"
    path.write_text("# text = Hello world\n1\tHello\thello\tX\t_\t_\t0\troot\t_\t_\n"
                    "2\tworld\tworld\tX\t_\t_\t-3\tdep\t_\t_\n\n")
    with pytest.raises(GraFusionError) as e:
        read_conllu(str(path), [2])
    one_line(e, "bad.conllu line 3", "word 2 has head '-3'")


def test_question_id_with_a_line_separator_is_refused_at_preprocess(tmp_path):
    path = squad(tmp_path / "ids.json", qid="q\u20281")
    with pytest.raises(GraFusionError) as e:
        read_squad(path)
    one_line(e, "ids.json", "'q\\u20281'", "line break")
    with pytest.raises(GraFusionError, match="line break"):  # and by the writer of a split
        PairWriter(str(tmp_path / "x"), 100).add("a\u2028b")


@pytest.mark.parametrize("answer, name", [({"text": "mere", "answer_start": -5}, "negative answer_start"),
                                          ({"text": "", "answer_start": 0}, "empty answer text")])
def test_negative_start_and_empty_answer(tmp_path, answer, name):
    path = squad(tmp_path / "qa.json", answers=[answer])  # "mere" is context[-5:-1]
    with pytest.raises(GraFusionError) as e:
        read_squad(path)
    one_line(e, "qa.json", "'q1'", name, "--skip-bad")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    data["data"][0]["paragraphs"][0]["qas"].append({"id": "q2", "question": "Cine?", "answers": [
        {"text": "Ana", "answer_start": 0}]})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)
    _, questions, stats = read_squad(path, skip_bad=True)
    assert [q["id"] for q in questions] == ["q2"] and stats == {f"{name} (dropped)": 1}


def test_truncated_bin(tmp_path):
    data = SyntheticXMRC(task="marker").write(str(tmp_path / "data"), splits=(("valid", 6),))
    PairReader(os.path.join(data, "valid"))
    path = os.path.join(data, "valid.src.tok.bin")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 3)
    with pytest.raises(GraFusionError) as e:
        PairReader(os.path.join(data, "valid"))
    one_line(e, "valid.src.tok.bin", "truncated")


class FullDisk:
    """``open`` whose files opened for writing under ``root`` hold ``room`` bytes in all, then
    fail with ENOSPC, as a full disk does."""

    def __init__(self, root, room):
        self.root, self.room, self.used = str(root), room, 0
        self.real = builtins.open

    def __call__(self, file, mode="r", *args, **kwargs):
        f = self.real(file, mode, *args, **kwargs)
        if any(c in mode for c in "wax+") and os.path.abspath(str(file)).startswith(self.root):
            return _Limited(f, self)
        return f


class _Limited:
    def __init__(self, f, disk):
        self._f, self._disk = f, disk

    def write(self, data):
        n = len(data.encode("utf-8") if isinstance(data, str) else bytes(data))
        if self._disk.used + n > self._disk.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._disk.used += n
        return self._f.write(data)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def leftovers(root):
    return [p for p in glob.glob(os.path.join(str(root), "**", "*"), recursive=True) if ".tmp-" in p]


def test_disk_full_in_the_writers(tmp_path, monkeypatch):
    monkeypatch.setattr(builtins, "open", FullDisk(tmp_path, room=10))
    with pytest.raises(GraFusionError) as e:
        write_json(str(tmp_path / "pred.json"), {"q1": "x" * 100})
    one_line(e, "cannot write", "pred.json", "No space left on device")
    with pytest.raises(GraFusionError) as e:
        with PairWriter(str(tmp_path / "valid"), 100, with_span=False) as writer:
            writer.add("a", src_tok=np.arange(50), tgt_tok=np.arange(50), src_word=np.arange(50),
                       tgt_word=np.arange(50), align=[0, 0], src_dep=[], tgt_dep=[])
    one_line(e, "cannot write", "valid.*", "No space left on device")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("room", [0, 100000, 200000])  # the split, its last files, a gold file
def test_disk_full_in_binarize(sample_run, tmp_path, monkeypatch, room):
    paths = SplitPaths(str(tmp_path), "qa", "valid")
    shutil.copytree(sample_run[0] / "work" / "qa" / "valid", paths.work)
    cfg = PipelineConfig(command="binarize", out=str(tmp_path), src_lang="en", tgt_lang="ro",
                         qa=[("valid", EN, RO)], spm=SPM, dict=DICT)
    monkeypatch.setattr(builtins, "open", FullDisk(tmp_path / "qa-bin", room))
    with pytest.raises(GraFusionError) as e:
        stages.run_binarize(paths, cfg)
    one_line(e, "cannot write", str(tmp_path / "qa-bin"), "No space left on device")
    assert leftovers(tmp_path) == []


def test_byte_order_mark_is_read_alike_everywhere(tmp_path):
    def twice(name, text):
        plain, marked = tmp_path / name, tmp_path / f"bom-{name}"
        plain.write_text(text, encoding="utf-8")
        marked.write_text("\ufeff" + text, encoding="utf-8")
        return str(plain), str(marked)

    qa = twice("qa.json", open(RO, encoding="utf-8").read())
    assert read_squad(qa[0])[:2] == read_squad(qa[1])[:2]  # preprocess, predict --qa
    assert read_gold(qa[0]) == read_gold(qa[1])  # predict --gold, the task's F1
    assert load_json(qa[0], "gold") == load_json(qa[1], "gold")  # evaluate
    src, tgt = twice("a.en", "One.\nTwo.\n"), twice("a.ro", "Unu.\nDoi.\n")
    assert read_parallel(src[0], tgt[0], {}) == read_parallel(src[1], tgt[1], {})
    links = twice("links.txt", "0-0\n0-0 1-1\n")
    assert read_pharaoh(links[0], [(1, 1), (2, 2)]) == read_pharaoh(links[1], [(1, 1), (2, 2)])
    conllu = twice("p.conllu", "1\tHello\thello\tX\t_\t_\t0\troot\t_\t_\n2\tworld\tworld\tX\t_\t_\t1\tdep\t_\t_\n\n")
    assert read_conllu(conllu[0], [2]) == read_conllu(conllu[1], [2]) == [[1, 0]]


def test_unknown_language_code_and_extra_lang(tmp_path):
    common = dict(command="pairs", out=str(tmp_path), qa=[("valid", EN, RO)])
    with pytest.raises(GraFusionError) as e:
        PipelineConfig(src_lang="eng", tgt_lang="ro", **common)
    one_line(e, "--src-lang 'eng'", "--extra-lang eng")
    with pytest.raises(GraFusionError, match="--tgt-lang 'romanian'"):
        PipelineConfig(src_lang="en", tgt_lang="romanian", **common)
    assert PipelineConfig(src_lang="en", tgt_lang="xq", extra_lang=["xq"], **common).tgt_lang == "xq"


def test_no_question_pairs_error_follows_its_report(tmp_path, capsys):
    data = json.load(open(RO, encoding="utf-8"))
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qa["id"] = "other-" + qa["id"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    cfg = PipelineConfig(command="pairs", out=str(tmp_path / "out"), src_lang="en", tgt_lang="ro",
                         qa=[("valid", EN, str(other))])
    with pytest.raises(GraFusionError) as e:
        pipeline.run_pipeline(cfg)
    one_line(e, "no question pairs left", "report above")
    report = capsys.readouterr().out
    assert "[pairs] qa/valid" in report and "dropped" in report, report


def test_parallel_line_counts_are_checked_before_any_stage(tmp_path, monkeypatch):
    def stage_ran(*args, **kwargs):
        raise AssertionError("a stage ran before the cheap input checks")

    monkeypatch.setattr(stages, "run_pairs", stage_ran)
    for name in list(pipeline.RUNNERS):
        monkeypatch.setitem(pipeline.RUNNERS, name, stage_ran)
    src, tgt = tmp_path / "a.en", tmp_path / "a.ro"
    src.write_text("One.\nTwo.\nThree.\n")
    tgt.write_text("Unu.\nDoi.\n")
    cfg = PipelineConfig(command="all", out=str(tmp_path / "out"), src_lang="en", tgt_lang="ro",
                         qa=[("valid", EN, RO)], parallel=[("train", str(src), str(tgt))], spm=SPM, dict=DICT)
    with pytest.raises(GraFusionError) as e:
        pipeline.run_pipeline(cfg)
    one_line(e, "a.en has 3 lines but", "a.ro has 2")
