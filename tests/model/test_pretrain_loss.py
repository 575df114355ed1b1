"""The pre-training losses against loop references, the heads on the model, and loading between
pre-training and fine-tuning models in memory."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fairseq import options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

import fairseq_grafusion.plugin  # noqa: F401
from conftest import USER_DIR
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.models.pretrain_heads import PretrainingHeads, piece_positions, sa_aggregate
from fairseq_grafusion.synthetic import SyntheticXMRC


def build(data, task="sa_graph_pretrain", *extra):
    """Task, model and criterion as fairseq-train builds them."""
    criterion = "sa_graph_pretrain" if task == "sa_graph_pretrain" else "xmrc_span"
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        data, "--user-dir", USER_DIR, "--task", task, "--criterion", criterion,
        "--arch", "grafusion_tiny", "--cpu", "--batch-size", "8", *extra])
    cfg = convert_namespace_to_omegaconf(args)
    t = tasks.setup_task(cfg.task)
    model = t.build_model(cfg.model)
    return t, model, t.build_criterion(cfg.criterion)


@pytest.fixture(scope="module")
def parallel_data(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("parallel"))
    return SyntheticXMRC().write(path, splits=(("train", 64), ("valid", 16)), with_span=False)


def random_graph_batch(rng, bsz=3, dim=8):
    """word_ids over [S; T] (source padded to Ls), edges (B, E, 2) with -1 padding."""
    len_s, len_t = 9, 11
    word_ids = np.full((bsz, len_s + len_t), -1)
    aligns, deps, n_words = [], [], []
    for b in range(bsz):
        ns_tok, nt_tok = rng.randint(5, len_s + 1), rng.randint(5, len_t + 1)
        src = np.sort(rng.randint(0, ns_tok, ns_tok))
        src = np.unique(src, return_inverse=True)[1]
        tgt = np.unique(np.sort(rng.randint(0, nt_tok, nt_tok)), return_inverse=True)[1]
        ns, nt = src.max() + 1, tgt.max() + 1
        word_ids[b, :ns_tok] = src
        word_ids[b, len_s:len_s + nt_tok] = tgt + ns
        aligns.append(np.stack([rng.randint(0, ns, 4), ns + rng.randint(0, nt, 4)], 1))
        dep_s = np.stack([rng.randint(0, ns, 3), rng.randint(0, ns, 3)], 1)
        dep_t = ns + np.stack([rng.randint(0, nt, 3), rng.randint(0, nt, 3)], 1)
        dep = np.concatenate([dep_s, dep_t])
        deps.append(np.unique(np.sort(dep[dep[:, 0] != dep[:, 1]], 1), axis=0))
        aligns[-1] = np.unique(aligns[-1], axis=0)
        n_words.append(ns + nt)

    def pad(lists):
        out = np.full((bsz, max(len(x) for x in lists), 2), -1)
        for b, x in enumerate(lists):
            out[b, :len(x)] = x
        return torch.from_numpy(out)

    word_ids = torch.from_numpy(word_ids)
    word_mask = [rng.rand(n) < 0.35 for n in n_words]
    token_mask = torch.zeros(word_ids.shape, dtype=torch.bool)
    for b in range(bsz):
        for t in range(word_ids.size(1)):
            w = int(word_ids[b, t])
            token_mask[b, t] = w >= 0 and bool(word_mask[b][w])
    x = torch.randn(bsz, word_ids.size(1), dim)
    return x, word_ids, pad(aligns), pad(deps), token_mask


def sa_reference(x, word_ids, align, dep, token_mask, target, head, embed):
    """L_SA with loops: for every masked piece, the mean over the word's unmasked neighbours
    (both edge types) of the neighbour's mean piece state, through the recovery head."""
    total, pieces, lonely, words = 0.0, 0, 0, 0
    for b in range(x.size(0)):
        ids = word_ids[b].tolist()
        tokens_of = {}
        for t, w in enumerate(ids):
            if w >= 0:
                tokens_of.setdefault(w, []).append(t)
        masked_words = {w for w, ts in tokens_of.items() if any(token_mask[b, t] for t in ts)}
        neighbours = {w: set() for w in tokens_of}
        for edges in (align[b], dep[b]):
            for i, j in edges.tolist():
                if i >= 0:
                    neighbours[i].add(j)
                    neighbours[j].add(i)
        for w in sorted(masked_words):
            words += 1
            visible = [u for u in sorted(neighbours[w]) if u not in masked_words]
            if not visible:
                lonely += 1
                continue
            states = [torch.stack([x[b, t] for t in tokens_of[u]]).mean(0) for u in visible]
            aggregate = torch.stack(states).mean(0)
            for k, t in enumerate(tokens_of[w]):
                logits = head(aggregate[None], torch.tensor([k]), embed)
                total += float(F.cross_entropy(logits, target[b, t][None], reduction="sum"))
                pieces += 1
    return total, pieces, words, lonely


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sa_loss_matches_loops(seed):
    rng = np.random.RandomState(seed)
    torch.manual_seed(seed)
    x, word_ids, align, dep, token_mask = random_graph_batch(rng)
    vocab = 30
    heads = PretrainingHeads(x.size(-1), vocab).eval()
    embed = torch.randn(vocab, x.size(-1))
    target = torch.randint(4, vocab, word_ids.shape)
    aggregate, has_neighbour, words, lonely = sa_aggregate(x, word_ids, align, dep, token_mask)
    sel = token_mask & has_neighbour
    pos = piece_positions(word_ids)
    loss = F.cross_entropy(heads.sa(aggregate[sel], pos[sel], embed), target[sel],
                           reduction="sum")
    ref, ref_pieces, ref_words, ref_lonely = sa_reference(x, word_ids, align, dep, token_mask,
                                                          target, heads.sa, embed)
    assert ref_pieces == int(sel.sum()) > 0
    assert (words, lonely) == (ref_words, ref_lonely)
    assert math.isclose(float(loss), ref, rel_tol=1e-5)


def test_lonely_words_are_counted_not_scored():
    # one example: source words 0 1 2, target words 3 4; align 1-3; dep 0-1
    word_ids = torch.tensor([[0, 1, 1, 2, 3, 4, -1]])
    align, dep = torch.tensor([[[1, 3]]]), torch.tensor([[[0, 1]]])
    x = torch.arange(7 * 2, dtype=torch.float).view(1, 7, 2)
    mask = torch.tensor([[False, True, True, False, True, False, False]])  # words 1 and 3
    aggregate, has_nb, words, lonely = sa_aggregate(x, word_ids, align, dep, mask)
    # word 1: neighbours 0 (visible) and 3 (masked) -> the state of word 0 only
    assert has_nb[0].tolist() == [False, True, True, False, False, False, False]  # word 0: 1 masked
    torch.testing.assert_close(aggregate[0, 1], x[0, 0])
    # word 3: its only neighbour (word 1) is masked -> no L_SA term, counted
    assert (words, lonely) == (2, 1)
    assert piece_positions(word_ids)[0].tolist() == [0, 0, 1, 0, 0, 0, 0]


def test_criterion_matches_loops(parallel_data):
    task, model, criterion = build(parallel_data)
    task.load_dataset("valid")
    ds = task.dataset("valid")
    model.eval()
    batch = ds.collater([ds[i] for i in range(8)])
    loss, sample_size, log = criterion(model, batch)
    net = batch["net_input"]
    with torch.no_grad():
        feats = model.extract_features(**net)
    x = torch.cat([feats["src"], feats["tgt"]], dim=1)
    target = batch["target"]
    masked = target.ne(task.dictionary.pad())
    embed = model.embed_tokens.weight
    tlm = sum(float(F.cross_entropy(model.pretrain_heads.lm(x[b, t][None], embed), target[b, t][None]))
              for b, t in masked.nonzero().tolist())
    sa, pieces, words, lonely = sa_reference(x, net["word_ids"], net["align_edges"],
                                             net["dep_edges"], masked, target,
                                             model.pretrain_heads.sa, embed)
    assert sample_size == log["tlm_n"] == int(masked.sum()) > 0
    assert log["sa_n"] == pieces and log["masked_words"] == words and log["lonely_words"] == lonely
    assert math.isclose(float(log["tlm_loss"]), tlm, rel_tol=1e-4)
    assert math.isclose(float(log["sa_loss"]), sa, rel_tol=1e-4)
    assert math.isclose(float(loss), tlm + sa, rel_tol=1e-4)


def test_pretraining_model_heads_and_gradients(parallel_data):
    task, model, criterion = build(parallel_data)
    names = [n for n, _ in model.named_parameters()]
    assert not any("span_head" in n for n in names)
    assert any(n.startswith("pretrain_heads.lm.") for n in names)
    assert any(n.startswith("pretrain_heads.sa.") for n in names)
    task.load_dataset("train")
    ds = task.dataset("train")
    model.train()
    loss, _, _ = criterion(model, ds.collater([ds[i] for i in range(16)]))
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, unused  # DDP needs no find_unused_parameters
    with pytest.raises(GraFusionError, match="pre-training heads"):
        model(**ds.collater([ds[0]])["net_input"])


def test_weights_move_between_pretraining_and_fine_tuning(parallel_data, marker_data):
    _, pre, _ = build(parallel_data)
    _, fine, _ = build(marker_data, "xmrc_span")
    pre_state = {k: v.clone() for k, v in pre.state_dict().items()}
    fine_heads = {k: v.clone() for k, v in fine.state_dict().items() if "span_head" in k}
    fine.load_state_dict(pre.state_dict(), strict=True)  # what --finetune-from-model does
    after = fine.state_dict()
    body = [k for k in after if "span_head" not in k]
    assert set(body) == {k for k in pre_state if not k.startswith("pretrain_heads.")}
    for k in body:
        torch.testing.assert_close(after[k], pre_state[k], rtol=0, atol=0)
    for k, v in fine_heads.items():  # span heads keep their fresh initialisation
        torch.testing.assert_close(after[k], v, rtol=0, atol=0)
    # and back: a fine-tuned model continues pre-training with fresh pre-training heads
    _, pre2, _ = build(parallel_data)
    heads = {k: v.clone() for k, v in pre2.state_dict().items() if k.startswith("pretrain_heads.")}
    pre2.load_state_dict(fine.state_dict(), strict=True)
    for k, v in pre2.state_dict().items():
        torch.testing.assert_close(v, heads[k] if k in heads else after[k], rtol=0, atol=0)


def test_xlmr_lm_head_initialises_the_tlm_head(parallel_data):
    """An XLM-R (RoBERTa) state dict: its lm_head goes to the TLM head, the rest as before."""
    _, pre, _ = build(parallel_data)
    _, source, _ = build(parallel_data)
    own = source.state_dict()
    enc = "encoder.sentence_encoder."
    xlmr = {enc + k: v for k, v in own.items() if k.split(".")[0] in
            ("embed_tokens", "embed_positions", "layernorm_embedding")}
    modules = ["tgt_bottom"] + [f"sa_layers.{i}" for i in range(len(source.sa_layers))] + ["tgt_top"]
    for i, module in enumerate(modules):
        for k, v in own.items():
            if k.startswith(module + ".") and ".graph." not in k:
                xlmr[f"{enc}layers.{i}.{k[len(module) + 1:]}"] = v
    lm = {"dense.weight": torch.randn(64, 64), "dense.bias": torch.randn(64),
          "layer_norm.weight": torch.randn(64), "layer_norm.bias": torch.randn(64),
          "bias": torch.randn(len(pre.embed_tokens.weight)), "weight": own["embed_tokens.weight"]}
    xlmr.update({f"encoder.lm_head.{k}": v for k, v in lm.items()})
    pre.load_state_dict(xlmr, strict=True)
    state = pre.state_dict()
    for k, v in lm.items():
        if k != "weight":
            torch.testing.assert_close(state[f"pretrain_heads.lm.{k}"], v, rtol=0, atol=0)
    torch.testing.assert_close(state["sa_layers.1.fc1.weight"], own["sa_layers.1.fc1.weight"])
    torch.testing.assert_close(state["src_top.fc2.weight"], own["tgt_top.fc2.weight"])
