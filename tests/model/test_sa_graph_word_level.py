"""``G`` computed per word pair over the batch's own word slots (issue 25) against the token-level
formulation it replaced: the same bias and gradients on random batches, the collater's word
count, and ``fairseq-train`` losses update by update."""
import os
import re
import textwrap

import pytest
import torch
from test_sa_graph import DIM, perturb, random_batch

from conftest import REPO, run_module, train_args
from fairseq_grafusion.modules import SAGraph, word_graph


def token_level_G(graph, x, word_ids, align_edges, dep_edges, num_words=None):
    """The previous formulation, kept as the reference: ``T + 1`` node slots per example (every
    token could be a word), ``G = p_tok p_tok^T`` over token pairs (eq. 7 broadcast to the
    tokens of each word), padding tokens' factors 0, then clamped."""
    seq_len = x.size(1)
    token_nodes, num_nodes = word_graph.node_index(word_ids)
    h = word_graph.pool_words(x, token_nodes, num_nodes)
    align_pairs = word_graph.both_directions(word_graph.edge_index(align_edges, seq_len))
    dep_pairs = word_graph.both_directions(word_graph.edge_index(dep_edges, seq_len))
    f = graph.node_features(h, align_pairs, dep_pairs)
    p = graph.W_att(f) * (graph.scale ** 0.5)
    p_tok = word_graph.broadcast_to_tokens(p, token_nodes, word_ids < 0)
    return torch.bmm(p_tok, p_tok.transpose(1, 2)).clamp(-graph.max_bias, graph.max_bias)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("aggregation", ["mean", "concat", "weighted_sum", "max"])
def test_word_level_G_and_its_gradients_equal_the_token_level_product(seed, aggregation):
    torch.manual_seed(seed)
    graph = SAGraph(DIM, aggregation=aggregation, max_bias=3.0)
    perturb(graph)
    x, word_ids, align, dep, _ = random_batch(seed, bsz=4, max_len=16)
    x.requires_grad_(True)
    outputs = []
    for fn in (graph, lambda *a: token_level_G(graph, *a)):
        graph.zero_grad()
        x.grad = None
        G = fn(x, word_ids, align, dep)
        weight = torch.randn(G.shape, generator=torch.Generator().manual_seed(seed))
        (G * weight).sum().backward()
        grads = [x.grad.clone()] + [p.grad.clone() for p in graph.parameters() if p.grad is not None]
        outputs.append((G.detach(), grads))
    (new, new_grads), (old, old_grads) = outputs
    assert (old.abs() == graph.max_bias).any()  # the clamp is exercised
    torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-6)
    assert len(new_grads) == len(old_grads)
    for a, b in zip(new_grads, old_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_more_word_slots_than_needed_change_nothing_and_edges_count():
    """``num_words`` may exceed the batch's words (unused slots are never read); the default
    count covers edges that point past the tokens' last word, so no edge reaches another
    example's slots."""
    torch.manual_seed(0)
    graph = SAGraph(DIM).eval()
    x, word_ids, align, dep, n_words = random_batch(3, bsz=3)
    with torch.no_grad():
        exact = graph(x, word_ids, align, dep)
        torch.testing.assert_close(graph(x, word_ids, align, dep, num_words=max(n_words) + 5), exact)
    assert word_graph.count_words(word_ids, align, dep) == max(n_words)
    beyond = dep.clone()
    beyond[0, 0] = torch.tensor([0, max(n_words) + 2])
    assert word_graph.count_words(word_ids, align, beyond) == max(n_words) + 3
    with torch.no_grad():
        ref = token_level_G(graph, x, word_ids, align, beyond)
        torch.testing.assert_close(graph(x, word_ids, align, beyond), ref, rtol=1e-5, atol=1e-6)


def test_the_collater_counts_word_slots_so_the_model_never_reads_them_back(sample_run, monkeypatch):
    """``net_input["num_words"]`` is the batch's count (as ``count_words`` gives it); the model
    given it does not count (on a GPU that read is a host synchronisation) and answers as when it
    counts itself."""
    from fairseq.data import Dictionary

    from fairseq_grafusion.data import GraphPairDataset, PairReader
    from fairseq_grafusion.models.grafusion import GraFusionConfig, GraFusionModel

    data = sample_run[0] / "qa-bin"
    dictionary = Dictionary.load(str(data / "dict.txt"))
    dataset = GraphPairDataset(PairReader(str(data / "valid")), dictionary.pad(), shuffle=False)
    batch = dataset.collater([dataset[i] for i in range(8)])
    net = batch["net_input"]
    assert net["num_words"] == word_graph.count_words(net["word_ids"], net["align_edges"], net["dep_edges"])
    assert net["num_words"] < net["word_ids"].size(1)  # fewer node slots than tokens
    torch.manual_seed(0)
    model = GraFusionModel(GraFusionConfig(sa_layers=2, graph="align,dep", encoder_embed_dim=16,
                                           encoder_ffn_embed_dim=32, encoder_attention_heads=2), dictionary).eval()
    with torch.no_grad():
        counted = model(**{k: v for k, v in net.items() if k != "num_words"})
        monkeypatch.setattr(word_graph, "count_words", lambda *a: pytest.fail("counted again"))
        given = model(**net)
    for key in counted:
        torch.testing.assert_close(given[key], counted[key])


PATCH = textwrap.dedent("""
    import sys
    sys.path[:0] = [{tests!r}, {model_tests!r}]
    from fairseq_cli.train import cli_main  # first: it sets up fairseq's log format
    import fairseq_grafusion.plugin  # what --user-dir imports: the task, model and criterion
    from fairseq_grafusion.modules import SAGraph
    from test_sa_graph_word_level import token_level_G
    SAGraph.forward = token_level_G
    sys.argv = ["fairseq-train"] + sys.argv[1:]
    cli_main()
""")


def test_training_losses_equal_the_token_level_formulation_update_by_update(sample_run, tmp_path):
    """``fairseq-train --graph align,dep`` on the sample, 8 updates, with the module as it is and
    with the token-level formulation patched in: the same loss at every update (as logged, 3
    decimals) and the same weights at the end, to float tolerance."""
    data = str(sample_run[0] / "qa-bin")
    script = tmp_path / "token_level_train.py"
    script.write_text(PATCH.format(tests=os.path.join(REPO, "tests"), model_tests=os.path.join(REPO, "tests", "model")))
    runs = {}
    for name, command in (("word", "fairseq_cli.train"), ("token", str(script))):
        save = tmp_path / name
        args = train_args(data, str(save), "--graph", "align,dep", "--disable-validation",
                          "--log-interval", "1", updates=8)
        proc = run_module(command, *args, env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = (re.findall(r"\| train_inner \|.* loss=([0-9.]+)", proc.stdout + proc.stderr),
                      torch.load(save / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"])
    (word_losses, word_state), (token_losses, token_state) = runs["word"], runs["token"]
    word_losses, token_losses = (list(map(float, losses)) for losses in (word_losses, token_losses))
    assert len(word_losses) == 8 and word_losses == pytest.approx(token_losses, abs=2e-3)
    assert word_losses[0] != word_losses[-1]  # it trained
    assert word_state.keys() == token_state.keys()
    # the span heads' biases and the top layers' last LayerNorm bias shift every position's logit
    # by one constant, which the span softmax ignores: their true gradient is 0, and Adam turns
    # the float noise left in it into steps of +-lr in both runs alike
    shift_only = {f"{lang}_span_head.bias" for lang in ("src", "tgt")} | \
        {f"{lang}_top.final_layer_norm.bias" for lang in ("src", "tgt")}
    for key in word_state.keys() - shift_only:
        torch.testing.assert_close(word_state[key], token_state[key], rtol=1e-4, atol=1e-6,
                                   msg=lambda m, key=key: f"{key}: {m}")
