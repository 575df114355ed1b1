"""Model ``filter``: FILTER's local / fusion / domain wiring with one copy of the local and domain
layers and one span head, its QA layer split, and XLM-R translate-train (k = 0): both streams as
independent examples, in the loss too, and learned end to end by fairseq-train."""
import os

import pytest
import torch
from fairseq import options

import fairseq_grafusion.plugin  # noqa: F401  (registers the plugin)
from conftest import logged, run_fairseq, train_args
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.models import FilterConfig, FilterModel


@pytest.fixture(scope="module")
def data(marker_data):
    from fairseq_grafusion.data import GraphPairDataset, PairReader
    from fairseq_grafusion.tasks.graph_pair_task import load_task_dictionary

    dictionary = load_task_dictionary(marker_data)
    dataset = GraphPairDataset(PairReader(os.path.join(marker_data, "valid")), dictionary.pad())
    return dictionary, dataset.collater([dataset[i] for i in range(6)])


class SmallVocabulary:
    def __len__(self):
        return 20

    def pad(self):
        return 1


def model(dictionary, layers=5, m=1, k=2):
    torch.manual_seed(0)
    cfg = FilterConfig(encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=4,
                       encoder_layers=layers, filter_m=m, filter_k=k)
    return FilterModel(cfg, dictionary).eval()


def test_filter_is_local_then_fusion_then_domain_with_one_copy_per_layer(data):
    dictionary, sample = data
    net = model(dictionary, layers=5, m=1, k=2)
    assert (len(net.local), len(net.fusion_layers), len(net.domain)) == (1, 2, 2)
    assert not any(name.startswith(("src_", "tgt_")) for name in net.state_dict())  # nothing per language
    src, tgt = sample["net_input"]["src_tokens"], sample["net_input"]["tgt_tokens"]
    with torch.no_grad():
        out = net(**sample["net_input"])
        # by hand, as FILTER's FilterModel.forward: each language through the same local layers,
        # the fusion layers over both, then each language through the same domain layers
        states = []
        for tokens in (src, tgt):
            x, pad = net.embed(tokens)
            x, _ = net.local[0](x, pad)
            states.append((x, pad))
        x, pad = torch.cat([states[0][0], states[1][0]], 1), torch.cat([states[0][1], states[1][1]], 1)
        for layer in net.fusion_layers:
            x, _ = layer(x, pad)
        parts = {"src": (x[:, :src.size(1)], states[0][1]), "tgt": (x[:, src.size(1):], states[1][1])}
        for lang, (x, pad) in parts.items():
            for layer in net.domain:
                x, _ = layer(x, pad)
            logits = net.span_head(x).masked_fill(pad.unsqueeze(-1), float("-inf"))
            torch.testing.assert_close(out[f"{lang}_start"], logits[..., 0])
            torch.testing.assert_close(out[f"{lang}_end"], logits[..., 1])
        # the languages meet: another English side changes the target answer's logits
        other = net(src_tokens=src.flip(0), tgt_tokens=tgt)
    assert not torch.allclose(other["tgt_start"], out["tgt_start"])
    with pytest.raises(GraFusionError, match="FILTER .* reads both languages"):
        net(tgt_tokens=tgt)


def test_layer_split_of_each_architecture(marker_data):
    def split(arch):
        args = options.parse_args_and_arch(options.get_training_parser(),
                                           train_args(marker_data, "/nonexistent", arch=arch))
        return args.encoder_layers, args.filter_m, args.filter_k, args.encoder_embed_dim

    assert split("filter_large") == (24, 1, 20, 1024)  # FILTER's train.sh for mlqa / tydiqa / xquad
    assert split("filter_base") == (12, 1, 10, 768)
    assert split("xlmr_translate_train_large") == (24, 24, 0, 1024)
    assert split("xlmr_translate_train_base") == (12, 12, 0, 768)
    with pytest.raises(GraFusionError, match=r"--filter-m 2 local \+ --filter-k 3 fusion layers do not fit"):
        model(SmallVocabulary(), layers=4, m=2, k=3)


def test_translate_train_reads_each_stream_as_an_independent_example(data):
    dictionary, sample = data
    net = model(dictionary, layers=3, m=3, k=0)
    src, tgt = sample["net_input"]["src_tokens"], sample["net_input"]["tgt_tokens"]
    with torch.no_grad():
        both = net(src_tokens=src, tgt_tokens=tgt)
        alone = net(tgt_tokens=tgt)  # the target stream without any English side
        english = net(tgt_tokens=src)  # the English original as a target-stream example
    for end in ("start", "end"):
        torch.testing.assert_close(both[f"tgt_{end}"], alone[f"tgt_{end}"])
        torch.testing.assert_close(both[f"src_{end}"], english[f"tgt_{end}"])
    assert "src_start" not in alone


def test_translate_train_loss_is_the_sum_over_both_streams(marker_data, data):
    from fairseq import tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    _, sample = data
    args = options.parse_args_and_arch(
        options.get_training_parser(),
        train_args(marker_data, "/nonexistent", arch="xlmr_translate_train_tiny"))
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    net, criterion = task.build_model(cfg.model).eval(), task.build_criterion(cfg.criterion)
    with torch.no_grad():
        loss, size, log = criterion(net, sample)
        alone, english = net(tgt_tokens=sample["net_input"]["tgt_tokens"]), \
            net(tgt_tokens=sample["net_input"]["src_tokens"])
    spans = sample["target"]  # source start, source end, target start, target end

    def nll(logits, gold):  # -log p(gold), by hand
        return -sum(torch.log_softmax(logits[b], -1)[gold[b]] for b in range(len(gold)))

    tgt = nll(alone["tgt_start"], spans[:, 2]) + nll(alone["tgt_end"], spans[:, 3])
    src = nll(english["tgt_start"], spans[:, 0]) + nll(english["tgt_end"], spans[:, 1])
    assert size == spans.size(0) == 6
    torch.testing.assert_close(log["tgt_loss"], tgt)
    torch.testing.assert_close(log["src_loss"], src)
    torch.testing.assert_close(loss, src + tgt)
    assert src > 1 and tgt > 1  # untrained: both terms count, neither is negligible


def test_translate_train_learns_the_synthetic_task(marker_data, tmp_path):
    proc = run_fairseq("train", *train_args(marker_data, str(tmp_path / "ck"), updates=150,
                                            arch="xlmr_translate_train_tiny"))
    out = proc.stdout + proc.stderr
    for lang in ("tgt", "src"):
        first, last = logged(out, "train_inner", f"{lang}_loss")[0], logged(out, "valid", f"{lang}_loss")[-1]
        assert last < 0.2 * first, (lang, first, last)
        assert logged(out, "valid", f"{lang}_start_acc")[-1] > 90
