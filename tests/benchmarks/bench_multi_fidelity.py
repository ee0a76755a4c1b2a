"""Multi-fidelity search on YAHPO Gym's LCBench: anytime regret against the epochs spent (issue 17, 8(b)).

    pip install -e ".[bench]"          # onnxruntime
    git clone https://github.com/slds-lmu/yahpo_data ~/.cache/ecgsearch/yahpo_data   # or --data / $YAHPO_DATA
    nice python tests/benchmarks/bench_multi_fidelity.py [--seeds 10] [--budget 30] [--workers 4] [--jobs 1]

LCBench's YAHPO surrogate (``public_hpo/yahpo.py``) gives each configuration's validation accuracy at every
epoch 1..52, so each trial's learning curve is known when it is proposed and revealed one epoch at a time.
A search is a pairing ``searcher+scheduler``: the searcher is ``random`` (uniform draws) or ``surrogate``
(ecgsearch's ``SurrogateSearcher`` with its defaults); the scheduler is one of ecgsearch's scheduler
plugins, created by the plugin registry with its default options, exactly the Ray Tune ``TrialScheduler``
a space file's ``budget.scheduler`` gets (``asha``: grace period 1, eta 2; ``hyperband``: synchronous
HyperBand, eta 3, the bracket with the most trials first; ``learning_curve``: grace period 3, top 3,
confidence 0.7, compare all, 3 curves). Runs recorded before 2026-12-05 under a name without options used
the defaults of then: ``learning_curve`` confidence 0.9 and compare completed, ``hyperband`` Ray's order
(now ``hyperband/order="full_length_first"``).
Options are given after the scheduler's name: ``surrogate+learning_curve/top_k=1/confidence=0.8``.

The search runs on a simulated cluster of ``--workers`` workers, each epoch costing one time unit: a small
stand-in for Tune's controller (``Controller``) calls the scheduler's and the searcher's callbacks in
Tune's order (``on_trial_add``, ``choose_trial_to_run``, ``on_trial_result`` per epoch with CONTINUE /
PAUSE / STOP, ``stop_trial`` for paused trials, ``on_trial_complete``), so HyperBand pauses and resumes
trials and the searcher sees every report as it would in Tune. A run ends when ``--budget`` x 52 epochs
have been spent (the sum over trials: with the workers always busy, wall time x workers).

Anytime regret: after each epoch, the best validation accuracy reported so far by any trial at any epoch
(what the results table ranks by: each trial's best epoch), normalised as ``(y* - best) / (y* - median)``
with y* the best value known for the instance (the reference sample's best epoch and every run's) and the
median the median best epoch of ``--reference`` random configurations. Printed: mean regret (over seeds,
then over the instances: the three of YAHPO's suite, or ``--instances all`` for every LCBench task) at 5,
10, 20 and 30 (or ``--budget``) x 52 epochs, and for each search the budget at which its mean regret first
falls to what ``random+asha`` reaches with the whole budget, as a fraction of that budget (the goal: <=
0.5); then the same fraction per instance (median, how many within 0.5, how many never). Runs go to
``--results`` (JSON lines) and are not repeated.

``--noise SD`` adds independent Gaussian noise (SD accuracy points) to every reported epoch, as a real
validation curve has (LCBench's surrogate curves are smooth): the schedulers and searchers see the noisy
values, and the regret is that of the true (noise-free) value of the reported best epoch, the model a user
would keep. The summary covers the runs at the ``--noise`` given (default 0).
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "public_hpo"))
from yahpo import DATA_URL, SCENARIOS, YahpoProblem, all_instances, data_dir, missing

DEFAULT_RESULTS = Path.home() / ".cache" / "ecgsearch" / "multi_fidelity_runs.jsonl"
EPOCHS = 52  # LCBench's epochs
METRIC = "objective"
DEFAULT_METHODS = ("random+asha,random+hyperband,surrogate+hyperband,surrogate+learning_curve,"
                   "random+learning_curve,surrogate+asha")
BASELINE = "random+asha"
CHECKPOINTS = (5, 10, 20, 30)  # x EPOCHS


class Curves:
    """Validation-accuracy curves (epochs 1..52) of LCBench configurations, one ONNX call per batch."""

    def __init__(self, problem: YahpoProblem) -> None:
        self.problem = problem
        self.free = dataclasses.replace(problem, scenario=dataclasses.replace(problem.scenario, fidelity={}))

    def __call__(self, configs: list[dict[str, Any]]) -> np.ndarray:
        rows = [{**c, "epoch": e} for c in configs for e in range(1, EPOCHS + 1)]
        return self.free.evaluate(rows, chunk=52 * 512).reshape(len(configs), EPOCHS)


# --- a stand-in for Tune's controller ---------------------------------------------------------------------

class SimTrial:
    """What Tune's schedulers read of a trial: its id, status, ``is_saving``, last result."""

    def __init__(self, trial_id: str, config: dict[str, Any], curve: np.ndarray) -> None:
        self.trial_id, self.config, self.curve = trial_id, config, curve
        self.status, self.is_saving, self.last_result, self.epoch = "PENDING", False, {}, 0

    def __repr__(self) -> str:
        return self.trial_id


class Controller:
    """Runs trials on ``workers`` workers in simulated time (one unit per epoch), calling the scheduler's
    and searcher's callbacks as Tune's ``TuneController`` does."""

    def __init__(self, scheduler: Any, searcher: Any, curves: Curves, workers: int, noise: float = 0.0,
                 seed: int = 0) -> None:
        self.scheduler, self.searcher, self.curves, self.workers = scheduler, searcher, curves, workers
        self.noise, self.rng = noise, np.random.default_rng([seed, 2021])
        self.trials: list[SimTrial] = []
        self.running: list[tuple[float, int, SimTrial]] = []  # (epoch done at, order, trial)
        self.clock, self.spent, self.order = 0.0, 0, 0
        self.best = -np.inf  # the best value reported so far
        self.kept = -np.inf  # the true value of that epoch (the same without noise)
        self.trace: list[float] = []  # ``kept`` after each epoch spent
        self.suggest_seconds = 0.0

    def get_trials(self) -> list[SimTrial]:
        return self.trials

    def stop_trial(self, trial: SimTrial) -> None:
        if trial.status in ("TERMINATED", "ERROR"):
            return
        if trial.status in ("PENDING", "PAUSED"):
            self.scheduler.on_trial_remove(self, trial)
            self.searcher.on_trial_complete(trial.trial_id)
        else:
            self.running = [r for r in self.running if r[2] is not trial]
            heapq.heapify(self.running)
            self._complete(trial)
        trial.status = "TERMINATED"

    def _complete(self, trial: SimTrial) -> None:
        self.scheduler.on_trial_complete(self, trial, trial.last_result)
        self.searcher.on_trial_complete(trial.trial_id, result=trial.last_result)
        trial.status = "TERMINATED"

    def _new_trial(self) -> None:
        trial_id = f"t{len(self.trials):05d}"
        started = time.perf_counter()
        config = self.searcher.suggest(trial_id)
        self.suggest_seconds += time.perf_counter() - started
        trial = SimTrial(trial_id, config, self.curves([config])[0])
        self.trials.append(trial)
        self.scheduler.on_trial_add(self, trial)

    def _start(self, trial: SimTrial) -> None:
        trial.status = "RUNNING"
        self.order += 1
        heapq.heappush(self.running, (self.clock + 1.0, self.order, trial))

    def run(self, budget: int) -> list[float]:
        while self.spent < budget:
            while len(self.running) < self.workers:
                trial = self.scheduler.choose_trial_to_run(self)
                if trial is None:
                    self._new_trial()
                    trial = self.scheduler.choose_trial_to_run(self)
                    if trial is None:
                        break
                self._start(trial)
            self.clock, _, trial = heapq.heappop(self.running)
            trial.epoch += 1
            self.spent += 1
            true = float(trial.curve[trial.epoch - 1])
            value = true + float(self.rng.normal(0.0, self.noise)) if self.noise else true
            if value > self.best:
                self.best, self.kept = value, true
            self.trace.append(self.kept)
            result = {"training_iteration": trial.epoch, METRIC: value, "trial_id": trial.trial_id}
            trial.last_result = result
            self.searcher.on_trial_result(trial.trial_id, result)
            decision = self.scheduler.on_trial_result(self, trial, result)
            if trial.epoch >= EPOCHS or decision == "STOP":
                self._complete(trial)
            elif decision == "PAUSE":
                trial.status = "PAUSED"
            else:
                self.order += 1
                heapq.heappush(self.running, (self.clock + 1.0, self.order, trial))
        return self.trace


class RandomConfigs:
    """Uniform draws of the LCBench space, as a searcher (``suggest`` / ``on_trial_*``)."""

    def __init__(self, problem: YahpoProblem, seed: int) -> None:
        self.problem, self.seed, self.pool, self.next = problem, seed, [], 0

    def suggest(self, trial_id: str) -> dict[str, Any]:
        if self.next >= len(self.pool):
            self.pool += self.problem.random_configs(1000, seed=100_003 + self.seed * 1000 + len(self.pool) // 1000)
        self.next += 1
        return self.pool[self.next - 1]

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        pass

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass


class PlainNames:
    """The surrogate searcher over the problem's plain space, handing back YAHPO's names."""

    def __init__(self, problem: YahpoProblem, seed: int) -> None:
        from ecgsearch.search import SurrogateSearcher

        self.problem = problem
        self.searcher = SurrogateSearcher(problem.search_space(), METRIC, "max", seed=seed)

    def suggest(self, trial_id: str) -> dict[str, Any]:
        return self.problem.plain(self.searcher.suggest(trial_id))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, result, error)


def make_scheduler(spec: str, problem: YahpoProblem, seed: int) -> Any:
    """The scheduler plugin ``NAME`` or ``NAME/option=value/...`` (defaults for the rest), as the engine
    creates it."""
    from ecgsearch import SchedulerRun
    from ecgsearch.plugins import get_registries
    from ecgsearch.search.sampling import plain_space

    name, *pairs = spec.split("/")
    options = {k: json.loads(v) for k, v in (p.split("=", 1) for p in pairs)}
    run = SchedulerRun(metric=METRIC, mode="max", max_t=EPOCHS, space=plain_space(problem.search_space()), seed=seed)
    scheduler = get_registries().schedulers.get(name).create(run, **options)
    scheduler.set_search_properties(METRIC, "max")
    return scheduler


def _task(args: tuple[str, str, str, int, int, int, float, str]) -> dict[str, Any]:
    label, method, instance, seed, budget, workers, noise, root = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    np.random.seed(seed)  # Ray's ASHA draws its bracket with numpy's global generator
    problem = YahpoProblem.load(Path(root), "lcbench", instance)
    searcher_name, scheduler_name = method.split("+")
    searcher = PlainNames(problem, seed) if searcher_name == "surrogate" else RandomConfigs(problem, seed)
    controller = Controller(make_scheduler(scheduler_name, problem, seed), searcher, Curves(problem), workers,
                            noise, seed)
    started = time.perf_counter()
    trace = controller.run(budget * EPOCHS)
    return {"label": label, "method": method, "instance": instance, "seed": seed, "budget": budget,
            "workers": workers, "noise": noise, "seconds": time.perf_counter() - started,
            "suggest_seconds": controller.suggest_seconds, "trials": len(controller.trials),
            "full": sum(t.epoch >= EPOCHS for t in controller.trials),
            "trace": [round(v, 5) for v in trace[EPOCHS // 4 - 1::EPOCHS // 4]]}  # every 13 epochs


def reference(root: Path, instance: str, n: int) -> dict[str, float]:
    problem = YahpoProblem.load(root, "lcbench", instance)
    best = Curves(problem)(problem.random_configs(n, seed=7)).max(axis=1)
    return {"best": float(best.max()), "median": float(np.median(best))}


def load_runs(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarise(runs: list[dict[str, Any]], refs: dict[str, dict[str, float]], budget: int, workers: int,
              noise: float = 0.0) -> None:
    runs = [r for r in runs if r["budget"] == budget and r["workers"] == workers and r["instance"] in refs
            and r.get("noise", 0.0) == noise]
    best_known = {i: max([refs[i]["best"], *(max(r["trace"]) for r in runs if r["instance"] == i)]) for i in refs}
    steps = budget * 4  # trace points: every 13 epochs
    curves: dict[str, dict[str, list[np.ndarray]]] = {}
    info: dict[str, list[tuple[int, int, float, float]]] = {}
    for r in runs:
        name = r["method"] if r["label"] == "after" else f"{r['method']} ({r['label']})"
        y = np.asarray(r["trace"][:steps], dtype=float)
        regret = (best_known[r["instance"]] - y) / (best_known[r["instance"]] - refs[r["instance"]]["median"])
        curves.setdefault(name, {}).setdefault(r["instance"], []).append(regret)
        info.setdefault(name, []).append((r["trials"], r["full"], r["seconds"], r.get("suggest_seconds", 0.0)))
    mean = {}
    for name, per in curves.items():  # mean over seeds per instance, then over instances
        if len(per) == len(refs) and all(len(v) for v in per.values()):
            mean[name] = np.mean([np.mean(v, axis=0) for v in per.values()], axis=0)
    checkpoints = [c for c in CHECKPOINTS if c < budget] + [budget]
    header = ("| search | runs | " + " | ".join(f"regret @{c}x52" for c in checkpoints)
              + " | budget to reach random+asha's final regret | trials / run | full-length trials | s/run |")
    print("\n" + header + "\n|" + "---|" * (header.count("|") - 1))
    base = baseline(mean)
    target = mean[base][-1] if base else None
    order = sorted(mean, key=lambda n: mean[n][-1])
    for name in order:
        regret = mean[name]
        cells = " | ".join(f"{regret[c * 4 - 1]:.4f}" for c in checkpoints)
        reach = "-"
        if target is not None:
            fraction = reach_fraction(regret, target)
            reach = f"{fraction:.2f}" if np.isfinite(fraction) else "not reached"
        stats = np.array(info[name])
        runs_n = sum(len(v) for v in curves[name].values())
        print(f"| {name} | {runs_n} | {cells} | {reach} | {stats[:, 0].mean():.0f} | {stats[:, 1].mean():.1f} "
              f"| {stats[:, 2].mean():.1f} |")
    if target is not None:
        print(f"\nrandom+asha's mean regret after {budget}x52 epochs: {target:.4f}; the goal is another search "
              f"reaching it within {budget / 2:g}x52 epochs (a fraction <= 0.50 above)")
        per_instance_reach(curves, order, base)


def baseline(names: Any) -> str | None:
    """The random+asha runs every search is measured against: unlabelled ones, else the first labelled ones
    (``--label`` runs of their own, e.g. with ``--noise``)."""
    return BASELINE if BASELINE in names else next((n for n in names if n.startswith(f"{BASELINE} (")), None)


def reach_fraction(regret: np.ndarray, target: float) -> float:
    """The share of the budget after which ``regret`` (one value per trace point) first falls to ``target``;
    inf when it never does."""
    hit = np.flatnonzero(regret <= target + 1e-12)
    return (hit[0] + 1) / len(regret) if len(hit) else np.inf


def per_instance_reach(curves: dict[str, dict[str, list[np.ndarray]]], order: list[str], base: str) -> None:
    """The same budget fraction per instance (each against random+asha's final regret on that instance), so a
    mean over instances that one instance dominates shows as such: the median over instances and how many
    reach it within half the budget."""
    if len(curves[base]) < 2:
        return
    targets = {instance: np.mean(regrets, axis=0)[-1] for instance, regrets in curves[base].items()}
    print("\nper instance (mean over seeds; each against random+asha's final regret on that instance):")
    for name in order:
        values = np.array([reach_fraction(np.mean(regrets, axis=0), targets[instance])
                           for instance, regrets in curves[name].items() if instance in targets])
        if name != base and len(values):
            print(f"  {name}: median fraction {np.median(values):.2f} over {len(values)} instances; within 0.5 on "
                  f"{np.sum(values <= 0.5)}, not reached on {np.sum(~np.isfinite(values))}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help=f"YAHPO data (default $YAHPO_DATA or {data_dir()})")
    parser.add_argument("--instances", default=",".join(SCENARIOS["lcbench"].instances),
                        help="OpenML task ids, comma-separated, or 'all' (every LCBench task)")
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=30, help="epochs to spend per run, in units of 52")
    parser.add_argument("--workers", type=int, default=4, help="trials running at once")
    parser.add_argument("--reference", type=int, default=5000, help="random configurations per instance")
    parser.add_argument("--label", default="after")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--noise", type=float, default=0.0, help="SD of Gaussian noise added to each reported "
                        "epoch, in accuracy points (the regret is of the true values)")
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    root = data_dir(args.data)
    absent = missing(root, ["lcbench"])
    if absent:
        print(f"skipped: the YAHPO Gym data is not in {root} (missing {absent[0]}); clone {DATA_URL} there, or "
              "pass --data DIR.")
        return 0
    instances = (all_instances(root, "lcbench") if args.instances == "all"
                 else [i for i in args.instances.split(",") if i])
    refs = {i: reference(root, i, args.reference) for i in instances}
    for i, r in refs.items():
        print(f"lcbench {i:>7s}: best epoch of {args.reference} random configurations: best {r['best']:.3f}, "
              f"median {r['median']:.3f}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["label"], r["method"], r["instance"], r["seed"], r["budget"], r["workers"], r.get("noise", 0.0))
            for r in load_runs(args.results)}
    tasks = [(args.label, m, i, seed, args.budget, args.workers, args.noise, str(root))
             for seed in range(args.first_seed, args.first_seed + args.seeds) for i in instances
             for m in args.methods.split(",")
             if (args.label, m, i, seed, args.budget, args.workers, args.noise) not in done]
    if tasks and not args.summary_only:
        print(f"\n{len(tasks)} runs to do ({len(done)} recorded in {args.results}), {args.jobs} at a time", flush=True)
        started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.jobs) as pool, args.results.open("a") as out:
            for n, run in enumerate(pool.imap_unordered(_task, tasks), 1):
                out.write(json.dumps(run) + "\n")
                out.flush()
                print(f"  {n}/{len(tasks)} runs ({time.perf_counter() - started:.0f} s): {run['method']} "
                      f"{run['instance']} seed {run['seed']}: {run['seconds']:.1f} s, {run['trials']} trials",
                      flush=True)
    noise = f"; noise SD {args.noise:g} on every reported epoch" if args.noise else ""
    print(f"\nbudget {args.budget}x{EPOCHS} epochs on {args.workers} workers{noise}; regret: mean over seeds and "
          "instances of (y* - best so far) / (y* - median random)")
    summarise(load_runs(args.results), refs, args.budget, args.workers, args.noise)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
