"""The memory estimate (fairseq_grafusion.memory) against the bytes autograd really keeps, and
activation checkpointing (--checkpoint-activations) against the plain run."""
import argparse

import pytest
import torch
from fairseq.data import Dictionary
from fairseq.models import ARCH_CONFIG_REGISTRY
from omegaconf import OmegaConf

import fairseq_grafusion.plugin  # noqa: F401  (registers the plugin)
from fairseq_grafusion import memory
from fairseq_grafusion.models.grafusion import GraFusionConfig, GraFusionModel


def build(checkpoint=False, sizes=(64, 128, 4, 2), vocab=300, **variant):
    dim, ffn, heads, n_sa = sizes
    args = argparse.Namespace(encoder_embed_dim=dim, encoder_ffn_embed_dim=ffn,
                              encoder_attention_heads=heads, sa_layers=n_sa,
                              checkpoint_activations=checkpoint, **variant)
    ARCH_CONFIG_REGISTRY["grafusion_tiny"](args)
    cfg = OmegaConf.merge(OmegaConf.structured(GraFusionConfig()), vars(args))
    d = Dictionary()
    for i in range(vocab - len(d)):
        d.add_symbol(f"w{i}")
    return GraFusionModel(cfg, d)


def batch(bsz, length, words, n_align, n_dep, seed=0):
    """Random tokens; every example has ``words`` words per stream and exactly ``n_align`` /
    ``n_dep`` distinct undirected edges (no padding rows, so the estimate's counts are exact)."""
    g = torch.Generator().manual_seed(seed)
    side = torch.arange(length) * words // length
    word_ids = torch.cat([side, side + words]).repeat(bsz, 1)
    align = torch.stack([torch.arange(n_align), words + torch.randperm(words, generator=g)[:n_align]], 1)
    pairs = torch.combinations(torch.arange(words), 2)[:n_dep]
    return dict(src_tokens=torch.randint(4, 300, (bsz, length), generator=g),
                tgt_tokens=torch.randint(4, 300, (bsz, length), generator=g),
                word_ids=word_ids, align_edges=align.repeat(bsz, 1, 1),
                dep_edges=torch.cat([pairs, pairs + words])[:n_dep].repeat(bsz, 1, 1))


def loss_of(out):
    target = torch.zeros(out["tgt_start"].size(0), dtype=torch.long)
    return sum(torch.nn.functional.cross_entropy(out[k], target) for k in out if k.endswith(("start", "end")))


def saved_activation_bytes(model, net_input):
    """Bytes of the distinct storages autograd saves in a training forward, parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss_of(model(**net_input))
    return sum(seen.values())


@pytest.mark.parametrize("sizes,length,bsz,graph", [
    ((64, 128, 4, 2), 32, 2, "align,dep"),
    ((96, 256, 4, 1), 48, 1, "align,dep"),
    ((64, 192, 8, 3), 24, 3, "none"),
])
def test_estimate_matches_saved_activations_on_cpu(sizes, length, bsz, graph):
    torch.manual_seed(0)
    model = build(sizes=sizes, graph=graph).train()
    words, n_align, n_dep = length * 3 // 4, length // 2, length
    measured = saved_activation_bytes(model, batch(bsz, length, words, n_align, n_dep)) / bsz
    estimate = memory.activation_bytes(length, sizes=sizes, graph=graph != "none",
                                       prec=memory.Precision.of("cpu", 4),
                                       align_edges=n_align, dep_edges=n_dep)
    print(f"estimate {estimate:.0f} B, measured {measured:.0f} B per example")
    assert abs(estimate - measured) / measured < 0.03, (estimate, measured)


def test_checkpointing_gives_the_same_gradients():
    """Same seed, dropout on: the recomputed forward replays the RNG, so every gradient is the
    plain run's."""
    net_input = batch(2, 20, 15, 10, 18)
    grads = []
    for checkpoint in (False, True):
        torch.manual_seed(0)
        model = build(checkpoint=checkpoint).train()
        torch.manual_seed(1)
        loss = loss_of(model(**net_input))
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    plain, ckpt = grads
    assert plain.keys() == ckpt.keys() and len(plain) > 50
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)


def test_checkpointing_keeps_fewer_activations():
    """Checkpointed layers keep only their inputs: the saved bytes fall to the embedding / head
    part the estimate gives, and the estimate with checkpointing is far below the plain one."""
    torch.manual_seed(0)
    net_input = batch(2, 32, 24, 16, 32)
    plain = saved_activation_bytes(build().train(), net_input)
    ckpt = saved_activation_bytes(build(checkpoint=True).train(), net_input)
    assert ckpt < plain / 4, (ckpt, plain)
    sizes = memory.ARCH_SIZES["grafusion_base"]
    full = memory.activation_bytes(384, sizes=sizes)
    assert memory.activation_bytes(384, sizes=sizes, checkpoint=True) < full / 3


def test_max_batch_grows_with_the_card():
    params = 327_000_000
    batches = [memory.max_batch(gib * 2 ** 30, params, 384, arch="grafusion_base") for gib in (16, 40, 80)]
    assert 0 < batches[0] < batches[1] < batches[2]
    assert memory.max_batch(16 * 2 ** 30, params, 384, arch="grafusion_base", checkpoint=True) > batches[0]


def test_fairseq_train_with_checkpoint_activations_follows_the_plain_run(marker_data, tmp_path):
    """``--checkpoint-activations`` through fairseq-train: the same losses, update by update."""
    from conftest import logged, run_fairseq, train_args

    losses = []
    for flags in ([], ["--checkpoint-activations"]):
        proc = run_fairseq("train", *train_args(marker_data, str(tmp_path / f"ck{len(flags)}"),
                                                "--graph", "align,dep", "--disable-validation",
                                                *flags, updates=30))
        out = proc.stdout + proc.stderr
        losses.append(logged(out, "train_inner", "tgt_loss") + logged(out, "train_inner", "src_loss"))
    assert len(losses[0]) == 6 and losses[0] == losses[1], losses
