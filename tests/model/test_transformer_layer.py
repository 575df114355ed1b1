"""The SA-Transformer layer: XLM-R's layer when G = 0, and softmax(QK^T/sqrt(d_k) + G)V with G."""
import argparse
import math

import pytest
import torch
from fairseq.modules import TransformerEncoderLayer

from fairseq_grafusion.modules import TransformerLayer

DIM, FFN, HEADS = 16, 32, 4


def fairseq_layer():
    args = argparse.Namespace(
        encoder_embed_dim=DIM, encoder_ffn_embed_dim=FFN, encoder_attention_heads=HEADS,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, activation_fn="gelu",
        encoder_normalize_before=False)
    return TransformerEncoderLayer(args)


def batch(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 7, DIM, generator=g)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[1, 5:] = True
    pad[2, 3:] = True
    return x, pad


def test_same_parameters_and_outputs_as_fairseq_encoder_layer():
    torch.manual_seed(0)
    theirs = fairseq_layer().eval()
    ours = TransformerLayer(DIM, FFN, HEADS).eval()
    assert set(ours.state_dict()) == set(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x, pad = batch(1)
    ref = theirs(x.transpose(0, 1), pad).transpose(0, 1)
    out, _ = ours(x, pad)
    keep = ~pad
    torch.testing.assert_close(out[keep], ref[keep], rtol=1e-5, atol=1e-5)


def reference_biased_layer(layer, x, pad, G):
    """softmax(QK^T / sqrt(d_k) + G) V per example and head, then XLM-R's post-norm block."""
    a = layer.self_attn
    dh = DIM // HEADS
    out = torch.zeros_like(x)
    for b in range(x.size(0)):
        q, k, v = a.q_proj(x[b]), a.k_proj(x[b]), a.v_proj(x[b])
        heads = []
        for h in range(HEADS):
            sl = slice(h * dh, (h + 1) * dh)
            logits = q[:, sl] @ k[:, sl].T / math.sqrt(dh) + G[b]
            logits[:, pad[b]] = float("-inf")
            heads.append(torch.softmax(logits, -1) @ v[:, sl])
        attn = a.out_proj(torch.cat(heads, -1))
        y = layer.self_attn_layer_norm(x[b] + attn)
        out[b] = layer.final_layer_norm(y + layer.fc2(layer.activation_fn(layer.fc1(y))))
    return out


def test_additive_bias_in_every_head_matches_loop():
    torch.manual_seed(2)
    layer = TransformerLayer(DIM, FFN, HEADS).eval()
    x, pad = batch(3)
    G = torch.randn(3, 7, 7) * 3
    out, _ = layer(x, pad, bias=G)
    ref = reference_biased_layer(layer, x, pad, G)
    keep = ~pad
    torch.testing.assert_close(out[keep], ref[keep], rtol=1e-5, atol=1e-5)
    plain, _ = layer(x, pad)
    assert (plain[keep] - out[keep]).abs().max() > 1e-2  # the bias is not lost


def test_explicit_weights_path_equals_fused_path():
    torch.manual_seed(4)
    layer = TransformerLayer(DIM, FFN, HEADS).eval()
    x, pad = batch(5)
    G = torch.randn(3, 7, 7)
    fused, _ = layer(x, pad, bias=G)
    explicit, weights = layer(x, pad, bias=G, need_weights=True)
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-5)
    assert weights.shape == (3, HEADS, 7, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, HEADS, 7))
    assert (weights[2, :, :, 3:] == 0).all()  # padded keys get no attention


def _graph_input(pad, seed):
    """One word per token (-1 on padding) and random undirected edges among each example's words."""
    g = torch.Generator().manual_seed(seed)
    word_ids = torch.arange(pad.size(1)).repeat(pad.size(0), 1).masked_fill(pad, -1)
    edges = torch.stack([torch.randint(0, int((~p).sum()), (6, 2), generator=g) for p in pad])
    return dict(word_ids=word_ids, align_edges=edges, dep_edges=edges.flip(-1))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("padded", [True, False])
def test_G_padded_in_place_in_inference_equals_the_copying_path(training, padded):
    """Inference pads G in place (no copy); outputs equal the copying path that training takes,
    both equal the per-head loop reference, and training gradients are the loop's gradients."""
    from fairseq_grafusion.modules import SAGraph, SATransformerLayer

    torch.manual_seed(6)
    layer = SATransformerLayer(DIM, FFN, HEADS, graph=SAGraph(DIM, max_bias=2.0), dropout=0.0,
                               attention_dropout=0.0).train(training)
    x, pad = batch(7)
    if not padded:
        pad = torch.zeros_like(pad)
    graph_input = _graph_input(pad, 8)
    # the copying path: parameters require grad
    out, _, G_returned = layer(x, pad, graph_input)
    assert G_returned is None  # G is only returned with the attention weights
    G = layer.graph(x, **graph_input)
    ref = reference_biased_layer(layer, x, pad, G)
    keep = ~pad
    torch.testing.assert_close(out[keep], ref[keep], rtol=1e-5, atol=1e-5)
    # gradients of the copying path are the loop's
    grads = torch.autograd.grad(out[keep].square().sum(), list(layer.parameters()))
    ref_grads = torch.autograd.grad(ref[keep].square().sum(), list(layer.parameters()))
    for name, a, b in zip([n for n, _ in layer.named_parameters()], grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    # the in-place path: no grad
    with torch.no_grad():
        out_inference, _, _ = layer(x, pad, graph_input)
        out_weights, weights, G_kept = layer(x, pad, graph_input, need_weights=True)
    torch.testing.assert_close(out_inference, out.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out_weights, out.detach(), rtol=1e-5, atol=1e-5)
    # with the weights, G comes back as computed: not padded with -inf
    assert torch.isfinite(G_kept).all() and torch.equal(G_kept, G.detach())


def test_a_callers_bias_is_never_modified():
    """TransformerLayer pads a bias it is given in a copy, in inference too."""
    layer = TransformerLayer(DIM, FFN, HEADS).eval()
    x, pad = batch(9)
    G = torch.randn(3, 7, 7)
    before = G.clone()
    with torch.no_grad():
        layer(x, pad, bias=G)
    assert torch.equal(G, before)
