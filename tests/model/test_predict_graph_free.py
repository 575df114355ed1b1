"""Models without a graph skip word alignment and parsing, in ``grafusion-predict --qa`` and the hub
(``inference.graph_stages``), and answer exactly as through the full pipeline."""
import json
import os
import sys

import pytest
from fairseq.data import Dictionary

import fairseq_grafusion.plugin  # noqa: F401  (registers the plugin)
import fairseq_grafusion.preprocess.align as align_mod
import fairseq_grafusion.preprocess.units as units_mod
from conftest import REPO
from fairseq_grafusion.cli.predict import main as predict_main
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.hub import GraFusionHubInterface
from fairseq_grafusion.inference import graph_stages
from fairseq_grafusion.models import FilterConfig, FilterModel
from fairseq_grafusion.models.grafusion import GraFusionConfig, GraFusionModel
from fairseq_grafusion.squad import read_gold

SPM = os.path.join(REPO, "examples", "sample", "spm")
QA = os.path.join(REPO, "examples", "sample", "qa")


def tiny(kind, value):
    """A small untrained model of each kind: GraFusion with ``--no-fusion`` / ``--graph value``,
    FILTER with ``--filter-k value`` (0: xlmr_translate_train)."""
    d = Dictionary()
    sizes = dict(encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_attention_heads=2)
    if kind == "filter":
        return FilterModel(FilterConfig(encoder_layers=3, filter_m=1, filter_k=value, **sizes), d)
    if value == "no-fusion":
        return GraFusionModel(GraFusionConfig(sa_layers=1, no_fusion=True, graph="align,dep", **sizes), d)
    return GraFusionModel(GraFusionConfig(sa_layers=1, graph=value, **sizes), d)


@pytest.mark.parametrize("kind,value,expected", [
    ("grafusion", "no-fusion", (False, False)), ("grafusion", "none", (True, False)),
    ("grafusion", "align", (True, False)), ("grafusion", "dep", (True, True)),
    ("grafusion", "align,dep", (True, True)), ("filter", 0, (False, False)),
    ("filter", 1, (True, False))])
def test_which_stages_each_model_needs(kind, value, expected):
    """Alignment for every model that reads both streams (windows are paired by alignment links),
    parsing for dependency edges; the hub runs the same stages (FILTER has no ``use_dep``)."""
    model = tiny(kind, value)
    assert graph_stages(model) == expected
    hub = GraFusionHubInterface(None, model, os.path.join(SPM, "sentencepiece.bpe.model"),
                                os.path.join(SPM, "dict.txt"), "en", "ro")
    assert (hub.pipeline.align, hub.pipeline.parse) == expected


def qa_predict(checkpoint, out, *extra):
    predict_main(["--path", checkpoint, "--output", str(out), "--nbest-output", str(out) + ".nbest",
                  "--cpu", *map(str, extra)])
    with open(out, encoding="utf-8") as f, open(str(out) + ".nbest", encoding="utf-8") as g:
        return json.load(f), json.load(g)


RAW = ["--qa", os.path.join(QA, "valid.en.json"), os.path.join(QA, "valid.ro.json"), "--src-lang",
       "en", "--tgt-lang", "ro", "--spm", os.path.join(SPM, "sentencepiece.bpe.model"), "--dict",
       os.path.join(SPM, "dict.txt")]


def forbid_aligner_and_parser(monkeypatch, eflomal_runs=None):
    """eflomal cannot be imported (or, with ``eflomal_runs``, is counted), parsing raises."""
    if eflomal_runs is None:
        monkeypatch.setitem(sys.modules, "eflomal", None)  # `import eflomal` raises ImportError
    else:
        links = align_mod._eflomal_links
        monkeypatch.setattr(align_mod, "_eflomal_links",
                            lambda *a, **k: eflomal_runs.append(len(a[0])) or links(*a, **k))

    def no_parser(*args, **kwargs):
        raise AssertionError("the parser ran for a model without dependency edges")

    monkeypatch.setattr(units_mod, "parse_units", no_parser)


def test_no_fusion_qa_skips_alignment_and_parsing(sample_checkpoints, tmp_path, monkeypatch):
    """A --no-fusion model: --qa runs neither eflomal nor the parser and gives the n-best lists
    of the binarized split (made by ``grafusion-preprocess all``: eflomal, same-word edges)."""
    data, paths = sample_checkpoints
    full = qa_predict(paths["no-fusion"], tmp_path / "bin.json", "--data", data, "--split", "valid")
    with monkeypatch.context() as m:
        forbid_aligner_and_parser(m)
        with pytest.raises(ImportError):  # the trick works: eflomal really cannot run
            align_mod._eflomal_links(["a b"], ["a b"])
        raw = qa_predict(paths["no-fusion"], tmp_path / "raw.json", *RAW)
    ids = set(read_gold(os.path.join(QA, "valid.ro.json"))[1])
    assert set(raw[0]) == ids and raw[0] == full[0]
    for qid in ids:
        assert [e["text"] for e in raw[1][qid]] == [e["text"] for e in full[1][qid]]
        assert [e["score"] for e in raw[1][qid]] == pytest.approx([e["score"] for e in full[1][qid]],
                                                                 rel=1e-5, abs=1e-5)


def test_align_model_qa_still_aligns(sample_checkpoints, tmp_path, monkeypatch):
    """A --graph align model: one eflomal run over the split's segments, no parser."""
    _, paths = sample_checkpoints
    runs = []
    forbid_aligner_and_parser(monkeypatch, eflomal_runs=runs)
    preds, _ = qa_predict(paths["align"], tmp_path / "raw.json", *RAW)
    assert len(runs) == 1 and runs[0] > 27 and len(preds) == 27


def test_qa_applies_the_training_alignment_model(sample_checkpoints, sample_run, tmp_path, monkeypatch, capsys):
    """--qa aligns as the hub does, on one path: the training alignment model (``--align-priors
    FILE``, or ``alignment.priors`` beside the checkpoint, where the hub looks) applied in this
    process, eflomal not started, and the same links as the hub's for every segment; without a
    model one eflomal run on the questions' own text.  The log says which path ran."""
    import shutil

    _, paths = sample_checkpoints
    priors = sample_run[0] / "work" / "alignment.priors"
    assert priors.is_file()
    runs, links = [], {"predict": {}, "hub": {}}
    eflomal = align_mod._eflomal_links
    monkeypatch.setattr(align_mod, "_eflomal_links", lambda *a, **k: runs.append(len(a[0])) or eflomal(*a, **k))
    lexical = align_mod.LexicalAligner.align
    into = links["predict"]

    def recorded(self, src_lines, tgt_lines):
        out = lexical(self, src_lines, tgt_lines)
        into.update(zip(zip(src_lines, tgt_lines), out))
        return out

    monkeypatch.setattr(align_mod.LexicalAligner, "align", recorded)
    beside = tmp_path / "model"
    beside.mkdir()
    shutil.copy(paths["align"], beside / "checkpoint_last.pt")
    checkpoint = str(beside / "checkpoint_last.pt")
    capsys.readouterr()
    own, _ = qa_predict(checkpoint, tmp_path / "own.json", *RAW)
    assert runs and not links["predict"] and "eflomal runs on the questions' own text" in capsys.readouterr().err
    shutil.copy(priors, beside / "alignment.priors")
    found, _ = qa_predict(checkpoint, tmp_path / "found.json", *RAW)
    log = capsys.readouterr().err
    assert "aligned in this process by the alignment model" in log and "eflomal" not in log
    named, _ = qa_predict(paths["align"], tmp_path / "named.json", *RAW, "--align-priors", priors)
    assert len(runs) == 1  # with a model, eflomal never started
    assert len(own) == len(found) == len(named) == 27 and found == named

    # the hub, on the same questions (each with its own passage): the same links, segment by segment
    shutil.copy(os.path.join(SPM, "sentencepiece.bpe.model"), beside)
    shutil.copy(os.path.join(SPM, "dict.txt"), beside)
    into = links["hub"]
    hub = GraFusionModel.from_pretrained(str(beside), checkpoint_file="checkpoint_last.pt", src_lang="en",
                                         tgt_lang="ro")
    sides = {lang: {q: (text, ctx) for q, (text, ctx) in _questions(os.path.join(QA, f"valid.{lang}.json")).items()}
             for lang in ("en", "ro")}
    ids = list(sides["ro"])
    answers = hub.answer([sides["ro"][q][0] for q in ids], [sides["ro"][q][1] for q in ids],
                         source_question=[sides["en"][q][0] for q in ids],
                         source_context=[sides["en"][q][1] for q in ids])
    assert len(runs) == 1 and len(links["hub"]) > 27
    assert set(links["hub"]) == set(links["predict"])
    assert links["hub"] == links["predict"]
    assert sum(map(len, links["hub"].values())) > len(links["hub"])  # links, not empty lists
    assert {q: a["text"] for q, a in zip(ids, answers)} == found


def _questions(path):
    """``{question id: (question, context)}`` of a SQuAD file."""
    data = json.load(open(path, encoding="utf-8"))
    return {qa["id"]: (qa["question"], p["context"]) for a in data["data"] for p in a["paragraphs"]
            for qa in p["qas"]}


@pytest.mark.parametrize("model", ["no-fusion", "align"])
def test_qa_with_no_question_pair_left_is_one_line(sample_checkpoints, tmp_path, model):
    """--qa files whose question ids pair nothing (another English file): an error that names
    what happened, for a model with and without the graph, and no predictions file."""
    _, paths = sample_checkpoints
    with open(os.path.join(QA, "valid.en.json"), encoding="utf-8") as f:
        data = json.load(f)
    for article in data["data"]:
        for p in article["paragraphs"]:
            for q in p["qas"]:
                q["id"] += "-other"
    other = tmp_path / "other.en.json"
    other.write_text(json.dumps(data), encoding="utf-8")
    raw = list(RAW)
    raw[1] = str(other)
    with pytest.raises(GraFusionError, match="no question pairs") as e:
        qa_predict(paths[model], tmp_path / "p.json", *raw)
    assert "\n" not in str(e.value) and not (tmp_path / "p.json").exists()
