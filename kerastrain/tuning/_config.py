"""The `kerastrain tune` configuration: fields, defaults, TOML/YAML loading, checks.

`FIELDS` is the single source of truth: `default_config()`, the ``--help``
text, ``--print-config`` and the validation of a user's file all come from it.
Unknown sections or keys and wrong types are rejected with one line naming
the key, the value received and the fix, before any search starts.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from typing import Any

from kerastrain import _validation
from kerastrain.tuning import _cv
from kerastrain.tuning._choices import (
    ACTIVATIONS,
    INITIALIZERS,
    OPTIMIZERS,
    SCHEDULES,
)


@dataclasses.dataclass(frozen=True)
class Field:
    section: str
    key: str
    kind: str  # "str", "int", "number", "bool", "list[str]", "list[int]", "list[number]", "list[bool]"
    default: Any
    help: str
    choices: tuple = ()

    @property
    def name(self):
        return f"{self.section}.{self.key}"


FIELDS = (
    Field("data", "source", "str", "sklearn:digits",
          "'sklearn:digits' (also iris, wine, breast_cancer: bundled, no download), a .npz "
          "file (arrays x, y or x_train, y_train[, x_test, y_test]), a .csv file (header row; "
          "target column = data.target), or 'module:function' returning (x, y) or "
          "((x_train, y_train), (x_test, y_test))"),
    Field("data", "target", "str", "", "csv only: name of the target column ('' = last column)"),
    Field("data", "task", "str", "auto",
          "'classification' (integer labels), 'regression', or 'auto' (integer targets "
          "mean classification)", ("auto", "classification", "regression")),
    Field("data", "test_fraction", "number", 0.2,
          "fraction held out as the test set (used once, at the end), if the data has none"),
    Field("data", "validation_fraction", "number", 0.2,
          "fraction of the training data used for validation when search.cv = 0"),
    Field("data", "standardize", "bool", True,
          "z-score the features with training-set mean and std"),
    Field("model", "build", "str", "mlp",
          "'mlp' (the chapter's search space below) or 'module:build_fn' with "
          "build_fn(hp) returning a compiled keras.Model"),
    Field("model", "layers", "list[int]", [1, 2], "[min, max] number of hidden layers"),
    Field("model", "units", "list[int]", [64, 128, 256], "choices of units per hidden layer"),
    Field("model", "activations", "list[str]", ["relu", "leaky_relu", "elu", "tanh", "maxout"],
          "choices among " + ", ".join(ACTIVATIONS), ACTIVATIONS),
    Field("model", "initializers", "list[str]",
          ["glorot_uniform", "he_normal", "lecun_normal", "orthogonal"],
          "choices among " + ", ".join(INITIALIZERS), INITIALIZERS),
    Field("model", "optimizers", "list[str]", ["momentum", "nesterov", "rmsprop", "adam"],
          "choices among " + ", ".join(OPTIMIZERS), OPTIMIZERS),
    Field("model", "learning_rate", "list[number]", [1e-3, 3e-2],
          "[min, max] learning rate, sampled log-uniformly"),
    Field("model", "learning_rate_step", "number", 0.0,
          "0 = continuous; a factor > 1 samples min, min*step, ... (use with tuner = 'grid')"),
    Field("model", "schedules", "list[str]", ["constant", "exponential", "inverse_time", "cosine"],
          "choices among " + ", ".join(SCHEDULES), SCHEDULES),
    Field("model", "l2", "list[number]", [1e-6, 1e-3],
          "[min, max] L2 coefficient, log-uniform; [0, 0] = no L2"),
    Field("model", "dropout", "list[number]", [0.0, 0.3], "[min, max] dropout rate"),
    Field("model", "batch_norm", "list[bool]", [False, True], "batch normalization choices"),
    Field("model", "batch_sizes", "list[int]", [32, 64], "minibatch size choices"),
    Field("model", "steps_per_execution", "int", 1,
          "batches per compiled call (larger = less Python overhead, e.g. on a GPU)"),
    Field("search", "tuner", "str", "random", "KerasTuner's 'random', 'grid', 'bayesian' or "
          "'hyperband'", ("random", "grid", "bayesian", "hyperband")),
    Field("search", "max_trials", "int", 0,
          "number of trials; 0 = auto: 64 when trials are vectorized (search.vectorize on the "
          "JAX or TensorFlow backend), else 8 (about the same time on a 2-core CPU)"),
    Field("search", "max_epochs", "int", 12, "epochs per trial (Hyperband: the maximum)"),
    Field("search", "time_limit", "number", 0.0,
          "seconds after which no new trial starts (0 = no limit)"),
    Field("search", "cv", "int", 0, "0 = hold-out validation; k >= 2 = stratified k-fold CV "
          "(score = mean over folds, std recorded)"),
    Field("search", "objective", "str", "auto",
          "metric to optimize ('auto' = val_accuracy, or val_loss for regression)"),
    Field("search", "direction", "str", "auto", "'min', 'max' or 'auto' (from the name)",
          ("auto", "min", "max")),
    Field("search", "seed", "int", 1337, "seed of the oracle, the data splits and the models"),
    Field("search", "vectorize", "vectorize", "auto",
          "train up to K trials as one compiled program (JAX or TensorFlow backend, "
          "model.build = 'mlp'): "
          "'auto' (K from the model size and the free memory, at most 64), an integer K >= 1, "
          "or false (one trial at a time); elsewhere trials run one at a time, saying why"),
    Field("pruning", "enabled", "bool", True, "median stopping rule on/off"),
    Field("pruning", "min_trials", "int", 3, "completed trials needed before pruning"),
    Field("pruning", "warmup_epochs", "int", 3, "epochs every trial runs before it may stop"),
    Field("parallel", "workers", "int", 1,
          "trials run at once: N > 1 starts a chief oracle and N worker processes on "
          "127.0.0.1 (with parallel.chief, N >= 0 local workers)"),
    Field("parallel", "chief", "str", "",
          "'HOST:PORT': serve the chief oracle there for `kerastrain worker` on other machines"),
    Field("parallel", "connect_timeout", "number", 60.0,
          "seconds a worker waits for the chief before failing"),
    Field("parallel", "memory_fraction", "number", 0.0,
          "GPU memory fraction per worker on JAX (0 = 0.9 / workers)"),
    Field("output", "directory", "str", "kerastrain_tune",
          "where trials, results.csv and TensorBoard runs go; re-run to resume"),
    Field("output", "project_name", "str", "search", "sub-directory of this search"),
    Field("output", "tensorboard", "bool", True, "one TensorBoard run per trial + HParams"),
    Field("output", "overwrite", "bool", False, "start afresh instead of resuming"),
    Field("output", "retrain", "bool", True,
          "retrain the best configuration on train + validation data and report test metrics"),
)

SECTIONS = tuple(dict.fromkeys(field.section for field in FIELDS))
_BY_NAME = {field.name: field for field in FIELDS}


def default_config():
    """The embedded default: the chapter's MLP space on digits, random search."""
    config = {section: {} for section in SECTIONS}
    for field in FIELDS:
        value = field.default
        config[field.section][field.key] = list(value) if isinstance(value, list) else value
    return config


def help_text():
    """Every field, for ``kerastrain tune --help``."""
    lines = ["config file fields (TOML or YAML; every one optional):"]
    for section in SECTIONS:
        lines.append(f"  [{section}]")
        for field in FIELDS:
            if field.section == section:
                lines.append(f"    {field.key} = {to_toml_value(field.default)}  ({field.kind})")
                lines.append(textwrap.fill(field.help, width=88, initial_indent=" " * 8,
                                           subsequent_indent=" " * 8))
    return "\n".join(lines)


def to_toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_toml_value(v) for v in value) + "]"
    return repr(value)


def to_toml(config, comments=True):
    """The config as TOML text (with each field's help as a comment)."""
    lines = []
    for section in SECTIONS:
        lines.append(f"[{section}]")
        for field in FIELDS:
            if field.section == section:
                if comments:
                    lines.append(f"# {field.help}")
                lines.append(f"{field.key} = {to_toml_value(config[section][field.key])}")
        lines.append("")
    return "\n".join(lines)


def read_file(path):
    """The mapping in a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file."""
    if not isinstance(path, (str, os.PathLike)):
        raise _validation.type_error("config", "a path", path)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file not found: {path!r}. Received: config={path!r}. "
                                "Run `kerastrain tune --print-config > tune.toml` to start one.")
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".toml", ".yaml", ".yml"):
        raise _validation.argument_error("config", "end in .toml, .yaml or .yml", path)
    if extension == ".toml":
        import tomllib

        parse, errors, mode = tomllib.load, (tomllib.TOMLDecodeError,), "rb"
    else:
        import yaml

        parse, errors, mode = yaml.safe_load, (yaml.YAMLError,), "r"
    try:
        with open(path, mode) as stream:
            data = parse(stream)
    except errors as error:  # one line, not the parser's traceback
        message = str(error).splitlines()[0]
        raise ValueError(f"Config file {path!r} cannot be parsed: {message}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise _validation.type_error("config", "a mapping of sections", data)
    return data


def merge(overrides, base=None):
    """``base`` (default config) updated by ``overrides``; checks keys and types."""
    config = default_config() if base is None else base
    if not isinstance(overrides, dict):
        raise _validation.type_error("config", "a mapping of sections", overrides)
    for section, values in overrides.items():
        if section not in SECTIONS:
            raise ValueError(f"Unknown config section `[{section}]`. Received: {section!r}. "
                             f"Known sections: {', '.join(SECTIONS)}.")
        if not isinstance(values, dict):
            raise _validation.type_error(section, "a table of keys", values)
        for key, value in values.items():
            name = f"{section}.{key}"
            if name not in _BY_NAME:
                known = ", ".join(f.key for f in FIELDS if f.section == section)
                raise ValueError(f"Unknown config key `{name}`. Received: {name}={value!r}. "
                                 f"Known keys in [{section}]: {known}.")
            config[section][key] = _check_kind(_BY_NAME[name], value)
    check(config)
    return config


def _check_kind(field, value):
    name, kind = field.name, field.kind
    if kind.startswith("list["):
        if not isinstance(value, (list, tuple)):
            raise _validation.type_error(name, f"a list ({kind})", value)
        item = dataclasses.replace(field, kind=kind[5:-1])
        return [_check_kind(item, v) for v in value]
    if kind == "str":
        _validation.check_type(name, value, str, "a string")
    elif kind == "bool":
        _validation.check_type(name, value, bool, "true or false")
    elif kind == "int":
        _validation.check_integer(name, value)
    elif kind == "number":
        value = _validation.check_finite_number(name, value)
    elif kind == "vectorize":
        from kerastrain.tuning._vectorized import check_vectorize

        value = check_vectorize(value, name)
    if field.choices and not kind.startswith("list"):
        _validation.check_one_of(name, value, field.choices)
    return value


def check(config):
    """Value checks across fields (ranges, empty choices, cv, workers)."""
    data, model, search = config["data"], config["model"], config["search"]
    _validation.check_in_range("data.test_fraction", data["test_fraction"], 0.0, 1.0,
                               high_inclusive=False)
    _validation.check_in_range("data.validation_fraction", data["validation_fraction"],
                               0.0, 1.0, low_inclusive=False, high_inclusive=False)
    for key in ("units", "activations", "initializers", "optimizers", "schedules",
                "batch_norm", "batch_sizes"):
        if not model[key]:
            raise _validation.argument_error(
                f"model.{key}", "be a non-empty list of choices", model[key],
                "An empty choice leaves nothing to search: list at least one value.")
    for key in ("activations", "initializers", "optimizers", "schedules"):
        field = _BY_NAME[f"model.{key}"]
        for value in model[key]:
            _validation.check_one_of(f"model.{key}", value, field.choices)
    _validation.check_integer("model.steps_per_execution", model["steps_per_execution"],
                              minimum=1)
    _validation.check_integer("search.max_trials", search["max_trials"], minimum=0,
                              hint="Use 0 for the default budget.")
    _validation.check_integer("search.max_epochs", search["max_epochs"], minimum=1)
    _validation.check_positive("search.time_limit", search["time_limit"], allow_zero=True)
    try:
        _cv.check_cv(search["cv"])
    except ValueError:
        raise _validation.argument_error(
            "search.cv", "be 0 (hold-out validation) or an integer >= 2 (number of folds)",
            search["cv"]) from None
    _validation.check_integer("search.seed", search["seed"], minimum=0)
    # A chief may serve remote workers only (workers = 0); otherwise someone must run trials.
    _validation.check_integer("parallel.workers", config["parallel"]["workers"],
                              minimum=0 if config["parallel"]["chief"] else 1,
                              hint=None if config["parallel"]["chief"] else
                              "workers = 0 is allowed only with parallel.chief set.")
    _validation.check_positive("parallel.connect_timeout", config["parallel"]["connect_timeout"])
    _validation.check_in_range("parallel.memory_fraction", config["parallel"]["memory_fraction"],
                               0.0, 1.0)
    if config["parallel"]["chief"]:
        parse_address(config["parallel"]["chief"], "parallel.chief")
    if not config["output"]["directory"]:
        raise _validation.argument_error("output.directory", "be a non-empty path", "")
    return config


def parse_address(address, name="chief"):
    """``(host, port)`` from ``"HOST:PORT"``."""
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _validation.argument_error(name, "be HOST:PORT with a port in 1..65535", address,
                                         "For example 127.0.0.1:8470.")
    return host, int(port)


def load_config(path=None, overrides=None):
    """The default config updated by the file at ``path`` and then ``overrides``."""
    config = default_config()
    if path is not None:
        config = merge(read_file(path), config)
    if overrides:
        config = merge(overrides, config)
    return config


def parse_assignment(text):
    """``"search.max_trials=3"`` -> ``{"search": {"max_trials": 3}}`` (TOML values)."""
    import tomllib

    name, sep, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot:
        raise _validation.argument_error("--set", "look like SECTION.KEY=VALUE", text)
    try:
        value = tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word is a string, as on a command line
    return {section: {key: value}}


# Fields a resumed search may change: how many trials and for how long, how trials run
# and what is reported. Every other field defines the search (its data, space, algorithm,
# budget per trial or seed): changing one on resume would mix two searches in one table.
RESUMABLE_FIELDS = ("search.max_trials", "search.time_limit", "search.vectorize",
                    "model.steps_per_execution", "output.overwrite", "output.retrain",
                    "output.tensorboard")
_REPORTED_FIELDS = ("search.max_trials", "search.time_limit")
SAVED_CONFIG_FILE = "kerastrain_config.json"


def _changes(saved, config):
    """``[(name, old, new)]`` of the fields that differ (sections present in both)."""
    changes = []
    for field in FIELDS:
        old = saved.get(field.section, {}).get(field.key, field.default)
        new = config[field.section][field.key]
        if old != new:
            changes.append((field.name, old, new))
    return changes


def check_resume(config, saved, location):
    """Which changes of a resumed search are applied; ValueError for the others.

    Args:
        config: the config of this run.
        saved: the config the search in ``location`` was started (or last resumed) with.
        location: the project directory, for the message.

    Returns the one-line notes of the safe changes applied (``search.max_trials``,
    ``search.time_limit``); `parallel.*` and the other `RESUMABLE_FIELDS` change silently.
    """
    changes = _changes(saved, config)
    refused = [(n, o, v) for n, o, v in changes
               if n not in RESUMABLE_FIELDS and not n.startswith("parallel.")]
    if refused:
        shown = "; ".join(f"{name} {to_toml_value(old)} -> {to_toml_value(new)}"
                          for name, old, new in refused[:3])
        more = f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""
        raise ValueError(
            f"Cannot resume the search in {location!r} with a different config: {shown}{more}. "
            "Resume with the config it was started with, pass --overwrite to start afresh, "
            "or choose a new --directory.")
    return [f"resuming {location!r} with {name} {to_toml_value(old)} -> "
            f"{to_toml_value(new)} (applied)"
            for name, old, new in changes if name in _REPORTED_FIELDS]
