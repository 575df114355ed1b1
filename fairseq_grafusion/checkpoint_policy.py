"""What fairseq will build from a checkpoint, and whether the plugin lets it: decided from the
file's own content, before anything is built.

fairseq does not build what a checkpoint says it is; it builds what its rules pick:

* the model ``cfg.model._name``, or ``cfg.model.arch`` when there is no ``_name``
  (``fairseq.models.build_model``); the old format's ``args.arch``;
* the task ``cfg.task.task`` when that is a string (argparse tasks), else ``cfg.task._name``
  (``fairseq.tasks.setup_task``); the old format's ``args.task``, ``translation`` when absent;
* the criterion ``cfg.criterion._name`` (``cfg.criterion.criterion`` for a Namespace), which
  fairseq-validate builds.

Some classes fairseq can reach ``eval()`` strings of their configuration (``fconv``'s layer
specifications; the transformer's ``adaptive_softmax_cutoff`` and ``xformers_att_config``), and
OmegaConf resolves ``${...}`` interpolations (``${oc.env:HOME}`` reads the environment).  So
:func:`check` applies fairseq's rules to the raw state and refuses, in one line naming the file:

* a ``_name`` that disagrees with ``arch`` (or a task's ``_name`` with its ``task``), a missing
  name, a section that is not a dict (a Namespace, where the allow-list wants our own format),
  old-format ``args`` where they are not expected, an interpolation anywhere, a value that is
  not plain data;
* a task or model class that is not on the allow-list of the load (:class:`Allowed`: ours, an
  XLM-R start, a fairseq transformer translation model);
* for our models: a field of ``cfg.model`` / ``cfg.task`` / ``cfg.criterion`` that is not one of
  the dataclass's, or not of its type (nothing but our own known, typed fields reach the builder);
* for fairseq's transformer: a field fairseq ``eval()``s that is not a plain Python literal.

After fairseq's own upgrade steps and the caller's overrides (:func:`check_built`), the names
are resolved once more on what fairseq will actually read.

Which allow-list applies (:func:`expected`): the caller's (:func:`expecting`: predict, the hub,
the self-teaching teacher, ``--pretrained-*``, ``--mt-*-model``, fairseq-train's resume); else
ours, when the process runs one of our tasks (:func:`claim_process`, from the tasks' ``add_args``
and ``setup_task``: ``fairseq-validate --task xmrc_span``) or when the file names one of our
tasks, models or criteria anywhere; else none: a checkpoint of another task, loaded by another
fairseq command that merely has the plugin imported, is left to fairseq as it would be without
the plugin (the plugin cannot know which models another task may build).
"""
import argparse
import ast
import contextlib
import contextvars
import enum
import typing
from dataclasses import dataclass, field
from typing import Callable, Optional

from .errors import GraFusionError

OUR_TASKS = ("xmrc_span", "sa_graph_pretrain")
OUR_MODELS = ("grafusion", "filter")
OUR_CRITERIA = ("xmrc_span", "xmrc_span_self_teaching", "sa_graph_pretrain")
# configuration fields that fairseq eval()s when building a transformer (transformer_decoder.py:
# eval_str_list(adaptive_softmax_cutoff); multihead_attention.py: eval_str_dict(xformers_att_config)),
# also under an encoder_ / decoder_ prefix or inside an encoder / decoder section
EVALUATED_FIELDS = ("adaptive_softmax_cutoff", "adaptive_input_cutoff", "xformers_att_config",
                    "character_filters")
MT_TEXT_CODECS = ("moses", "nltk", "space", "sentencepiece", "subword_nmt", "fastbpe", "gpt2",
                  "bytes", "characters", "byte_bpe")


@dataclass(frozen=True)
class Allowed:
    """An allow-list for one kind of load.

    ``tasks`` and ``models``: the task names and model registry names (each model name stands
    for its class and every architecture of it) fairseq may build; ``criteria``: the criterion
    names a checkpoint may name (None: not looked at); ``legacy``: the old ``args`` format and
    Namespace sections are fairseq's own releases' form; ``typed``: every model, task and
    criterion field is one of its dataclass's, of its type; ``literal``: the fields fairseq
    ``eval()``s must be Python literals; ``extra(state, where)``: a further check of the raw
    state; ``label``: the option that gave the file, for messages.
    """
    what: str
    tasks: tuple
    models: tuple
    criteria: Optional[tuple] = None
    legacy: bool = False
    typed: bool = False
    literal: bool = False
    extra: Optional[Callable] = field(default=None, compare=False)
    label: str = ""


def ours(tasks=OUR_TASKS, label=""):
    """Our models, trained with one of ``tasks``: cfg format, every field known and typed."""
    return Allowed("a fairseq-grafusion model", tuple(tasks), OUR_MODELS, OUR_CRITERIA,
                   typed=True, label=label)


def xlmr_start(label="--pretrained-xlmr"):
    """An XLM-R (RoBERTa) release to take weights from; nothing is built from it."""
    return Allowed("an XLM-R / RoBERTa checkpoint", ("masked_lm", "multilingual_masked_lm"),
                   ("roberta", "xlmr"), legacy=True, label=label)


def translation(label="--mt-model", extra=None):
    """A fairseq transformer translation model (fairseq's releases: old or new format)."""
    return Allowed("a fairseq transformer translation model", ("translation",), ("transformer",),
                   legacy=True, literal=True, extra=extra, label=label)


@dataclass(frozen=True)
class Plan:
    """What fairseq will build: the names its rules pick, and the sections they come from."""
    form: str  # "cfg" or "args"
    task: str
    model: str
    criterion: Optional[str]
    sections: dict


_expected = contextvars.ContextVar("grafusion_expected_checkpoint", default=None)
_claimed = []


@contextlib.contextmanager
def expecting(*allowed):
    """Checkpoints loaded by fairseq's loader inside the block must pass one of ``allowed``."""
    token = _expected.set(allowed)
    try:
        yield
    finally:
        _expected.reset(token)


def claim_process():
    """This process runs one of our tasks: a checkpoint loaded without an explicit expectation
    (fairseq-validate's ``--path``) must then be one of ours."""
    if not _claimed:
        _claimed.append(True)


def guarded():
    """Whether every load is checked here: the caller expects a kind of checkpoint, or the process
    runs one of our tasks.  Otherwise only a file that names ours is (:func:`expected`)."""
    return bool(_expected.get() or _claimed)


def expected(state):
    """The allow-lists that apply to a load of ``state`` (see the module docstring), or ()."""
    explicit = _expected.get()
    if explicit:
        return explicit
    if _claimed or names_ours(state):
        return (ours(),)
    return ()


def names_ours(state):
    """Whether the file names one of our tasks, models or criteria where fairseq could look."""
    from fairseq.models import MODEL_REGISTRY

    names = set()
    sections = [state.get("args")]
    cfg = state.get("cfg")
    if _is_section(cfg):
        sections += [field_of(cfg, k) for k in ("model", "task", "criterion")]
    for section in sections:
        if _is_section(section):
            names.update(str(field_of(section, k)) for k in ("_name", "arch", "task", "criterion"))
    our_classes = {MODEL_REGISTRY.get(m) for m in OUR_MODELS}
    return bool(names & set(OUR_TASKS + OUR_CRITERIA)
                or any(model_class(n) in our_classes for n in names))


def _is_section(value):
    return isinstance(value, (dict, argparse.Namespace)) or type(value).__name__ == "DictConfig"


def field_of(section, key):
    """``section[key]`` of a dict, DictConfig or Namespace section; None if it is not there."""
    if isinstance(section, argparse.Namespace):
        return getattr(section, key, None)
    try:
        return section.get(key)
    except Exception:  # an OmegaConf node that cannot be read
        return None


def _refuse(where, message):
    raise GraFusionError(f"{where}: {message}; refused before building anything from it")


def resolve(state, where):
    """The :class:`Plan` fairseq's rules give for ``state`` (raw, as loaded, or after fairseq's
    upgrade); a one-line error for a state they cannot give one for, or that names a model or
    task in two fields that disagree."""
    args, cfg = state.get("args"), state.get("cfg")
    if args is not None:  # load_model_ensemble_and_task reads args before cfg
        if not isinstance(args, argparse.Namespace):
            _refuse(where, f"'args' is a {type(args).__name__}, not fairseq's argparse.Namespace")
        task = getattr(args, "task", None) or "translation"  # fairseq's _upgrade_state_dict
        model = _name_field(getattr(args, "arch", None), where, "args.arch")
        criterion = getattr(args, "criterion", None)
        sections = {"model": args, "task": args, "criterion": args}
        return Plan("args", _name_field(task, where, "args.task"), model,
                    criterion if isinstance(criterion, str) else None, sections)
    if not _is_section(cfg) or isinstance(cfg, argparse.Namespace):
        _refuse(where, "not a fairseq checkpoint (no 'cfg' dict and no 'args')")
    sections = {}
    for name in ("model", "task", "criterion"):
        section = field_of(cfg, name)
        if section is not None and not _is_section(section):
            _refuse(where, f"cfg.{name} is a {type(section).__name__}, not a dict")
        sections[name] = section
    if sections["model"] is None or sections["task"] is None:
        _refuse(where, "not a fairseq checkpoint of a model (cfg.model or cfg.task is missing)")
    model = _one_name(sections["model"], ("_name", "arch"), where, "cfg.model")
    legacy_task = field_of(sections["task"], "task")
    task = _one_name(sections["task"], ("task", "_name") if isinstance(legacy_task, str)
                     else ("_name",), where, "cfg.task", also=("_name", "task"))
    criterion = None
    if sections["criterion"] is not None:
        key = "criterion" if isinstance(sections["criterion"], argparse.Namespace) else "_name"
        criterion = _one_name(sections["criterion"], (key,), where, "cfg.criterion",
                              also=("_name", "criterion"), required=False)
    return Plan("cfg", task, model, criterion, sections)


def _name_field(value, where, what):
    if not isinstance(value, str) or not value:
        _refuse(where, f"{what} is {value!r}, not a name")
    return value


def _one_name(section, keys, where, what, also=(), required=True):
    """The name fairseq reads from ``section`` (the first of ``keys`` that is set), after
    checking that every other naming field (``keys`` and ``also``) that is set agrees."""
    given = {k: field_of(section, k) for k in dict.fromkeys(keys + tuple(also))}
    given = {k: v for k, v in given.items() if v not in (None, "")}
    picked = next((given[k] for k in keys if k in given), None)
    if picked is None:
        if required:
            _refuse(where, f"{what} names no {'model' if 'model' in what else 'task'} "
                           f"({' / '.join(keys)} missing)")
        return None
    if not isinstance(picked, str):
        _refuse(where, f"{what}.{next(k for k in keys if k in given)} is a "
                       f"{type(picked).__name__}, not a name")
    others = {k: v for k, v in given.items() if v != picked}
    if others:
        k, v = next(iter(others.items()))
        _refuse(where, f"{what} names {picked!r} (which fairseq would build) but {k} says {v!r}")
    return picked


def model_class(name):
    """The class ``fairseq.models.build_model`` builds for the model name ``name``, or None."""
    from fairseq.models import ARCH_MODEL_REGISTRY, MODEL_DATACLASS_REGISTRY, MODEL_REGISTRY

    if name in ARCH_MODEL_REGISTRY:
        return ARCH_MODEL_REGISTRY[name]
    if name in MODEL_DATACLASS_REGISTRY:
        return MODEL_REGISTRY.get(name)
    return None


def task_class(name):
    from fairseq.tasks import TASK_REGISTRY

    return TASK_REGISTRY.get(name)


def check(state, where, allowed):
    """The :class:`Plan` of ``state`` if it passes one of the :class:`Allowed` ``allowed``, and the
    one it passed; else a one-line :class:`GraFusionError` (see the module docstring)."""
    from fairseq.models import MODEL_REGISTRY

    label = next((a.label for a in allowed if a.label), "")
    where = f"{label} {where}" if label else where
    plan = resolve(state, where)
    cls = model_class(plan.model)
    models_fit = [a for a in allowed if cls is not None
                  and any(cls is MODEL_REGISTRY.get(m) for m in a.models)]
    fit = [a for a in models_fit if plan.task in a.tasks]
    if not fit:
        if models_fit:
            tasks = " or ".join(dict.fromkeys(t for a in models_fit for t in a.tasks))
            _refuse(where, f"trained with task {plan.task!r}, not {tasks} (model {plan.model!r})")
        wanted = " or ".join(a.what for a in allowed)
        built = cls.__name__ if cls is not None else "no registered model"
        _refuse(where, f"fairseq would build model {plan.model!r} ({built}) for task "
                       f"{plan.task!r}, which is not {wanted}")
    allow = fit[0]
    if plan.form == "args" and not allow.legacy:
        _refuse(where, "old-format 'args': a fairseq-grafusion checkpoint stores 'cfg'")
    _check_plain(state.get("args"), "args", where)
    _check_plain(state.get("cfg"), "cfg", where, namespace=allow.legacy)
    if allow.criteria is not None and plan.criterion is not None \
            and plan.criterion not in allow.criteria:
        _refuse(where, f"cfg.criterion names {plan.criterion!r}, not one of "
                       f"{', '.join(allow.criteria)}")
    if allow.typed:
        _check_typed(plan, where)
    if allow.literal:
        _check_literals(plan.sections["model"], "cfg.model" if plan.form == "cfg" else "args", where)
        _check_codecs(state, where)
    if allow.extra is not None:
        allow.extra(state, where)
    return plan, allow


def check_built(state, where, plan):
    """After fairseq's upgrade and the caller's overrides: the names fairseq will read still
    give ``plan``'s task and model."""
    now = resolve(state, where)
    if (now.task, now.model) != (plan.task, plan.model):
        _refuse(where, f"after loading, the checkpoint names task {now.task!r} and model "
                       f"{now.model!r}, not the {plan.task!r} / {plan.model!r} checked")


_SCALARS = (str, int, float, bool, type(None))


def _check_plain(value, path, where, namespace=True, depth=0):
    """Only plain data (dicts with string keys, lists, scalars; Namespaces if ``namespace``), no
    string with an OmegaConf interpolation ``${``, at most 32 levels deep."""
    if depth > 32:
        _refuse(where, f"{path} is nested more than 32 levels deep")
    if isinstance(value, str):
        if "${" in value:
            _refuse(where, f"{path} holds an OmegaConf interpolation ('${{...}}'), which fairseq "
                           "would resolve (the environment, other fields)")
        return
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, argparse.Namespace):
        if not namespace:
            _refuse(where, f"{path} is an argparse.Namespace, not a dict")
        value = vars(value)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                _refuse(where, f"{path} has a key of type {type(key).__name__}")
            _check_plain(key, f"{path} key", where, namespace, depth + 1)
            _check_plain(item, f"{path}.{key}", where, namespace, depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for k, item in enumerate(value):
            _check_plain(item, f"{path}[{k}]", where, namespace, depth + 1)
        return
    _refuse(where, f"{path} is a {type(value).__name__}, not plain configuration data")


def _check_typed(plan, where):
    """Every field of cfg.model, cfg.task and cfg.criterion is one of its dataclass's, of its type."""
    from fairseq.criterions import CRITERION_DATACLASS_REGISTRY
    from fairseq.models import MODEL_DATACLASS_REGISTRY
    from fairseq.tasks import TASK_DATACLASS_REGISTRY

    for name, registry, key in (("model", MODEL_DATACLASS_REGISTRY, plan.model),
                                ("task", TASK_DATACLASS_REGISTRY, plan.task),
                                ("criterion", CRITERION_DATACLASS_REGISTRY, plan.criterion)):
        section = plan.sections[name]
        if section is None or key is None:
            continue
        config = registry.get(key)
        if config is None:
            _refuse(where, f"cfg.{name} names {key!r}, which has no configuration class")
        fields = config.__dataclass_fields__
        for field_name, value in section.items():
            if field_name == "arch":  # the argparse front end's copy of _name (checked equal)
                continue
            if field_name not in fields:
                _refuse(where, f"cfg.{name} has the field {field_name!r}, which {key} does not take")
            annotation = _annotations(config).get(field_name, fields[field_name].type)
            if not _fits(value, annotation):
                _refuse(where, f"cfg.{name}.{field_name} is {_shown(value)}, but {key} takes "
                               f"{_type_name(annotation)}")


def _annotations(config):
    try:
        return typing.get_type_hints(config)
    except Exception:  # a forward reference typing cannot resolve: the raw annotations
        return {}


def _fits(value, annotation):
    """Whether a configuration value is of a dataclass field's type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union:
        return any(_fits(value, a) for a in args)
    if annotation is type(None):
        return value is None
    if annotation is typing.Any:
        return isinstance(value, _SCALARS) or isinstance(value, (list, tuple))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return isinstance(value, str) and value in {m.value for m in annotation}
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple)) and all(_fits(v, args[0] if args else typing.Any)
                                                        for v in value)
    return False


def _type_name(annotation):
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in annotation)
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _shown(value):
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"


def _evaluated(key):
    return any(key == f or key.endswith("_" + f) for f in EVALUATED_FIELDS)


def _check_literals(section, path, where, depth=0):
    """The fields fairseq ``eval()``s (:data:`EVALUATED_FIELDS`) hold None, a number, a list, or a
    string that is a Python literal (``"10000,50000"``), and nothing that would run code."""
    items = vars(section) if isinstance(section, argparse.Namespace) else section
    if not isinstance(items, dict) or depth > 2:
        return
    for key, value in items.items():
        if isinstance(value, (dict, argparse.Namespace)):
            _check_literals(value, f"{path}.{key}", where, depth + 1)
        elif _evaluated(str(key)) and isinstance(value, str):
            try:
                ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                _refuse(where, f"{path}.{key} is not a Python literal, and fairseq eval()s it")


def _check_codecs(state, where):
    """The tokenizer and BPE a translation model's hub builds are fairseq's own text codecs."""
    cfg = state.get("cfg")
    args = state.get("args")
    for name in ("tokenizer", "bpe"):
        value = getattr(args, name, None) if args is not None else \
            (field_of(cfg, name) if _is_section(cfg) else None)
        if _is_section(value):
            value = field_of(value, "_name")
        if value is not None and value not in MT_TEXT_CODECS:
            _refuse(where, f"the {name} {value!r} is not one of fairseq's text codecs "
                           f"({', '.join(MT_TEXT_CODECS)})")
