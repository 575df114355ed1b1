"""The SA-Transformer layer: XLM-R's layer when G = 0, and softmax(QK^T/sqrt(d_k) + G)V with G."""
import argparse
import math

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
