"""Named architectures (``grafusion_tiny``, ``filter_base``, ...) for both of fairseq's front ends.

``fairseq-train --arch grafusion_tiny`` (argparse) calls the architecture function on the options,
and the function fills what the command line left unset (``safe_getattr``).  Under hydra
(``fairseq-hydra-train``, ``model: {_name: grafusion_tiny}``) fairseq's ``add_defaults`` first
maps the architecture to its model and merges the *model's* dataclass defaults, so the function
then finds every field set and keeps them: the base size would be built.  :func:`register_arch`
registers the function with fairseq as usual and also, under the architecture's name, the model's
dataclass with the function's values as its defaults (fairseq's model-dataclass registry, the
name map ``add_defaults`` reads, and hydra's config store, group ``model``): ``add_defaults`` and
``fairseq.models.build_model`` then merge the architecture's defaults, and a yaml's (or a
command line's) own values still win over them.
"""
import argparse
import dataclasses

from fairseq.models import ARCH_MODEL_NAME_REGISTRY, MODEL_DATACLASS_REGISTRY, register_model_architecture
from hydra.core.config_store import ConfigStore


def arch_config(model_name, arch_name, fn):
    """The dataclass of model ``model_name`` with the values ``fn`` sets on empty options as its
    defaults (named ``<arch_name>``; fields keep their types and help)."""
    base = MODEL_DATACLASS_REGISTRY[model_name]
    values = argparse.Namespace()
    fn(values)
    fields = base.__dataclass_fields__
    unknown = sorted(set(vars(values)) - set(fields))
    if unknown:  # a programming error: the function sets options the model does not have
        raise TypeError(f"architecture {arch_name} sets {unknown}, not fields of {base.__name__}")
    return dataclasses.make_dataclass(
        f"{arch_name}_config",
        [(k, fields[k].type, dataclasses.field(default=v, metadata=fields[k].metadata))
         for k, v in vars(values).items()], bases=(base,))


def register_arch(model_name, arch_name):
    """``register_model_architecture(model_name, arch_name)`` whose defaults also apply under
    hydra (see the module docstring)."""
    def register(fn):
        register_model_architecture(model_name, arch_name)(fn)
        config = arch_config(model_name, arch_name, fn)
        MODEL_DATACLASS_REGISTRY[arch_name] = config
        ARCH_MODEL_NAME_REGISTRY[arch_name] = arch_name  # add_defaults: arch -> its own dataclass
        node = config()
        node._name = arch_name
        ConfigStore.instance().store(name=arch_name, group="model", node=node, provider="fairseq")
        return fn
    return register
