"""kerastrain benchmarks: `python -m bench NAME [--quick] [--out DIR]`.

Each benchmark is a module ``bench/<name>.py`` with a function
``run(quick: bool) -> dict``. It measures kerastrain and its baseline (the
Keras built-in or plain KerasTuner) *in the same process*, and returns
``{"ratios": {label: kerastrain_time / baseline_time, ...}, ...}`` plus any
raw timings. The harness adds the machine description, prints the ratios and
writes ``<out>/<name>.json``.
"""
