"""fairseq's own entry points with the plugin: named architectures under hydra (the architecture's
sizes, the config's own values winning), a dataclass for every registered component,
``fairseq-hydra-train`` with the shipped yaml and ``fairseq-validate`` from another directory
(the README's run block, ``conftest.readme_run``), ``fairseq-generate`` / ``fairseq-interactive``
refused in one line, ``grafusion-user-dir``."""
import argparse
import os
import re
import subprocess
import sys
from unittest import mock

import pytest
import torch
from omegaconf import OmegaConf

import fairseq_grafusion.plugin  # noqa: F401  (registration)
from fairseq_grafusion.models import GraFusionConfig, GraFusionModel

BIN = os.path.dirname(sys.executable)
OURS = "fairseq_grafusion."


def our_archs():
    from fairseq.models import ARCH_MODEL_REGISTRY

    return sorted(a for a, cls in ARCH_MODEL_REGISTRY.items() if cls.__module__.startswith(OURS))


def hydra_model_config(model_cfg):
    """What fairseq's hydra path hands the model class: ``add_defaults`` (fairseq_cli.train) on
    the config, then ``fairseq.models.build_model``'s merge; the model is not built."""
    from fairseq import models
    from fairseq.dataclass.configs import FairseqConfig
    from fairseq.dataclass.initialize import add_defaults

    cfg = OmegaConf.structured(FairseqConfig)
    OmegaConf.set_struct(cfg, False)
    cfg.model = model_cfg
    add_defaults(cfg)
    cls = models.ARCH_MODEL_REGISTRY[model_cfg["_name"]]
    with mock.patch.object(cls, "build_model", classmethod(lambda c, model, task: model)):
        return models.build_model(cfg.model, task=None)


@pytest.mark.parametrize("arch", our_archs())
def test_a_named_architecture_gets_its_sizes_under_hydra(arch):
    """Reference: the architecture function on empty options (what --arch does), the model's
    dataclass defaults for the rest."""
    from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_REGISTRY

    expected = argparse.Namespace()
    ARCH_CONFIG_REGISTRY[arch](expected)
    got = hydra_model_config({"_name": arch})
    for key, value in vars(expected).items():
        assert got[key] == value, (arch, key)
    defaults = ARCH_MODEL_REGISTRY[arch].__dataclass()
    for key in set(defaults.__dataclass_fields__) - set(vars(expected)) - {"_name"}:
        assert got[key] == getattr(defaults, key), (arch, key)


def test_the_configs_own_values_win_over_the_architectures():
    got = hydra_model_config({"_name": "grafusion_tiny", "sa_layers": 3, "graph": "align"})
    assert (got.sa_layers, got.graph, got.encoder_embed_dim) == (3, "align", 64)
    got = hydra_model_config({"_name": "grafusion_base", "encoder_embed_dim": 64})
    assert (got.encoder_embed_dim, got.sa_layers, got.encoder_ffn_embed_dim) == (64, 10, 3072)


def test_every_registered_component_has_a_dataclass():
    from fairseq.criterions import CRITERION_DATACLASS_REGISTRY, CRITERION_REGISTRY
    from fairseq.models import MODEL_DATACLASS_REGISTRY, MODEL_REGISTRY
    from fairseq.tasks import TASK_DATACLASS_REGISTRY, TASK_REGISTRY

    for registry, dataclasses, expected in (
            (CRITERION_REGISTRY, CRITERION_DATACLASS_REGISTRY,
             {"xmrc_span", "xmrc_span_self_teaching", "sa_graph_pretrain"}),
            (TASK_REGISTRY, TASK_DATACLASS_REGISTRY, {"xmrc_span", "sa_graph_pretrain"}),
            (MODEL_REGISTRY, MODEL_DATACLASS_REGISTRY, {"grafusion", "filter"})):
        ours = {name for name, cls in registry.items() if cls.__module__.startswith(OURS)}
        assert ours == expected
        assert ours <= set(dataclasses), ours - set(dataclasses)


def block_output(readme_run, command):
    """The stdout + stderr of the README run block that holds ``command``."""
    _, runs = readme_run
    procs = [proc for block, proc in runs if command in block.text]
    assert procs and procs[0].returncode == 0, procs and procs[0].stderr[-3000:]
    return procs[0].stdout + procs[0].stderr


def test_hydra_train_builds_the_tiny_model(readme_run):
    """The README's fairseq-hydra-train (examples/hydra/grafusion_tiny.yaml, ``--user-dir`` from
    grafusion-user-dir, another working directory): the checkpoint's model has the shapes of a
    grafusion_tiny built by hand (d = 64, FFN 128, 1 + 2 + 1 layers)."""
    work, _ = readme_run
    block_output(readme_run, "fairseq-hydra-train")
    state = torch.load(work / "sample-run" / "hydra" / "checkpoint_best.pt", weights_only=False)
    assert state["cfg"]["model"]["_name"] == "grafusion_tiny"
    from fairseq.data import Dictionary

    dictionary = Dictionary.load(str(work / "sample-run" / "qa-bin" / "dict.txt"))
    dictionary.add_symbol("<mask>")
    by_hand = GraFusionModel(GraFusionConfig(encoder_embed_dim=64, encoder_ffn_embed_dim=128,
                                             encoder_attention_heads=4, sa_layers=2), dictionary)
    assert {k: tuple(v.shape) for k, v in state["model"].items()} == \
        {k: tuple(v.shape) for k, v in by_hand.state_dict().items()}


def test_validate_gives_the_training_runs_validation_loss(readme_run):
    """fairseq-validate on the hydra run's best checkpoint: the loss and F1 its training logged."""
    output = block_output(readme_run, "fairseq-validate")
    found = re.findall(r"valid on 'valid' subset \| loss ([0-9.]+) .*?\| f1 ([0-9.]+)", output)
    assert len(found) == 2, output[-3000:]  # fairseq-hydra-train's (1 epoch), fairseq-validate's
    assert found[0] == found[1]


@pytest.mark.parametrize("command,task", [
    ([sys.executable, "-m", "fairseq_cli.generate"], "xmrc_span"),
    ([os.path.join(BIN, "fairseq-interactive")], "sa_graph_pretrain"),
])
def test_generation_commands_stop_in_one_line(readme_run, command, task):
    work, _ = readme_run
    name = "fairseq-generate" if "fairseq_cli.generate" in command else "fairseq-interactive"
    proc = subprocess.run(
        command + ["sample-run/qa-bin", "--user-dir", os.path.dirname(fairseq_grafusion.__file__),
                   "--task", task, "--path", "sample-run/hydra/checkpoint_best.pt", "--cpu"],
        cwd=work, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"fairseq-grafusion: error: {name} does not apply to task {task}")
    assert "grafusion-predict" in last


def test_user_dir_prints_the_installed_package(tmp_path):
    proc = subprocess.run([os.path.join(BIN, "grafusion-user-dir")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == os.path.dirname(os.path.abspath(fairseq_grafusion.__file__))
