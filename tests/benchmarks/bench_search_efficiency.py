"""Search efficiency on the tabular benchmark: SurrogateSearcher vs random search vs Optuna's TPE.

    nice python tests/benchmarks/bench_search_efficiency.py [--seeds 20] [--budget 150]

The table (``tabular/table.parquet``, every configuration of ``tabular/space.yaml`` trained by
ecgsearch; see tabular/README.md) is replayed by a Ray Tune trainable that looks each suggested
configuration up, so the three searchers run on real Ray Tune, one trial at a time, exactly as they
would on real trials, only faster. For each searcher and seed a run ends at its first configuration
in the table's top 1% (``val.macro_auroc`` at or above the 99th percentile) or after ``--budget``
trials. Printed: the median number of trials to reach the top 1% (a run that never does counts as
``budget + 1``), the ratios side by side, and the surrogate's 3-fold cross-validated Pearson r when
fitted on 100 random finished configurations of the table. The curves (median best-so-far rank percentile,
with the interquartile band) go to ``docs/img/search_efficiency.png`` when the run is the documented one
(on Ray Tune, every searcher), to ``--plot PATH`` otherwise. ``--offline`` drives the searchers directly,
without Ray (for quick experiments; the documented figures use Ray).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ecgsearch.analysis import config_frame, explain
from ecgsearch.search import RandomSearcher, SurrogateSearcher
from ecgsearch.search.sampling import dimensions, signatures
from ecgsearch.space import load_space

HERE = Path(__file__).resolve().parent
TABLE = HERE / "tabular" / "table.parquet"
SPACE = HERE / "tabular" / "space.yaml"
PNG = HERE.parents[1] / "docs" / "img" / "search_efficiency.png"
METRIC = "val.macro_auroc"


class Table:
    """Configuration -> value lookups over the table, by the same row hash the searcher uses."""

    def __init__(self, path: Path, space: Any) -> None:
        self.space = space
        self.frame = pd.read_parquet(path)
        self.columns = [d.column for d in dimensions(space)]
        self.values = dict(zip(signatures(self.frame, self.columns).tolist(), self.frame[METRIC].tolist()))
        ranked = np.sort(self.frame[METRIC].dropna().to_numpy())  # NaN: a configuration that fails
        self.threshold = float(np.quantile(ranked, 0.99))
        self.ranked = ranked

    def value(self, config: dict[str, Any]) -> float:
        hp = self.space.active({k: v for k, v in config.items() if not k.startswith("_")})
        key = int(signatures(config_frame([hp], self.space), self.columns)[0])
        return self.values[key]

    def percentile(self, value: float) -> float:
        """Share of the table (in %) at or below ``value``."""
        return 100.0 * np.searchsorted(self.ranked, value, side="right") / len(self.ranked)


def make_searchers(space: Any, budget: int) -> dict[str, Callable[[int], Any]]:
    from optuna.distributions import CategoricalDistribution
    from optuna.samplers import TPESampler
    from ray.tune.search.optuna import OptunaSearch

    # every dimension of this space is a choice; TPE sees them all (it has no conditional parameters,
    # so an inactive one is sampled and ignored by the lookup)
    tune_space = {d.name: CategoricalDistribution(list(d.dist.values)) for d in dimensions(space)}
    return {
        "surrogate": lambda seed: SurrogateSearcher(space, "score", "max", seed=seed, trials=budget),
        "random": lambda seed: RandomSearcher(lambda i: space.sample(seed, i), budget, "score", "max"),
        "tpe": lambda seed: OptunaSearch(space=tune_space, metric="score", mode="max",
                                         sampler=TPESampler(seed=seed)),
    }


def lookup_trainable(config: dict[str, Any], table: Table) -> None:
    from ray import tune

    value = table.value(config)
    if np.isnan(value):
        raise RuntimeError("this configuration failed when the table was made (it cannot be built)")
    tune.report({"score": value})


def run_tune(searcher: Any, table: Table, budget: int) -> list[float]:
    """One search on real Ray Tune, a trial at a time, until the top 1% or the budget; the values in order."""
    from ray import tune

    values: list[float] = []

    class Record(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            values.append(float(trial.last_result["score"]))

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            values.append(float("nan"))

    class ReachedTop(tune.Stopper):
        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            return any(v >= table.threshold for v in values if not np.isnan(v))

    tuner = tune.Tuner(tune.with_parameters(lookup_trainable, table=table),
                       tune_config=tune.TuneConfig(metric="score", mode="max", search_alg=searcher,
                                                   num_samples=budget, max_concurrent_trials=1, reuse_actors=True),
                       run_config=tune.RunConfig(storage_path="/tmp/ecgsearch-bench-efficiency", verbose=0,
                                                 callbacks=[Record()], stop=ReachedTop()))
    tuner.fit()
    return values


def run_offline(searcher: Any, table: Table, budget: int) -> list[float]:
    values: list[float] = []
    for i in range(budget):
        config = searcher.suggest(f"trial{i}")
        if config is None or config == "FINISHED":
            break
        values.append(table.value(config))
        failed = bool(np.isnan(values[-1]))
        searcher.on_trial_complete(f"trial{i}", None if failed else {"score": values[-1], "training_iteration": 1},
                                   error=failed)
        if values[-1] >= table.threshold:
            break
    return values


def optuna_logging() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def trials_to_top(values: list[float], threshold: float, budget: int) -> int:
    hits = [i + 1 for i, v in enumerate(values) if v >= threshold]
    return hits[0] if hits else budget + 1


def cv_pearson(table: Table, seeds: int, n: int = 100) -> list[float]:
    """3-fold CV Pearson r of the default surrogate fitted on ``n`` random finished configurations."""
    out = []
    finished = table.frame[table.frame["status"] == "ok"]
    for seed in range(seeds):
        sample = finished.sample(n, random_state=seed)
        out.append(float(explain(sample, "macro_auroc", "max", folds=3, group_by=None, seed=seed)
                         .cv.loc[0, "pearson_r"]))
    return out


def pruning(table: Table, spec: Any, document: Any, seeds: int, n: int = 100) -> list[tuple[int, float]]:
    """Prune the space on ``n`` random trials of the table: top-1% configurations kept, share of the table kept."""
    from ecgsearch.analysis.prune import contains, prune_space
    from ecgsearch.search.sampling import row_configs
    from ecgsearch.space import parse_space

    configs = row_configs(spec.space, table.frame)
    top = [c for c, v in zip(configs, table.frame[METRIC]) if v >= table.threshold]
    out = []
    for seed in range(seeds):
        pruned = prune_space(spec, document, table.frame.sample(n, random_state=seed), seed=seed)
        space = parse_space(pruned.text()).space
        kept = sum(not contains(space, c) for c in configs)
        out.append((sum(not contains(space, c) for c in top), kept / len(configs)))
    return out


def plot(curves: dict[str, np.ndarray], hits: dict[str, list[int]], table: Table, budget: int,
         medians: dict[str, float], how: str, path: Path) -> None:
    """Left: share of runs in the top 1% after t trials. Right: median best-so-far percentile, IQR band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = np.arange(1, budget + 1)
    seeds = len(next(iter(hits.values())))
    for name, runs in curves.items():
        reached = [(np.array(hits[name]) <= t).mean() * 100 for t in x]
        line, = left.step(x, reached, where="post", label=f"{name}: median {medians[name]:g} trials")
        q25, q50, q75 = np.percentile(runs, [25, 50, 75], axis=0)
        right.plot(x, q50, color=line.get_color(), label=name)
        right.fill_between(x, q25, q75, color=line.get_color(), alpha=0.15)
    left.axhline(50, color="grey", ls="--", lw=1)
    left.set(xlabel="trials", ylabel=f"runs in the table's top 1% (% of {seeds} seeds)", xscale="log",
             title="Reaching the top 1%")
    left.legend(loc="upper left", fontsize=8)
    right.axhline(99, color="grey", ls="--", lw=1)
    right.set(xlabel="trials", ylabel="best so far (percentile of the table)", xscale="log", ylim=(80, 100.3),
              title="Best so far: median and interquartile band")
    right.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Tabular benchmark: {len(table.frame)} configurations trained by ecgsearch, replayed {how}",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--offline", action="store_true", help="drive the searchers without Ray")
    parser.add_argument("--methods", default="surrogate,random,tpe",
                        help="comma-separated searchers to compare; 'none': only the CV and pruning figures")
    parser.add_argument("--plot", type=Path, default=None,
                        help=f"where the curves go (default: {PNG.relative_to(HERE.parents[1])} for the documented "
                             "run, on Ray Tune with every searcher; no figure for other runs)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)  # the failing configurations' tracebacks
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # One-second lookups: keep Tune's per-trial bookkeeping (result files, experiment snapshots) small.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "600")
    optuna_logging()
    space = load_space(SPACE).space
    table = Table(TABLE, space)
    top = int((table.frame[METRIC] >= table.threshold).sum())
    print(f"table: {len(table.frame)} configurations; top 1%: {top} at {METRIC} >= {table.threshold:.4f}")
    every = make_searchers(space, args.budget)
    searchers = {k: v for k, v in every.items() if k in args.methods.split(",")}
    if searchers and not args.offline:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    run = run_offline if args.offline else run_tune
    hits: dict[str, list[int]] = {name: [] for name in searchers}
    curves: dict[str, list[np.ndarray]] = {name: [] for name in searchers}
    started = time.perf_counter()
    for seed in range(args.seeds if searchers else 0):
        for name, make in searchers.items():
            values = run(make(seed), table, args.budget)
            hits[name].append(trials_to_top(values, table.threshold, args.budget))
            seen = np.nan_to_num(np.array(values), nan=-np.inf)
            best = np.maximum.accumulate(np.concatenate([seen, np.full(args.budget - len(seen), seen.max())]))
            curves[name].append(np.array([table.percentile(v) for v in best]))
        print(f"seed {seed:2d}: " + "  ".join(f"{n} {hits[n][-1]:4d}" for n in searchers)
              + f"   ({time.perf_counter() - started:.0f} s)", flush=True)
    medians = {name: float(np.median(h)) for name, h in hits.items()}
    print(f"\ntrials to reach the top 1% over {args.seeds} seeds (budget {args.budget}; misses count as "
          f"{args.budget + 1}):")
    for name, h in hits.items():
        missed = sum(x > args.budget for x in h)
        print(f"  {name:10s} median {medians[name]:6.1f}  mean {np.mean(h):6.1f}  missed {missed}/{len(h)}")
    if {"surrogate", "random"} <= set(medians):
        print(f"  surrogate / random median ratio: {medians['surrogate'] / medians['random']:.3f} (goal <= 1/3)")
    if {"surrogate", "tpe"} <= set(medians):
        print(f"  surrogate / tpe median ratio:    {medians['surrogate'] / medians['tpe']:.3f} (goal <= 1)")
    rs = cv_pearson(table, min(args.seeds, 20))
    print(f"surrogate 3-fold CV Pearson r on 100 random finished configurations: median {np.median(rs):.3f}, "
          f"min {np.min(rs):.3f} over {len(rs)} samples (goal >= 0.9)")
    from ecgsearch.space import load_space as load_spec
    from ecgsearch.space.yamlio import load_yaml, read_text

    kept = pruning(table, load_spec(SPACE), load_yaml(read_text(SPACE), str(SPACE))[0], min(args.seeds, 20))
    print(f"pruning on 100 random trials ({len(kept)} samples): top-1% configurations kept "
          f"{sum(k for k, _ in kept)}/{top * len(kept)}; the pruned space holds a median "
          f"{100 * np.median([f for _, f in kept]):.0f}% of the table")
    documented = not args.offline and set(searchers) == set(every)
    path = args.plot or (PNG if documented else None)
    if searchers and path is not None:
        plot({k: np.stack(v) for k, v in curves.items()}, hits, table, args.budget, medians,
             "without Ray (--offline)" if args.offline else "on Ray Tune", path)
        print(f"curves: {path}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
