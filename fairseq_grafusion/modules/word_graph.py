"""Token <-> word-node plumbing for the SA-Graph, vectorised over the whole batch.

A batch of ``B`` sequences with ``W`` word slots each (default ``W = T``, the tokens: an example
never has more words than tokens; the SA-Graph uses the batch's own word count,
:func:`count_words`) has ``B * (W + 1)`` node slots: slot ``b * (W + 1) + w`` is word ``w`` of
example ``b``, and slot ``b * (W + 1) + W`` is a *trash* slot that receives padding tokens and
padding edges (index -1).
Edges touching the trash slot only connect it to itself and its state is never read back into a
real token, so padding needs no boolean indexing (no host synchronisation) and no Python loop over
examples or edges.
"""
import torch


def gather(rows, index):
    """``rows[index]`` along dim 0 for any index shape; ``index_select`` backpropagates with
    ``index_add_``, much faster on CPU than advanced indexing's accumulate."""
    return rows.index_select(0, index.reshape(-1)).view(*index.shape, *rows.shape[1:])


def count_words(word_ids, *edges):
    """Word slots a batch needs: ``1 +`` the largest word id of its tokens and of its ``edges``
    (an edge never points into another example's slots).  Reading it is one host
    synchronisation on a GPU; the batches of :class:`~fairseq_grafusion.data.GraphPairDataset`
    carry it (``net_input["num_words"]``, counted on the host)."""
    tops = [t.max() for t in (word_ids, *edges) if t.numel()]
    return int(torch.stack(tops).max()) + 1 if tops else 0


def local_index(word_ids, num_words=None):
    """Node slot of every token within its example, ``(B, T)``: its word, or the trash slot
    ``num_words`` (default ``T``) for padding (-1)."""
    trash = word_ids.size(1) if num_words is None else num_words
    return torch.where(word_ids < 0, torch.full_like(word_ids, trash), word_ids)


def node_index(word_ids, num_words=None):
    """Flat node slot of every token, and the number of slots; ``word_ids`` (B, T) holds -1 for
    padding; ``num_words``: word slots per example (default T)."""
    bsz, seq_len = word_ids.shape
    slots = (seq_len if num_words is None else num_words) + 1
    offset = torch.arange(bsz, device=word_ids.device).unsqueeze(1) * slots
    return local_index(word_ids, num_words) + offset, bsz * slots


def edge_index(edges, num_words):
    """Flat node slots ``(E', 2)`` of padded per-example edges ``(B, E, 2)`` (-1 = padding), with
    ``num_words`` word slots per example (as :func:`node_index`)."""
    bsz = edges.size(0)
    slots = num_words + 1
    local = torch.where(edges < 0, torch.full_like(edges, num_words), edges)
    offset = torch.arange(bsz, device=edges.device).view(bsz, 1, 1) * slots
    return (local + offset).reshape(-1, 2)


def pool_words(x, token_nodes, num_nodes):
    """Mean of the token states of every word node: (B, T, d) -> (num_nodes, d)."""
    dim = x.size(-1)
    flat = token_nodes.reshape(-1)
    sums = x.new_zeros(num_nodes, dim).index_add_(0, flat, x.reshape(-1, dim))
    counts = x.new_zeros(num_nodes).index_add_(0, flat, x.new_ones(flat.numel()))
    return sums / counts.clamp(min=1).unsqueeze(-1)


def broadcast_to_tokens(node_states, token_nodes, pad_mask=None):
    """Give every token the state of its word node: (num_nodes, d) -> (B, T, d)."""
    out = gather(node_states, token_nodes)
    if pad_mask is not None:
        out = out.masked_fill(pad_mask.unsqueeze(-1), 0)
    return out


def word_pairs_to_tokens(pair_values, local):
    """Token-pair values from word-pair values: ``out[b, t, s] = pair_values[b, n(t), n(s)]`` with
    ``n = local`` (B, T), :func:`local_index`; ``pair_values`` (B, W + 1, W + 1).  Two gathers
    (their backward is a scatter-add), no ``(B, T, T)`` index."""
    bsz, seq_len = local.shape
    slots = pair_values.size(-1)
    rows = pair_values.gather(1, local.unsqueeze(-1).expand(bsz, seq_len, slots))  # (B, T, W + 1)
    return rows.gather(2, local.unsqueeze(1).expand(bsz, seq_len, seq_len))


def both_directions(pairs):
    """Undirected edges as directed (receiver, sender) pairs: (E, 2) -> (2E, 2)."""
    return torch.cat([pairs, pairs.flip(-1)], dim=0)


def neighbour_mean(h, pairs):
    """``avg{h_j : j in N(i)}`` for every node over directed pairs (receiver, sender).

    Nodes without a neighbour get a zero vector (eq. 9: no aligned word, no aligned information).
    """
    receiver, sender = pairs[:, 0], pairs[:, 1]
    sums = torch.zeros_like(h).index_add_(0, receiver, gather(h, sender))
    counts = h.new_zeros(h.size(0)).index_add_(0, receiver, h.new_ones(receiver.numel()))
    return sums / counts.clamp(min=1).unsqueeze(-1)


def segment_softmax(scores, receiver, num_nodes):
    """Softmax of edge scores over the edges that share a receiver (eq. 11's normaliser).

    Computed in float32 and returned in the scores' dtype: half-precision sums over many edges
    lose precision, and under autocast ``exp`` runs in float32 whatever its input."""
    dtype, scores = scores.dtype, scores.float()
    top = scores.new_full((num_nodes,), float("-inf")).scatter_reduce(
        0, receiver, scores.detach(), reduce="amax", include_self=True)
    exp = (scores - gather(top, receiver)).exp()
    denom = scores.new_zeros(num_nodes).index_add_(0, receiver, exp)
    return (exp / gather(denom, receiver)).to(dtype)
