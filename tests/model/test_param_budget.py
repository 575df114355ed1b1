"""The parameter budget (docs/design.md, "Parameters"): every variant's parameter count, from the built
model, as a multiple of XLM-R's, against a count written out by hand and against the table of docs/design.md;
and the sharing options compute what the unshared model computes with tied weights.

Models are built on the meta device (no memory) with XLM-R's vocabulary (250002 embeddings).
XLM-R's own count comes from fairseq's RoBERTa encoder (``encoder.sentence_encoder``: embeddings,
positions, layers; no LM head).  ``python tests/model/test_param_budget.py`` prints that table.
"""
import argparse
import os
import re
import sys
from unittest import mock

import pytest
import torch

import fairseq_grafusion.plugin  # noqa: F401  (registers the plugin)
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.models import FilterConfig, FilterModel, GraFusionConfig, GraFusionModel
from fairseq_grafusion.models import filter as filter_module
from fairseq_grafusion.models import grafusion as grafusion_module

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # also as a script
TABLE_PAGE = os.path.join(REPO, "docs", "design.md")  # its "Parameters" table
VOCAB, POSITIONS = 250002, 514  # XLM-R's embedding matrix; 512 positions + padding + 1
SIZES = {"base": dict(d=768, ffn=3072, heads=12, layers=12),
         "large": dict(d=1024, ffn=4096, heads=16, layers=24)}
LANG = ("none", "bottom", "both")  # "top" counts as "bottom": one layer either way
GRAPH_ROWS = [  # label, flags, --graph, --share-sa-graph, the paper's figure
    ("fusion, G = 0", "--graph none", "none", False, ""),
    ("+a", "--graph align", "align", False, "1.07"),
    ("+a, one SA-Graph", "--graph align --share-sa-graph", "align", True, "1.07"),
    ("+ad", "--graph align,dep", "align,dep", False, "1.15"),
    ("+ad, one SA-Graph", "--graph align,dep --share-sa-graph", "align,dep", True, "1.15"),
]


class XLMRVocabulary:
    def __len__(self):
        return VOCAB

    def pad(self):
        return 1


def on_meta(build):
    """Build on the meta device; fairseq's init_bert_params copies through the CPU, so it is
    skipped there (the count does not depend on the initial values)."""
    from fairseq.models.roberta import model as roberta

    skip = lambda module: None  # noqa: E731
    with mock.patch.object(roberta, "init_bert_params", skip), \
            mock.patch.object(grafusion_module, "init_bert_params", skip), \
            mock.patch.object(filter_module, "init_bert_params", skip), torch.device("meta"):
        return build()


def n_params(module):
    return sum(p.numel() for p in module.parameters())  # a shared tensor counts once


def xlmr(size):
    from fairseq.models.roberta import model as roberta

    args = argparse.Namespace()
    (roberta.base_architecture if size == "base" else roberta.roberta_large_architecture)(args)
    return on_meta(lambda: n_params(roberta.RobertaEncoder(args, XLMRVocabulary()).sentence_encoder))


def grafusion(size, graph="align,dep", share_graph=False, lang="none", no_fusion=False):
    s = SIZES[size]
    cfg = GraFusionConfig(encoder_embed_dim=s["d"], encoder_ffn_embed_dim=s["ffn"],
                          encoder_attention_heads=s["heads"], sa_layers=s["layers"] - 2,
                          graph=graph, share_sa_graph=share_graph, share_lang_layers=lang,
                          no_fusion=no_fusion)
    return on_meta(lambda: n_params(GraFusionModel(cfg, XLMRVocabulary())))


def filter_model(size, k):
    s = SIZES[size]
    cfg = FilterConfig(encoder_embed_dim=s["d"], encoder_ffn_embed_dim=s["ffn"],
                       encoder_attention_heads=s["heads"], encoder_layers=s["layers"],
                       filter_m=1 if k else s["layers"], filter_k=k)
    return on_meta(lambda: n_params(FilterModel(cfg, XLMRVocabulary())))


# -- the same counts written out by hand ------------------------------------------------------
def layer_by_hand(d, ffn):
    return 4 * (d * d + d) + (d * ffn + ffn) + (ffn * d + d) + 2 * 2 * d  # attention, FFN, 2 LN


def xlmr_by_hand(size):
    s = SIZES[size]
    return VOCAB * s["d"] + POSITIONS * s["d"] + 2 * s["d"] + s["layers"] * layer_by_hand(s["d"], s["ffn"])


def grafusion_by_hand(size, graph, share_graph, lang, no_fusion=False):
    s = SIZES[size]
    d, n_sa = s["d"], s["layers"] - 2
    head = 2 * d + 2
    if no_fusion:
        return xlmr_by_hand(size) + head
    copies = {"none": 2, "bottom": 1, "top": 1, "both": 0}[lang]  # per-language bottom / top
    f_a = 4 * d * d if "align" in graph else 0  # V1, W1, V2, W2 (eq. 9)
    f_d = d * d + 2 * d if "dep" in graph else 0  # W3, W4 (eq. 10-11)
    w_att = d * d + d if graph != "none" else 0  # W_att^n, b_att^n (eq. 7)
    graphs = (f_a + f_d + n_sa * w_att) if share_graph else n_sa * (f_a + f_d + w_att)
    return xlmr_by_hand(size) + copies * layer_by_hand(d, s["ffn"]) + graphs + 2 * head


def budget_rows():
    """(label, flags, {lang: (base multiple, large multiple)}, paper) for the table of docs/design.md."""
    ref = {size: xlmr(size) for size in SIZES}
    ratio = lambda counts: tuple(counts[s] / ref[s] for s in SIZES)  # noqa: E731
    rows = [("target stream only", "`--no-fusion`",
             {"none": ratio({s: grafusion(s, no_fusion=True) for s in SIZES})}, ""),
            ("XLM-R translate-train", "`--arch xlmr_translate_train_{base,large}`",
             {"none": ratio({s: filter_model(s, 0) for s in SIZES})}, ""),
            ("FILTER", "`--arch filter_{base,large}`",
             {"none": ratio({s: filter_model(s, 10 if s == "base" else 20) for s in SIZES})}, "1.02")]
    for label, flags, graph, share, paper in GRAPH_ROWS:
        cells = {lang: ratio({s: grafusion(s, graph, share, lang) for s in SIZES}) for lang in LANG}
        rows.append((label, f"`{flags}`", cells, paper))
    return rows


def budget_table(rows):
    lines = ["| variant | flags | per-language bottom and top | one shared (`--share-lang-layers "
             "bottom` or `top`) | both shared (`--share-lang-layers both`) | paper |",
             "|---|---|---|---|---|---|"]
    for label, flags, cells, paper in rows:
        text = [" / ".join(f"{x:.3f}" for x in cells[lang]) if lang in cells else "—" for lang in LANG]
        lines.append(f"| {label} | {flags} | " + " | ".join(text) + f" | {paper or '—'} |")
    return "\n".join(lines)


def test_xlmr_reference_is_the_released_size():
    assert xlmr("base") == xlmr_by_hand("base") == 277_452_288
    assert xlmr("large") == xlmr_by_hand("large") == 558_839_808


@pytest.mark.parametrize("size", list(SIZES))
def test_counts_of_the_built_models_match_the_hand_count(size):
    assert grafusion(size, no_fusion=True) == grafusion_by_hand(size, "none", False, "none", True)
    head = 2 * SIZES[size]["d"] + 2
    assert filter_model(size, 0) == filter_model(size, 10) == xlmr_by_hand(size) + head
    for _, _, graph, share, _ in GRAPH_ROWS:
        for lang in ("none", "bottom", "top", "both"):
            built = grafusion(size, graph, share, lang)
            assert built == grafusion_by_hand(size, graph, share, lang), (graph, share, lang)


def test_readme_table_is_the_computed_one():
    text = open(TABLE_PAGE, encoding="utf-8").read()
    m = re.search(r"<!-- param-budget -->\n(.*?)\n<!-- /param-budget -->", text, re.S)
    assert m, "docs/design.md lacks the <!-- param-budget --> table"
    assert m.group(1).strip() == budget_table(budget_rows())


# -- sharing computes what tied weights compute -------------------------------------------------
def tiny(**kw):
    return GraFusionConfig(encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=4,
                           sa_layers=3, graph="align,dep", dropout=0.0, attention_dropout=0.0, **kw)


@pytest.fixture(scope="module")
def batch(marker_data):
    from fairseq_grafusion.data import GraphPairDataset, PairReader
    from fairseq_grafusion.tasks.graph_pair_task import load_task_dictionary

    dictionary = load_task_dictionary(marker_data)
    dataset = GraphPairDataset(PairReader(os.path.join(marker_data, "valid")), dictionary.pad())
    return dictionary, dataset.collater([dataset[i] for i in range(6)])


def test_shared_model_equals_the_unshared_one_with_tied_weights(batch):
    dictionary, sample = batch
    torch.manual_seed(0)
    full = GraFusionModel(tiny(), dictionary).eval()
    shared = GraFusionModel(tiny(share_sa_graph=True, share_lang_layers="both"), dictionary).eval()
    assert n_params(shared) < n_params(full)
    graphs = [layer.graph for layer in shared.sa_layers]
    assert all(g.f_a is graphs[0].f_a and g.f_d is graphs[0].f_d for g in graphs)
    assert len({id(g.W_att) for g in graphs}) == len(graphs)  # W_att^n stays per layer (eq. 7)
    assert shared.src_bottom is shared.tgt_bottom and shared.src_top is shared.tgt_top

    # an unshared checkpoint cannot go into the shared model: one of two tensors would be lost
    with pytest.raises(GraFusionError, match=r"trained without --share-sa-graph / --share-lang-layers"):
        shared.load_state_dict(full.state_dict())

    # tie the unshared model's weights by hand, then both models are the same function
    with torch.no_grad():
        for layer in full.sa_layers[1:]:
            for name in ("f_a", "f_d"):
                getattr(layer.graph, name).load_state_dict(getattr(full.sa_layers[0].graph, name).state_dict())
        full.src_bottom.load_state_dict(full.tgt_bottom.state_dict())
        full.src_top.load_state_dict(full.tgt_top.state_dict())
    shared.load_state_dict(full.state_dict())
    with torch.no_grad():
        want, got = full(**sample["net_input"]), shared(**sample["net_input"])
    for key in ("src_start", "src_end", "tgt_start", "tgt_end"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-5)
    # and a shared checkpoint loads into an unshared model (each copy gets the shared value)
    again = GraFusionModel(tiny(), dictionary).eval()
    again.load_state_dict(shared.state_dict())
    torch.testing.assert_close(again.src_bottom.fc1.weight, shared.tgt_bottom.fc1.weight)


if __name__ == "__main__":
    sys.stdout.write(budget_table(budget_rows()) + "\n")
