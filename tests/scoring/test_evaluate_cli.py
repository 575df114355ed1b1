"""grafusion-evaluate end to end, through ``python -m fairseq_grafusion.cli.evaluate``."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

# de, mlqa: q1 F1 1 EM 1; q2 "in Berlin" vs "Berlin" F1 2/3 EM 0; q3 F1 1 EM 1; q4 missing
#   -> F1 66.67, EM 50.0
# de, squad: q1 [hund] vs [der, hund] 2/3; q2 2/3; q3 "goethe" vs "«goethe»" 0; q4 0 -> 33.3 / 0.0
DE_GOLD = [("q1", ["der Hund"]), ("q2", ["Berlin"]), ("q3", ["«Goethe»"]), ("q4", ["zwei Katzen"])]
DE_PRED = {"q1": "Hund", "q2": "in Berlin", "q3": "Goethe", "zz": "not a question"}
# es, mlqa: both exact -> 100 / 100; squad: "casa" vs "la casa" 2/3, "madrid" vs "¡madrid" 0
ES_GOLD = [("e1", ["la casa"]), ("e2", ["¡Madrid!"])]
ES_PRED = {"e1": "casa", "e2": "Madrid"}


def _gold(qas):
    return {"version": "1.0", "data": [{"title": "t", "paragraphs": [{
        "context": "irrelevant",
        "qas": [{"id": q, "question": "?", "answers": [{"text": t, "answer_start": 0} for t in a]}
                for q, a in qas],
    }]}]}


def _write(path, obj):
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return str(path)


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "fairseq_grafusion.cli.evaluate", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture
def files(tmp_path):
    return {
        "de_gold": _write(tmp_path / "gold_de.json", _gold(DE_GOLD)),
        "de_pred": _write(tmp_path / "pred_de.json", DE_PRED),
        "es_gold": _write(tmp_path / "gold_es.json", _gold(ES_GOLD)),
        "es_pred": _write(tmp_path / "pred_es.json", ES_PRED),
    }


def _cells(line):
    return re.findall(r"\d+\.\d / \d+\.\d", line)


def test_table_json_and_warnings(files, tmp_path):
    out = tmp_path / "res.json"
    r = _run("--eval", "de", files["de_gold"], files["de_pred"],
             "--eval", "es", files["es_gold"], files["es_pred"], "--json", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3
    header, metrics, row = lines
    assert header.split() == ["Model", "de", "es", "Avg."]
    assert metrics.split() == ["metric", "mlqa", "mlqa"]  # what each column was scored with
    assert row.startswith("F1 / EM")
    # Avg. = (66.67 + 100) / 2, (50 + 100) / 2
    assert _cells(row) == ["66.7 / 50.0", "100.0 / 100.0", "83.3 / 75.0"]
    # columns line up: each language code starts where its cell starts
    for code, cell in zip(["de", "es", "Avg."], _cells(row)):
        assert header.index(" " + code) + 1 == row.index(cell)

    res = json.loads(out.read_text())
    assert res["languages"]["de"]["f1"] == pytest.approx(200 / 3)
    assert res["languages"]["de"]["exact_match"] == pytest.approx(50.0)
    assert res["languages"]["de"]["total"] == 4
    assert res["languages"]["de"]["missing"] == 1
    assert res["languages"]["de"]["extra"] == 1
    assert res["languages"]["de"]["metric"] == "mlqa"
    assert res["metrics"] == {"de": "mlqa", "es": "mlqa"}
    assert res["languages"]["es"]["f1"] == pytest.approx(100.0)
    assert res["avg"]["f1"] == pytest.approx((200 / 3 + 100) / 2)
    assert res["avg"]["exact_match"] == pytest.approx(75.0)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]

    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    missing = [w for w in warnings if "no prediction" in w]
    assert len(missing) == 1 and "de: 1 of 4" in missing[0] and "q4" in missing[0]
    extra = [w for w in warnings if "not in" in w]
    assert len(extra) == 1 and "zz" in extra[0]
    assert "Traceback" not in r.stderr


def test_single_language_and_squad_metric(files):
    r = _run("--gold", files["de_gold"], "--pred", files["de_pred"], "--lang", "de", "--metric", "squad")
    assert r.returncode == 0, r.stderr
    header, metrics, row = r.stdout.splitlines()
    assert header.split() == ["Model", "de", "Avg."]
    assert metrics.split() == ["metric", "squad"]
    assert _cells(row) == ["33.3 / 0.0", "33.3 / 0.0"]


def test_auto_metric_uses_squad_for_tydiqa_languages(tmp_path):
    # "«Goethe»" vs "Goethe": mlqa would give 100 / 100, squad gives 0 / 0
    gold = _write(tmp_path / "g.json", _gold([("b1", ["«Goethe»"])]))
    pred = _write(tmp_path / "p.json", {"b1": "Goethe"})
    r = _run("--eval", "bn", gold, pred, "--eval", "hi", gold, pred)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1].split() == ["metric", "squad", "mlqa"]
    assert _cells(r.stdout.splitlines()[2]) == ["0.0 / 0.0", "100.0 / 100.0", "50.0 / 50.0"]


def _assert_one_line_error(r, *needles):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert r.stdout == ""


def test_bad_json_is_one_line_error(files, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"q1": "Hund",\n "q2": }\n', encoding="utf-8")
    r = _run("--gold", files["de_gold"], "--pred", str(bad), "--lang", "de")
    _assert_one_line_error(r, "broken.json", "line 2")


def test_missing_file_is_one_line_error(files, tmp_path):
    r = _run("--gold", str(tmp_path / "nope.json"), "--pred", files["de_pred"], "--lang", "de")
    _assert_one_line_error(r, "nope.json")


def test_unknown_language_is_one_line_error(files):
    r = _run("--gold", files["de_gold"], "--pred", files["de_pred"], "--lang", "xx")
    _assert_one_line_error(r, "'xx'")
    r = _run("--gold", files["de_gold"], "--pred", files["de_pred"], "--lang", "bn", "--metric", "mlqa")
    _assert_one_line_error(r, "squad")


def test_incomplete_triple_and_duplicates(files):
    _assert_one_line_error(_run("--gold", files["de_gold"], "--lang", "de"), "--pred")
    _assert_one_line_error(_run(), "nothing to evaluate")
    r = _run("--gold", files["de_gold"], "--pred", files["de_pred"], "--lang", "de",
             "--eval", "de", files["de_gold"], files["de_pred"])
    _assert_one_line_error(r, "more than once", "de")


def test_predictions_not_an_object(files, tmp_path):
    pred = _write(tmp_path / "list.json", ["Hund"])
    _assert_one_line_error(_run("--gold", files["de_gold"], "--pred", pred, "--lang", "de"), "list.json")


def test_blanked_gold_file_is_refused(tmp_path):
    gold = _write(tmp_path / "blank.json", _gold([("q1", [""]), ("q2", [""])]))
    pred = _write(tmp_path / "p.json", {"q1": "", "q2": "x"})
    _assert_one_line_error(_run("--gold", gold, "--pred", pred, "--lang", "en"), "blank.json", "empty")


def test_help_documents_metrics():
    r = _run("--help")
    assert r.returncode == 0
    assert "--metric" in r.stdout and "TyDiQA-GoldP" in r.stdout and "--eval" in r.stdout
