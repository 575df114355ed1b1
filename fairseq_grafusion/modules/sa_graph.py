"""The SA-Graph (paper sections 3.2-3.3): word nodes, alignment and dependency edges, and the
attention bias ``G`` it gives one SA-Transformer layer.

Shapes: ``h`` is ``(num_nodes, d)`` flat over the batch (see :mod:`.word_graph`); edge pairs are
``(E, 2)`` directed ``(receiver i, sender j)`` flat node slots.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import word_graph

AGGREGATIONS = ("mean", "concat", "weighted_sum", "max")


class AlignmentGate(nn.Module):
    """``f_a`` (eq. 9): a gate decides how much of the aligned words' mean enters word ``i``.

    ``g = sigmoid(V1 h_i + W1 hbar)``, ``f_a = (1 - g) * V2 h_i + g * W2 hbar`` with
    ``hbar = avg{h_j : j in N_a(i)}`` (zero for a word with no aligned neighbour).
    ``force_gate`` (None, or a value in [0, 1]) replaces ``g`` for analysis and tests.
    """

    def __init__(self, dim):
        super().__init__()
        self.V1 = nn.Linear(dim, dim, bias=False)
        self.W1 = nn.Linear(dim, dim, bias=False)
        self.V2 = nn.Linear(dim, dim, bias=False)
        self.W2 = nn.Linear(dim, dim, bias=False)
        self.force_gate = None

    def forward(self, h, align_pairs):
        hbar = word_graph.neighbour_mean(h, align_pairs)
        if self.force_gate is None:
            gate = torch.sigmoid(self.V1(h) + self.W1(hbar))
        else:
            gate = torch.full_like(h, float(self.force_gate))
        return (1 - gate) * self.V2(h) + gate * self.W2(hbar)


class DependencyGAT(nn.Module):
    """``f_d`` (eq. 10-11): graph attention over dependency neighbours (self-loop included).

    ``alpha_iu = softmax_u LeakyReLU(W4 [h_i; h_u])``, ``f_d = sigmoid(sum_u alpha_iu W3 h_u)``.
    """

    def __init__(self, dim, negative_slope=0.2):
        super().__init__()
        self.W3 = nn.Linear(dim, dim, bias=False)
        self.W4 = nn.Linear(2 * dim, 1, bias=False)
        self.negative_slope = negative_slope

    def forward(self, h, dep_pairs):
        num_nodes, dim = h.shape
        loops = torch.arange(num_nodes, device=h.device).unsqueeze(1).expand(-1, 2)
        pairs = torch.cat([dep_pairs, loops], dim=0)
        receiver, sender = pairs[:, 0], pairs[:, 1]
        # W4 [h_i; h_u] = a_i . h_i + a_u . h_u, computed per node then gathered per edge
        a_recv, a_send = self.W4.weight[0, :dim], self.W4.weight[0, dim:]
        gather = word_graph.gather
        scores = F.leaky_relu(gather(h @ a_recv, receiver) + gather(h @ a_send, sender),
                              self.negative_slope)
        alpha = word_graph.segment_softmax(scores, receiver, num_nodes)
        messages = alpha.unsqueeze(-1) * gather(self.W3(h), sender)
        # messages, not h, give the dtype: under autocast W3 runs in half precision
        return torch.sigmoid(messages.new_zeros(h.shape).index_add_(0, receiver, messages))


class SAGraph(nn.Module):
    """``G`` for one SA-Transformer layer (eq. 6-8 and 7).

    ``f = F(h, N)`` combines ``f_a`` and ``f_d`` (eq. 8: their mean by default; appendix B:
    concat + W_cat, a learnt weighted sum, element-wise max); with only one edge type in use,
    ``f`` is that one.  ``G_ij = scale * (W_att f_i + b) . (W_att f_j + b)``, computed at word
    level and broadcast to the tokens of each word.  ``scale`` defaults to ``1/sqrt(d)``; it is
    applied as ``sqrt(scale)`` to each factor before the product so that the product itself stays in
    fp16 range, and the result is clamped to ``[-max_bias, max_bias]``.

    ``share_from`` (another ``SAGraph``): use its ``f_a``, ``f_d`` and ``F`` (``W_cat`` /
    ``mix_logits``) instead of new ones and keep only ``W_att, b_att`` of this layer: eq. 7
    indexes ``W_att^n`` and ``G^n`` by layer, eq. 9-11 give ``V1 .. W4`` no layer index.  ``f`` is
    still computed from this layer's own input ``h_{i,n}`` (eq. 6).
    """

    def __init__(self, dim, use_align=True, use_dep=True, aggregation="mean", scale=None,
                 max_bias=50.0, share_from=None):
        super().__init__()
        if not (use_align or use_dep):
            raise ValueError("an SA-Graph needs alignment or dependency edges")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown graph aggregation {aggregation!r}; choose from {AGGREGATIONS}")
        self.aggregation = aggregation
        if share_from is not None:
            if (share_from.f_a is None) == use_align or (share_from.f_d is None) == use_dep \
                    or share_from.aggregation != aggregation:
                raise ValueError("share_from must be an SA-Graph with the same edges and aggregation")
            self.f_a, self.f_d = share_from.f_a, share_from.f_d
            for name in ("W_cat", "mix_logits"):
                if hasattr(share_from, name):
                    setattr(self, name, getattr(share_from, name))
        else:
            self.f_a = AlignmentGate(dim) if use_align else None
            self.f_d = DependencyGAT(dim) if use_dep else None
            if use_align and use_dep and aggregation == "concat":
                self.W_cat = nn.Linear(2 * dim, dim, bias=False)
            if use_align and use_dep and aggregation == "weighted_sum":
                self.mix_logits = nn.Parameter(torch.zeros(2))
        self.W_att = nn.Linear(dim, dim)
        self.scale = dim ** -0.5 if scale is None else scale
        self.max_bias = max_bias

    def node_features(self, h, align_pairs, dep_pairs):
        """``f`` of every node (eq. 8)."""
        if self.f_d is None:
            return self.f_a(h, align_pairs)
        if self.f_a is None:
            return self.f_d(h, dep_pairs)
        f_a, f_d = self.f_a(h, align_pairs), self.f_d(h, dep_pairs)
        if self.aggregation == "mean":
            return (f_a + f_d) / 2
        if self.aggregation == "concat":
            return self.W_cat(torch.cat([f_a, f_d], dim=-1))
        if self.aggregation == "weighted_sum":
            w = torch.softmax(self.mix_logits, dim=0).to(f_a.dtype)
            return w[0] * f_a + w[1] * f_d
        return torch.maximum(f_a, f_d)

    def forward(self, x, word_ids, align_edges, dep_edges, num_words=None):
        """Token-level bias ``G`` (B, T, T) for the hidden states ``x`` (B, T, d).

        ``word_ids`` (B, T): word node of each token (-1: padding); ``align_edges`` and
        ``dep_edges`` (B, E, 2): undirected word pairs, -1 rows are padding; ``num_words``: word
        slots per example, more than any word id of the tokens and edges (default: counted,
        :func:`.word_graph.count_words`).

        Nodes are the batch's words, not its tokens (``W + 1`` slots per example, the last the
        padding's), and ``G`` is computed per word pair (``W^2 d`` multiply-adds, clamped there)
        and then gathered to the token pairs: the same values as the token-level product of eq. 7
        broadcast to each word's tokens, with padding tokens' rows and columns 0.
        """
        if num_words is None:
            num_words = word_graph.count_words(word_ids, align_edges, dep_edges)
        bsz, slots = x.size(0), num_words + 1
        token_nodes, num_nodes = word_graph.node_index(word_ids, num_words)
        h = word_graph.pool_words(x, token_nodes, num_nodes)
        align_pairs = word_graph.both_directions(word_graph.edge_index(align_edges, num_words))
        dep_pairs = word_graph.both_directions(word_graph.edge_index(dep_edges, num_words))
        f = self.node_features(h, align_pairs, dep_pairs)
        p = (self.W_att(f) * (self.scale ** 0.5)).view(bsz, slots, -1)
        word = (torch.arange(slots, device=x.device) < num_words).to(p.dtype)
        p = p * word.unsqueeze(-1)  # the padding slot's factor is 0: its rows and columns of G too
        pair = torch.bmm(p, p.transpose(1, 2))  # (B, W + 1, W + 1)
        if torch.is_grad_enabled() and pair.requires_grad:
            pair = pair.clamp(-self.max_bias, self.max_bias)
        else:
            pair = pair.clamp_(-self.max_bias, self.max_bias)  # inference: no copy
        return word_graph.word_pairs_to_tokens(pair, word_graph.local_index(word_ids, num_words))
