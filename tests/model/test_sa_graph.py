"""The SA-Graph module (eq. 6-11) against slow references that loop over the equations."""
import math

import pytest
import torch

from fairseq_grafusion.modules import SAGraph, word_graph

DIM = 8


def random_batch(seed, bsz=3, max_len=12, max_edges=10):
    """Random token->word maps (padding -1) and random undirected edges (padding -1 rows)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, max_len + 1, (bsz,), generator=g)
    seq_len = int(lengths.max())
    word_ids = torch.full((bsz, seq_len), -1, dtype=torch.long)
    n_words = []
    for b in range(bsz):
        # each word covers 1..3 consecutive tokens
        w, t = 0, 0
        while t < lengths[b]:
            span = int(torch.randint(1, 4, (1,), generator=g))
            word_ids[b, t:min(t + span, int(lengths[b]))] = w
            t += span
            w += 1
        n_words.append(w)

    def edges(count):
        out = torch.full((bsz, count, 2), -1, dtype=torch.long)
        for b in range(bsz):
            k = int(torch.randint(0, count + 1, (1,), generator=g))
            if n_words[b] > 1 and k:
                out[b, :k] = torch.randint(0, n_words[b], (k, 2), generator=g)
        return out

    x = torch.randn(bsz, seq_len, DIM, generator=g)
    return x, word_ids, edges(max_edges), edges(max_edges), n_words


def ref_words(x_b, words_b, n):
    """Mean of the token states of each word (loop)."""
    h = torch.zeros(n, x_b.size(-1))
    for w in range(n):
        toks = [t for t in range(len(words_b)) if words_b[t] == w]
        h[w] = torch.stack([x_b[t] for t in toks]).mean(0)
    return h


def ref_neighbours(edges_b, n, self_loops=False):
    """Undirected neighbour lists as multisets, padding dropped, self-loops if asked."""
    nbrs = [[] for _ in range(n)]
    for i, j in edges_b.tolist():
        if i < 0:
            continue
        nbrs[i].append(j)
        nbrs[j].append(i)
    if self_loops:
        for i in range(n):
            nbrs[i].append(i)
    return nbrs


def ref_f_a(module, h, nbrs, force_gate=None):
    """Eq. 9, node by node."""
    out = []
    for i in range(h.size(0)):
        if nbrs[i]:
            hbar = torch.stack([h[j] for j in nbrs[i]]).mean(0)
        else:
            hbar = torch.zeros_like(h[i])
        g = torch.sigmoid(module.V1.weight @ h[i] + module.W1.weight @ hbar)
        if force_gate is not None:
            g = torch.full_like(g, force_gate)
        out.append((1 - g) * (module.V2.weight @ h[i]) + g * (module.W2.weight @ hbar))
    return torch.stack(out)


def ref_f_d(module, h, nbrs):
    """Eq. 10-11, node by node (neighbours include the node itself)."""
    w4 = module.W4.weight[0]
    out = []
    for i in range(h.size(0)):
        scores = torch.stack([torch.nn.functional.leaky_relu(w4 @ torch.cat([h[i], h[u]]), 0.2)
                              for u in nbrs[i]])
        alpha = torch.exp(scores) / torch.exp(scores).sum()
        total = sum(alpha[k] * (module.W3.weight @ h[u]) for k, u in enumerate(nbrs[i]))
        out.append(torch.sigmoid(total))
    return torch.stack(out)


def ref_G(graph, x, word_ids, align, dep, n_words, use_align, use_dep):
    """Eq. 6-8 and 7 per example, then G broadcast from words to tokens with loops."""
    bsz, seq_len, _ = x.shape
    G = torch.zeros(bsz, seq_len, seq_len)
    for b in range(bsz):
        n = n_words[b]
        h = ref_words(x[b], word_ids[b].tolist(), n)
        parts = []
        if use_align:
            parts.append(ref_f_a(graph.f_a, h, ref_neighbours(align[b], n)))
        if use_dep:
            parts.append(ref_f_d(graph.f_d, h, ref_neighbours(dep[b], n, self_loops=True)))
        if len(parts) == 1:
            f = parts[0]
        elif graph.aggregation == "mean":
            f = (parts[0] + parts[1]) / 2
        elif graph.aggregation == "concat":
            f = torch.cat(parts, -1) @ graph.W_cat.weight.T
        elif graph.aggregation == "weighted_sum":
            lam = torch.softmax(graph.mix_logits, 0)
            f = lam[0] * parts[0] + lam[1] * parts[1]
        else:
            f = torch.maximum(parts[0], parts[1])
        p = f @ graph.W_att.weight.T + graph.W_att.bias
        for a in range(seq_len):
            for c in range(seq_len):
                wa, wc = int(word_ids[b, a]), int(word_ids[b, c])
                if wa >= 0 and wc >= 0:
                    G[b, a, c] = (p[wa] @ p[wc]) / math.sqrt(DIM)
    return G


def perturb(module):
    """Random weights (the default init is small) so that every term matters."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_word_pooling_matches_loop(seed):
    x, word_ids, _, _, n_words = random_batch(seed)
    nodes, total = word_graph.node_index(word_ids)
    h = word_graph.pool_words(x, nodes, total)
    slots = x.size(1) + 1
    for b in range(x.size(0)):
        ref = ref_words(x[b], word_ids[b].tolist(), n_words[b])
        torch.testing.assert_close(h[b * slots: b * slots + n_words[b]], ref)
    back = word_graph.broadcast_to_tokens(h, nodes, word_ids < 0)
    for b in range(x.size(0)):
        for t in range(x.size(1)):
            w = int(word_ids[b, t])
            expected = h[b * slots + w] if w >= 0 else torch.zeros(DIM)
            torch.testing.assert_close(back[b, t], expected)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_f_a_eq9_matches_loop_including_unaligned_nodes(seed):
    x, word_ids, align, _, n_words = random_batch(seed)
    graph = SAGraph(DIM, use_align=True, use_dep=False)
    perturb(graph)
    nodes, total = word_graph.node_index(word_ids)
    h = word_graph.pool_words(x, nodes, total)
    pairs = word_graph.both_directions(word_graph.edge_index(align, x.size(1)))
    f_a = graph.f_a(h, pairs)
    slots = x.size(1) + 1
    saw_unaligned = False
    for b in range(x.size(0)):
        hb = h[b * slots: b * slots + n_words[b]]
        nbrs = ref_neighbours(align[b], n_words[b])
        saw_unaligned |= any(not n for n in nbrs)
        torch.testing.assert_close(f_a[b * slots: b * slots + n_words[b]], ref_f_a(graph.f_a, hb, nbrs))
    assert saw_unaligned, "the random graphs should include nodes with no aligned neighbour"


@pytest.mark.parametrize("seed", [6, 7, 8])
def test_f_d_eq10_11_matches_loop_including_isolated_nodes(seed):
    x, word_ids, _, dep, n_words = random_batch(seed, max_edges=4)
    graph = SAGraph(DIM, use_align=False, use_dep=True)
    perturb(graph)
    nodes, total = word_graph.node_index(word_ids)
    h = word_graph.pool_words(x, nodes, total)
    pairs = word_graph.both_directions(word_graph.edge_index(dep, x.size(1)))
    f_d = graph.f_d(h, pairs)
    slots = x.size(1) + 1
    isolated = 0
    for b in range(x.size(0)):
        hb = h[b * slots: b * slots + n_words[b]]
        nbrs = ref_neighbours(dep[b], n_words[b], self_loops=True)
        isolated += sum(len(n) == 1 for n in nbrs)
        torch.testing.assert_close(f_d[b * slots: b * slots + n_words[b]], ref_f_d(graph.f_d, hb, nbrs))
    assert isolated > 0


@pytest.mark.parametrize("aggregation", ["mean", "concat", "weighted_sum", "max"])
@pytest.mark.parametrize("edges", [(True, True), (True, False), (False, True)])
def test_G_eq7_matches_loop(aggregation, edges):
    use_align, use_dep = edges
    for seed in (10, 11):
        x, word_ids, align, dep, n_words = random_batch(seed)
        graph = SAGraph(DIM, use_align, use_dep, aggregation=aggregation)
        perturb(graph)
        if aggregation == "weighted_sum" and use_align and use_dep:
            with torch.no_grad():
                graph.mix_logits.copy_(torch.tensor([0.3, -0.4]))
        G = graph(x, word_ids, align, dep)
        ref = ref_G(graph, x, word_ids, align, dep, n_words, use_align, use_dep)
        torch.testing.assert_close(G, ref, rtol=1e-4, atol=1e-4)


def test_gate_switches_aligned_information_off_and_on():
    x, word_ids, align, _, n_words = random_batch(20)
    graph = SAGraph(DIM, use_align=True, use_dep=False)
    perturb(graph)
    nodes, total = word_graph.node_index(word_ids)
    h = word_graph.pool_words(x, nodes, total)
    pairs = word_graph.both_directions(word_graph.edge_index(align, x.size(1)))
    pairs = pairs[pairs[:, 0] % (x.size(1) + 1) != x.size(1)]  # real edges only
    i = int(pairs[pairs[:, 0] != pairs[:, 1]][0, 0])  # a word with another aligned word
    others = [j for r, j in pairs.tolist() if r == i and j != i]
    h_other = h.clone()
    h_other[others] += torch.randn(len(others), DIM)  # change its aligned neighbours only

    graph.f_a.force_gate = 0.0
    off, off_other = graph.f_a(h, pairs), graph.f_a(h_other, pairs)
    torch.testing.assert_close(off[i], off_other[i])  # neighbours do not matter
    torch.testing.assert_close(off, h @ graph.f_a.V2.weight.T)

    graph.f_a.force_gate = 1.0
    on, on_other = graph.f_a(h, pairs), graph.f_a(h_other, pairs)
    torch.testing.assert_close(on, word_graph.neighbour_mean(h, pairs) @ graph.f_a.W2.weight.T)
    assert (on[i] - on_other[i]).abs().max() > 1e-3  # only the aligned mean passes
    assert not torch.allclose(on[i], h[i] @ graph.f_a.V2.weight.T)


def test_G_is_zero_on_padding_and_clamped():
    x, word_ids, align, dep, _ = random_batch(30)
    graph = SAGraph(DIM, max_bias=0.5)
    perturb(graph)
    G = graph(x * 100, word_ids, align, dep)
    assert G.abs().max() <= 0.5
    pad = word_ids < 0
    assert (G[pad.unsqueeze(-1).expand_as(G)] == 0).all()


def test_G_gradients_reach_every_graph_parameter():
    x, word_ids, align, dep, _ = random_batch(31)
    graph = SAGraph(DIM, aggregation="concat")
    G = graph(x, word_ids, align, dep)
    G.square().sum().backward()
    for name, p in graph.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("training", [True, False])
def test_G_clamped_in_place_in_inference_equals_the_autograd_path(training):
    """Without a gradient to compute, G is clamped in place; its values are those of the
    out-of-place clamp that training uses, and of the loop reference clamped."""
    x, word_ids, align, dep, n_words = random_batch(32)
    graph = SAGraph(DIM, max_bias=1.0).train(training)
    perturb(graph)
    G_train = graph(x, word_ids, align, dep)  # parameters require grad: out-of-place clamp
    assert G_train.requires_grad and G_train.abs().max() == 1.0  # the clamp is active
    with torch.no_grad():
        G_inference = graph(x, word_ids, align, dep)
    graph.requires_grad_(False)  # grad mode on, but nothing requires grad: in place too
    G_frozen = graph(x, word_ids, align, dep)
    assert torch.equal(G_inference, G_train.detach()) and torch.equal(G_frozen, G_inference)
    with torch.no_grad():
        ref = ref_G(graph, x, word_ids, align, dep, n_words, True, True).clamp(-1.0, 1.0)
    torch.testing.assert_close(G_inference, ref, rtol=1e-5, atol=1e-5)
