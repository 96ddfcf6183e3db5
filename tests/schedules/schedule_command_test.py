"""`kerastrain schedule`: the table printed and the PNG written match the schedule."""

import numpy as np
import pytest

from kerastrain import cli
from kerastrain.schedules import SGDR, values
from kerastrain.schedules._command import build, parse_settings


def test_prints_the_values_and_writes_the_plot(capsys, tmp_path):
    output = tmp_path / "sgdr.png"
    status = cli.main(["schedule", "SGDR", "--set", "initial_learning_rate=0.1",
                       "--set", "first_decay_steps=30", "--set", "t_mul=1.0",
                       "--steps", "90", "--every", "15", "--output", str(output)])
    assert status == 0
    printed = capsys.readouterr().out
    expected = values(SGDR(0.1, 30, t_mul=1.0), 90)
    for step in (0, 15, 30, 45, 60, 75, 89):
        row = next(line for line in printed.splitlines() if line.startswith(f"│ {step:>4} │"))
        assert float(row.split("│")[2]) == pytest.approx(expected[step], rel=1e-5, abs=1e-9)
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parse_settings_reads_literals_and_bare_words():
    assert parse_settings(["a=0.1", "b=100", "c=[1, 2]", "d=linear", "e='cos'", "f=True"]) == {
        "a": 0.1, "b": 100, "c": [1, 2], "d": "linear", "e": "cos", "f": True}
    schedule = build("OneCycle", ["maximal_learning_rate=0.1", "total_steps=50",
                                  "anneal_strategy=linear", "three_phase=True"])
    assert schedule.anneal_strategy == "linear" and schedule.three_phase is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["schedule", "Cosine"],
         "kerastrain schedule: error: Argument `schedule` must be one of 'Constant', "
         "'CyclicalLearningRate', 'ExponentialCyclicalLearningRate', 'InverseTimeDecay', "
         "'LinearDecay', 'MultiStepDecay', 'NaturalExponentialDecay', 'OneCycle', "
         "'OneCycleMomentum', 'PiecewiseConstant', 'SGDR', 'Scaled', 'Sequence', 'StepDecay', "
         "'Triangular2CyclicalLearningRate', 'TriangularCyclicalLearningRate', 'Warmup'. "
         "Received: schedule='Cosine'"),
        (["schedule", "StepDecay", "--set", "initial_learning_rate"],
         "kerastrain schedule: error: Argument `--set` must be NAME=VALUE. "
         "Received: --set='initial_learning_rate'"),
        (["schedule", "StepDecay", "--set", "initial_learning_rate=0.1"],
         "kerastrain schedule: error: StepDecay: StepDecay.__init__() missing 1 required "
         "positional argument: 'step_size'. See `help(kerastrain.schedules.StepDecay)`."),
        (["schedule", "StepDecay", "--set", "initial_learning_rate=0.1", "--set", "step_size=0"],
         "kerastrain schedule: error: Argument `step_size` must be an integer >= 1. "
         "Received: step_size=0"),
        (["schedule", "OneCycle", "--set", "maximal_learning_rate=0.1", "--set",
          "total_steps=10", "--set", "three_phase=1"],
         "kerastrain schedule: error: Argument `three_phase` must be a bool. "
         "Received: three_phase=1 of type int"),
        (["schedule", "Constant", "--set", "learning_rate=0.1", "--steps", "0"],
         "kerastrain schedule: error: Argument `--steps` must be an integer >= 1. "
         "Received: --steps=0"),
        (["schedule", "Constant", "--set", "learning_rate=0.1", "--every", "0"],
         "kerastrain schedule: error: Argument `--every` must be an integer >= 1. "
         "Received: --every=0"),
    ],
)
def test_user_errors_print_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == message


def test_values_in_the_table_cover_the_last_step(capsys):
    assert cli.main(["schedule", "LinearDecay", "--set", "initial_learning_rate=1.0",
                     "--set", "final_learning_rate=0.0", "--set", "decay_steps=9",
                     "--steps", "10"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    assert [int(row.split("│")[1]) for row in rows] == list(range(10))
    np.testing.assert_allclose([float(row.split("│")[2]) for row in rows],
                               1.0 - np.arange(10) / 9, rtol=1e-6, atol=1e-7)
