"""The benchmark harness: timing helpers and the JSON report."""

import json

import pytest

from bench import __main__ as bench_main
from bench._harness import interleaved, report, time_call


def test_time_call_and_interleaved_measure_each_candidate():
    calls = {"a": 0, "b": 0}

    def make(label):
        def function():
            calls[label] += 1

        return function

    times = interleaved({"a": make("a"), "b": make("b")}, repeat=3, warmup=1, number=2)
    assert set(times) == {"a", "b"}
    assert calls == {"a": 8, "b": 8}  # (warmup 1 + repeat 3) x number 2
    assert time_call(make("a"), repeat=2, warmup=0) >= 0.0


def test_report_writes_json_with_the_machine(tmp_path, capsys):
    path = report("demo", {"ratios": {"x / baseline": 1.25}}, str(tmp_path))
    with open(path) as handle:
        data = json.load(handle)
    assert data["benchmark"] == "demo"
    assert data["ratios"] == {"x / baseline": 1.25}
    assert data["machine"]["backend"]
    assert "1.250x" in capsys.readouterr().out


def test_unknown_benchmark_is_an_error():
    with pytest.raises(SystemExit):
        bench_main.main(["no-such-benchmark"])


def test_backend_benchmark_quick(tmp_path):
    assert bench_main.main(["backend", "--quick", "--out", str(tmp_path)]) == 0
    (result,) = tmp_path.glob("backend-*.json")
    ratios = json.loads(result.read_text())["ratios"]
    assert set(ratios) == {"gradient: kerastrain / hand-written", "hvp / gradient (both kerastrain)"}
    assert all(value > 0 for value in ratios.values())
