"""`kerastrain tune` configuration: defaults, TOML/YAML, --help, and every bad input."""

import os

import pytest
import tomllib
from _tuning_helpers import tiny_config, tree, write_config, write_npz

from kerastrain import cli
from kerastrain.tuning import _config


def test_print_config_is_valid_toml_equal_to_the_default(capsys):
    assert cli.main(["tune", "--print-config"]) == 0
    printed = tomllib.loads(capsys.readouterr().out)
    assert printed == _config.default_config()


def test_help_documents_every_field(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tune", "--help"])
    assert exit_info.value.code == 0
    output = capsys.readouterr().out
    for field in _config.FIELDS:
        assert f"[{field.section}]" in output
        assert f"    {field.key} = " in output, field.name


def test_toml_and_yaml_files_give_the_same_config(tmp_path):
    toml_path = tmp_path / "tune.toml"
    toml_path.write_text('[search]\nmax_trials = 3\ncv = 4\n[model]\nunits = [16, 32]\n')
    yaml_path = tmp_path / "tune.yaml"
    yaml_path.write_text("search:\n  max_trials: 3\n  cv: 4\nmodel:\n  units: [16, 32]\n")
    from_toml = _config.load_config(toml_path)
    assert from_toml == _config.load_config(yaml_path)
    assert from_toml["search"]["max_trials"] == 3
    assert from_toml["search"]["cv"] == 4
    assert from_toml["model"]["units"] == [16, 32]
    assert from_toml["search"]["tuner"] == "random"  # untouched fields keep the default


def test_a_chief_may_have_no_local_workers():
    config = _config.load_config(None, {"parallel": {"chief": "0.0.0.0:8470", "workers": 0}})
    assert config["parallel"]["workers"] == 0


def test_set_overrides_parse_toml_values():
    assert _config.parse_assignment("search.max_trials=3") == {"search": {"max_trials": 3}}
    assert _config.parse_assignment("model.units=[8, 16]") == {"model": {"units": [8, 16]}}
    assert _config.parse_assignment("search.tuner=grid") == {"search": {"tuner": "grid"}}
    with pytest.raises(ValueError, match=r"Argument `--set` must look like SECTION.KEY=VALUE"):
        _config.parse_assignment("max_trials")


@pytest.mark.parametrize("overrides, error, message", [
    ({"serch": {}}, ValueError, r"Unknown config section `\[serch\]`. Received: 'serch'"),
    ({"search": {"max_trail": 3}}, ValueError,
     r"Unknown config key `search.max_trail`. Received: search.max_trail=3. Known keys"),
    ({"search": {"max_trials": "3"}}, TypeError,
     r"Argument `search.max_trials` must be an integer. Received: search.max_trials='3'"),
    ({"search": {"max_trials": -1}}, ValueError,  # 0 is the default budget (64 or 8)
     r"Argument `search.max_trials` must be an integer >= 0. Received: search.max_trials=-1"),
    ({"search": {"cv": 1}}, ValueError,
     r"Argument `search.cv` must be 0 \(hold-out validation\) or an integer >= 2"),
    ({"search": {"tuner": "evolution"}}, ValueError,
     r"Argument `search.tuner` must be one of 'random', 'grid', 'bayesian', 'hyperband'"),
    ({"model": {"activations": []}}, ValueError,
     r"Argument `model.activations` must be a non-empty list of choices. Received: "
     r"model.activations=\[\]"),
    ({"model": {"activations": ["swish"]}}, ValueError,
     r"Argument `model.activations` must be one of 'relu'"),
    ({"model": {"units": 64}}, TypeError, r"Argument `model.units` must be a list"),
    ({"output": {"tensorboard": "yes"}}, TypeError,
     r"Argument `output.tensorboard` must be true or false"),
    ({"data": {"test_fraction": 1.0}}, ValueError,
     r"Argument `data.test_fraction` must be in \[0, 1\)"),
    ({"parallel": {"workers": 0}}, ValueError,
     r"Argument `parallel.workers` must be an integer >= 1. Received: parallel.workers=0 "
     r"workers = 0 is allowed only with parallel.chief set."),
    ({"parallel": {"chief": "localhost"}}, ValueError,
     r"Argument `parallel.chief` must be HOST:PORT with a port in 1..65535"),
    ({"model": {"steps_per_execution": 0}}, ValueError,
     r"Argument `model.steps_per_execution` must be an integer >= 1"),
    ({"search": {"time_limit": -1}}, ValueError, r"Argument `search.time_limit` must be >= 0"),
    ({"parallel": {"connect_timeout": 0}}, ValueError,
     r"Argument `parallel.connect_timeout` must be > 0"),
    ({"parallel": {"memory_fraction": 2.0}}, ValueError,
     r"Argument `parallel.memory_fraction` must be in \[0, 1\]"),
    ({"data": {"validation_fraction": 0.0}}, ValueError,
     r"Argument `data.validation_fraction` must be in \(0, 1\)"),
    ({"output": {"directory": ""}}, ValueError, r"Argument `output.directory` must be a non-empty"),
    ({"search": []}, TypeError, r"Argument `search` must be a table of keys"),
])
def test_bad_config_is_rejected_with_the_key_and_value(overrides, error, message):
    with pytest.raises(error, match=message):
        _config.load_config(None, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Config file not found: .*missing.toml"):
        _config.read_file(tmp_path / "missing.toml")
    other = tmp_path / "tune.json"
    other.write_text("{}")
    with pytest.raises(ValueError, match=r"Argument `config` must end in .toml, .yaml or .yml"):
        _config.read_file(other)
    broken = tmp_path / "broken.toml"
    broken.write_text("[search\nmax_trials = 3")
    with pytest.raises(ValueError, match=r"Config file .*broken.toml' cannot be parsed"):
        _config.read_file(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(TypeError, match=r"Argument `config` must be a mapping of sections"):
        _config.read_file(listed)
    with pytest.raises(TypeError, match=r"Argument `config` must be a path"):
        _config.read_file(3)


def _cli_error(capsys, *args):
    status = cli.main(list(args))
    error = capsys.readouterr().err.strip()
    return status, error


def test_cli_bad_input_is_one_line_nonzero_and_leaves_results_untouched(tmp_path, capsys):
    """Unknown key, wrong type, missing data file, cv < 2, empty choice: nothing damaged."""
    out = tmp_path / "out"
    project = out / "search"
    project.mkdir(parents=True)
    (project / "results.csv").write_text("trial_id,status,score\n0,COMPLETED,0.9\n")
    before = tree(out)
    data = write_npz(str(tmp_path))
    base = tiny_config(str(out), data)
    cases = {
        "unknown.toml": "[search]\nmax_trail = 3\n",
        "type.toml": '[search]\nmax_trials = "many"\n',
        "cv.toml": "[search]\ncv = 1\n",
        "empty.toml": "[model]\nunits = []\n",
        "missing.toml": '[data]\nsource = "no/such/file.npz"\n',
    }
    expected = {
        "unknown.toml": "Unknown config key `search.max_trail`",
        "type.toml": "Argument `search.max_trials` must be an integer",
        "cv.toml": "Argument `search.cv` must be 0",
        "empty.toml": "Argument `model.units` must be a non-empty list of choices",
        "missing.toml": "Data file not found: 'no/such/file.npz'",
    }
    for name, text in cases.items():
        path = tmp_path / name
        write_config(path, base)
        path.write_text(_merge_text(path.read_text(), text))
        status, error = _cli_error(capsys, "tune", str(path), "--quiet")
        assert status == 2, name
        assert error.startswith("kerastrain tune: error: "), error
        assert expected[name] in error, error
        assert "\n" not in error
        assert tree(out) == before, name


def _merge_text(base_text, extra):
    """Put ``extra``'s keys into the matching section of ``base_text`` (TOML)."""
    section = extra.split("]")[0] + "]"
    key_line = extra.split("\n", 1)[1].strip()
    key = key_line.split("=")[0].strip()
    lines = [line for line in base_text.splitlines() if not line.startswith(f"{key} =")]
    index = lines.index(section) if section in lines else None
    if index is None:
        return base_text + "\n" + extra
    lines.insert(index + 1, key_line)
    return "\n".join(lines) + "\n"


def test_cli_missing_config_file(tmp_path, capsys):
    status, error = _cli_error(capsys, "tune", str(tmp_path / "nope.toml"), "--directory",
                               str(tmp_path / "out"))
    assert status == 2
    assert "Config file not found" in error
    assert not os.path.exists(tmp_path / "out")
