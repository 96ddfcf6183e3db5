"""Tuning: `kerastrain tune` on config files (k-fold CV; Hyperband), then `results.csv`.

Chapter 4.6: random search on a log scale with k-fold cross-validation
(`examples/tune_cv.toml`), and Hyperband's dynamic resource allocation
(`examples/tune_hyperband.toml`: many trials get 1 epoch, the best get 3,
then 9). Both run through the command line exactly as a user would type it;
the results are read back with `kerastrain.tuning.read_results`.

    python examples/tuning_config.py --directory /tmp/tune
    kerastrain results /tmp/tune/digits_cv          # the table again, any time
    tensorboard --logdir /tmp/tune                  # one run per trial + HParams
    python examples/tuning_config.py --quick
"""

import os
import subprocess
import sys
import tempfile

import _common
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = {"digits_cv": "tune_cv.toml", "digits_hyperband": "tune_hyperband.toml"}
QUICK = {  # a CI smoke run: tiny budgets
    "digits_cv": ["search.max_trials=1", "search.max_epochs=1", "search.cv=2",
                  "output.retrain=false", "output.tensorboard=false", "model.units=[16]",
                  "model.layers=[1, 1]"],
    "digits_hyperband": ["search.max_trials=2", "search.max_epochs=2", "output.retrain=false",
                         "output.tensorboard=false", "model.units=[16]", "model.layers=[1, 1]"],
}


def tune(project, directory, quick):
    """Run ``kerastrain tune CONFIG`` in a subprocess; return the path of results.csv."""
    command = [sys.executable, "-m", "kerastrain.cli", "tune", os.path.join(HERE, CONFIGS[project]),
               "--directory", directory, "--overwrite", "--quiet"]
    for assignment in QUICK[project] if quick else []:
        command += ["--set", assignment]
    print("$ kerastrain " + " ".join(command[3:]), flush=True)
    subprocess.run(command, check=True)
    return os.path.join(directory, project, "results.csv")


def main():
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--directory", default=None)
    known, rest = parser.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    args = _common.parse_args("tuning_config", __doc__.splitlines()[0])
    directory = known.directory or tempfile.mkdtemp(prefix="kerastrain-tune-")
    import kerastrain

    tables = {}
    for project in CONFIGS:
        rows, meta = kerastrain.tuning.read_results(tune(project, directory, args.quick))
        tables[project] = rows
        print(f"\n{project}: {len(rows)} trials, best first (direction {meta.get('direction')})")
        for row in rows[:5]:
            print({key: row[key] for key in ("trial_id", "status", "score", "score_std", "epochs")
                   if key in row})

    plt = _common.pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    cv = [r for r in tables["digits_cv"] if isinstance(r.get("score"), float)]
    scores = np.array([r["score"] for r in cv])
    stds = np.array([r.get("score_std") or 0.0 for r in cv], dtype="float64")
    rates = np.array([r.get("learning_rate", np.nan) for r in cv], dtype="float64")
    axes[0].errorbar(rates, scores, yerr=stds, fmt="o", capsize=3)
    for r, rate, score in zip(cv, rates, scores):
        axes[0].annotate(f"{r.get('optimizer', '')}", (rate, score), fontsize=7,
                         textcoords="offset points", xytext=(4, -8))
    axes[0].set(xscale="log", xlabel="learning rate (sampled log-uniformly)",
                ylabel="mean validation accuracy over folds (± std)",
                title=f"random search, k-fold CV: {len(cv)} trials")
    hb = [r for r in tables["digits_hyperband"] if isinstance(r.get("score"), float)]
    epochs = np.array([r.get("epochs", np.nan) for r in hb], dtype="float64")
    jitter = np.random.default_rng(0).uniform(-0.1, 0.1, len(hb))
    points = axes[1].scatter(epochs + jitter, [r["score"] for r in hb],
                             c=np.log10([r.get("learning_rate", np.nan) for r in hb]),
                             cmap="viridis")
    figure.colorbar(points, ax=axes[1], label="log10 learning rate")
    axes[1].set(xlabel="epochs trained (Hyperband budget)", ylabel="validation accuracy",
                title=f"Hyperband: {len(hb)} trials")
    figure.suptitle(f"kerastrain tune on digits (results.csv under {os.path.basename(directory)})")
    _common.save(figure, args.figure)


if __name__ == "__main__":
    main()
