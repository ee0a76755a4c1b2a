"""Coverage of the scaling-law intervals, before and after, for docs/benchmarks.md.

Run:  nice python tests/benchmarks/bench_scaling_coverage.py [--seeds 250] [--old-seeds 60] [--tables 100]
      nice python tests/benchmarks/bench_scaling_coverage.py --decompose [--seeds 250]   (part 3 only)
      nice python tests/benchmarks/bench_scaling_coverage.py --main-only --seed-set fresh --old-seeds 0
      nice python tests/benchmarks/bench_scaling_coverage.py --main-only --noise-scale 0.5 --old-seeds 0
      nice python tests/benchmarks/bench_scaling_coverage.py --main-only --forced --old-seeds 0
      (--old-seeds 0: the new method only; --seeds 0: the old bootstrap only, in part 1; --seed-set: the
      benchmark's seeds, or the sets the noise-model rule was chosen on (tuning) or also checked on (fresh))

Part 1: ``error = E_inf + A x^-alpha`` with three laws (bent, steep, shallow; tests/test_scaling_coverage.py)
at 10, 20, 50 and 100 points over six decades, under additive noise (sd 10% of the smallest error),
multiplicative noise (5%) and Student-t noise with 3 d.o.f. (scale 10% of the smallest error). Each fit's
95% intervals are checked against the true alpha, E_inf and A. Methods: the residual bootstrap the
project used before (re-created here: grid start, ``least_squares``, percentile intervals of 200
resamples) and ``fit_power_law`` now (profile likelihood, noise model chosen or both). Also printed: the
curve band's coverage inside and beyond the data, coverage at 6-8 points and over 1-2 decades, how
often each noise model is chosen, and how often each warning fires.

Part 3 (``--decompose``): how the 10-point cells come about. Per true noise and per decision of
the points (additive chosen, multiplicative chosen, both), the share of fits and the coverage of each noise
model's region alone beside what is reported (one region, or the union); and how well any threshold on the
two models' likelihood difference separates additive (and Student-t) from multiplicative points.

Part 2: synthetic search tables (tests/test_scaling_coverage.py ``planted_table``: trials on a law with
alpha 0.3, poorer trials within +-25% of their costs, under-trained trials) in several variants; the
share of tables whose 95% interval holds the planted alpha, for the law fitted to every Pareto-optimal
trial (with the old bootstrap and with the new intervals) and to the lower envelope (now).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares, lsq_linear

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the generators of the coverage test

from test_scaling_coverage import LAWS, noisy, planted_table

from ecgsearch.analysis.scaling import PARAMS, fit_power_law, fit_scaling, scaling_points
from ecgsearch.analysis.scaling_ci import (
    NOISE_POWER,
    Intervals,
    Region,
    choose_noise,
    e_bounds_of,
    fit_noise,
    region_dof,
)

NOISES = ("additive", "multiplicative", "student")
X_RANGE = (1e3, 1e9)
WARNING_KINDS = {"points: the intervals": "too few points", "decades: too short": "too few decades",
                 "no bend": "no bend", "no decrease": "no decrease", "alpha's interval": "alpha at a bound",
                 "spread of the residuals": "spread changes with x"}


SEED_SETS = ("benchmark", "fresh", "tuning")
TRUE_MODEL = {"additive": "additive", "multiplicative": "multiplicative", "student": "additive"}  # --forced


def seed_sequence(seed_set: str, n: int, law: int, seed: int) -> list[int]:
    """The benchmark's own seeds, or the two other sets: the noise-model rule of ``scaling_ci`` was chosen
    on ``tuning`` and checked on ``benchmark`` and ``fresh``."""
    return {"benchmark": [99, n, law, seed], "fresh": [7, n, law, seed], "tuning": [n, law, 1000 + seed]}[seed_set]


def warning_kind(sentence: str) -> str:
    return next((kind for key, kind in WARNING_KINDS.items() if key in sentence), sentence)


def old_bootstrap(x: np.ndarray, y: np.ndarray, resamples: int, seed: int
                  ) -> tuple[float, dict[str, tuple[float, float]]]:
    """The previous version's alpha and intervals: residual bootstrap around a least-squares fit, percentiles."""
    x0 = float(np.exp(np.mean(np.log(x))))
    log_u, bounds = np.log(x / x0), (0.0 if (y >= 0).all() else -np.inf, float(np.max(y)))
    lower, upper = [bounds[0], 0.0, 1e-3], [bounds[1], np.inf, 5.0]

    def fit(values: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
        if start is None:
            best = None
            for alpha in np.geomspace(0.01, 4.0, 48):
                matrix = np.column_stack([np.ones_like(log_u), np.exp(-alpha * log_u)])
                solved = lsq_linear(matrix, values, bounds=([bounds[0], 0.0], [bounds[1], np.inf]))
                sse = float(np.sum((matrix @ solved.x - values) ** 2))
                if best is None or sse < best[0]:
                    best = (sse, np.array([*solved.x, alpha]))
            start = best[1]
        start = np.clip(start, np.array(lower) + 1e-12 * np.isfinite(lower),
                        np.where(np.isfinite(upper), np.array(upper) - 1e-12, np.inf))

        def jacobian(p: np.ndarray) -> np.ndarray:
            z = np.exp(-p[2] * log_u)
            return np.column_stack([np.ones_like(z), z, -p[1] * log_u * z])

        return least_squares(lambda p: p[0] + p[1] * np.exp(-p[2] * log_u) - values, start, jac=jacobian,
                             bounds=(lower, upper), method="trf").x

    best = fit(y)
    fitted = best[0] + best[1] * np.exp(-best[2] * log_u)
    residuals = y - fitted
    pool = (residuals - residuals.mean()) * math.sqrt(len(x) / max(len(x) - 3, 1))
    rng = np.random.default_rng(seed)
    boot = np.array([fit(fitted + rng.choice(pool, size=len(x)), start=best) for _ in range(resamples)])
    boot[:, 1] = boot[:, 1] * x0 ** boot[:, 2]
    return float(best[2]), {name: (float(np.percentile(boot[:, i], 2.5)), float(np.percentile(boot[:, i], 97.5)))
                             for i, name in enumerate(PARAMS)}


def part1(points: tuple[int, ...], seeds: int, old_seeds: int, resamples: int, decades: float = 6.0,
          seed_set: str = "benchmark", noise_scale: float = 1.0, forced: bool = False) -> None:
    print(f"\nPart 1: share of 95% intervals holding the truth ({len(LAWS)} laws, x over {decades:g} decades, "
          f"noise {noise_scale:g} times the usual{', the true noise model forced' if forced else ''})")
    print("| method | noise | points | fits | alpha | E_inf | A | alpha width (x) | s/fit |")
    print("|---|---|---|---|---|---|---|---|---|")
    chosen: Counter = Counter()
    warned: dict[str, Counter] = {noise: Counter() for noise in NOISES}
    band = {noise: np.zeros(2) for noise in NOISES}
    counts = dict.fromkeys(NOISES, 0)
    for method, count in (("residual bootstrap (before)", old_seeds), ("profile likelihood (now)", seeds)):
        if not count:
            continue
        for noise in NOISES:
            for n in points:
                x = np.geomspace(X_RANGE[0], X_RANGE[0] * 10 ** decades, n)
                held, widths, started = np.zeros(3), [], time.perf_counter()
                for index, law in enumerate(LAWS):
                    for seed in range(count):
                        rng = np.random.default_rng(seed_sequence(seed_set, n, index, seed))
                        y = noisy(law, x, noise, rng, noise_scale)
                        if method.startswith("residual"):
                            _, ci = old_bootstrap(x, y, resamples, seed)
                        else:
                            fit = fit_power_law(x, y, extrapolate=None, noise=TRUE_MODEL[noise] if forced else None)
                            ci = fit.ci
                            chosen[(noise, n, fit.noise)] += 1
                            warned[noise].update(warning_kind(w) for w in fit.warnings)
                            targets = np.array([x[0] * 10 ** (decades / 2), x[-1] * 10])
                            low, high = fit.band(targets)
                            truth = law[0] + law[1] * targets ** -law[2]
                            band[noise] += (low <= truth) & (truth <= high)
                            counts[noise] += 1
                        held += [ci[name][0] <= truth <= ci[name][1] for name, truth in zip(PARAMS, law)]
                        widths.append(ci["alpha"][1] / max(ci["alpha"][0], 1e-3))
                fits = len(LAWS) * count
                share = held / fits
                print(f"| {method} | {noise} | {n} | {fits} | {share[2]:.3f} | {share[0]:.3f} | {share[1]:.3f} | "
                      f"{np.median(widths):.2f} | {(time.perf_counter() - started) / fits:.3f} |", flush=True)
    if not seeds:
        return
    print("\nCurve band (now): share holding the true curve at the middle of the range and at 10x the largest x")
    for noise in NOISES:
        print(f"  {noise}: middle {band[noise][0] / counts[noise]:.3f}, 10x beyond {band[noise][1] / counts[noise]:.3f}"
              f" ({counts[noise]} fits)")
    print("\nNoise model chosen (now), share of fits per noise and number of points:")
    for noise in NOISES:
        for n in points:
            total = sum(v for (z, m, _), v in chosen.items() if z == noise and m == n)
            parts = ", ".join(f"{label} {v / total:.2f}" for (z, m, label), v in sorted(chosen.items())
                              if z == noise and m == n)
            print(f"  {noise}, {n} points: {parts}")
    print("\nWarnings (now), share of fits:")
    for noise in NOISES:
        parts = ", ".join(f"'{w}' {v / counts[noise]:.3f}" for w, v in warned[noise].most_common())
        print(f"  {noise}: {parts or 'none'}")


def held_by_region(x: np.ndarray, y: np.ndarray, law: tuple[float, float, float]
                   ) -> tuple[str, dict[str, np.ndarray], float]:
    """The points' decision, whether each noise model's region alone holds (E_inf, A, alpha) (with the degrees
    of freedom it gets when the points choose it), and the multiplicative minus additive restricted
    log-likelihood (what the points decide by)."""
    x0 = float(np.exp(np.mean(np.log(x))))
    log_u, bounds = np.log(x / x0), e_bounds_of(y)
    fits = [fit_noise(log_u, y, name, bounds) for name in NOISE_POWER]
    chosen = choose_noise(fits)
    held = {}
    for fit in fits:
        region = Region(log_u, y, fit.weights, x0, fit.sse, region_dof(fit.noise, len(y), True), bounds,
                        float(fit.params[2]))
        alone = Intervals(fit.params, x0, fit.noise, (region,), (fit,))
        held[fit.noise] = np.array([low <= truth <= high for (low, high), truth in
                                    zip((alone.interval(name, 0.95) for name in PARAMS), law)])
    decision = "both" if len(chosen) == 2 else chosen[0].noise
    return decision, held, fits[1].restricted - fits[0].restricted


def part3(points: tuple[int, ...], seeds: int, seed_set: str = "benchmark") -> None:
    print(f"\nPart 3: coverage (E_inf, A, alpha) by the points' decision ({len(LAWS) * seeds} fits per noise and "
          "number of points; the regions alone, n - 3 degrees of freedom additive, n - 4 multiplicative)")
    print("| noise | points | decision | share | additive region alone | multiplicative region alone | reported |")
    print("|---|---|---|---|---|---|---|")
    separation: dict[int, dict[str, list[float]]] = {}
    for n in points:
        x = np.geomspace(*X_RANGE, n)
        separation[n] = {"additive": [], "multiplicative": []}
        for noise in NOISES:
            rows: dict[str, list[dict[str, np.ndarray]]] = {"additive": [], "multiplicative": [], "both": []}
            for index, law in enumerate(LAWS):
                for seed in range(seeds):
                    y = noisy(law, x, noise, np.random.default_rng(seed_sequence(seed_set, n, index, seed)))
                    decision, held, by_fit = held_by_region(x, y, law)
                    rows[decision].append(held)
                    separation[n]["multiplicative" if noise == "multiplicative" else "additive"].append(by_fit)
            for decision, group in rows.items():
                if not group:
                    continue
                add = np.mean([h["additive"] for h in group], axis=0)
                mul = np.mean([h["multiplicative"] for h in group], axis=0)
                shown = {"additive": add, "multiplicative": mul}.get(
                    decision, np.mean([h["additive"] | h["multiplicative"] for h in group], axis=0))
                cells = [" / ".join(f"{v:.2f}" for v in values) for values in (add, mul, shown)]
                print(f"| {noise} | {n} | {decision} | {len(group) / (len(LAWS) * seeds):.2f} | " + " | ".join(cells)
                      + " |", flush=True)
    print("\nSeparability: with thresholds on the restricted log-likelihood difference that decide wrongly in at most"
          " 3% of fits of either kind, the share each kind gets decided (the rest would need the union)")
    for n, values in separation.items():
        additive, multiplicative = np.array(values["additive"]), np.array(values["multiplicative"])
        to_additive, to_multiplicative = np.quantile(multiplicative, 0.03), np.quantile(additive, 0.97)
        print(f"  {n} points: additive or Student-t decided {np.mean(additive < to_additive):.2f}, "
              f"multiplicative decided {np.mean(multiplicative > to_multiplicative):.2f}")


def part2(tables: int, resamples: int, old: bool) -> None:
    variants = {"4 decades (as the test)": {}, "6 decades": {"decades": (3.0, 9.0)},
                "10 well-trained": {"well_trained": 10}, "3 near + 40 under-trained": {"near": 3, "under_trained": 40},
                "near 2-20% worse": {"excess": (0.02, 0.2)}, "2 decades": {"decades": (6.0, 8.0)},
                "40 well-trained": {"well_trained": 40}, "no poor trials": {"near": 0, "under_trained": 0}}
    alpha = LAWS[0][2]
    print(f"\nPart 2: share of {tables} tables whose 95% interval holds the planted alpha {alpha} "
          "(median fitted alpha; median trials used)")
    header = ["variant", "Pareto front + bootstrap (before)", "Pareto front + profile", "lower envelope (now)"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name, options in variants.items():
        results = {key: ([], [], []) for key in header[1:]}
        for seed in range(tables):
            table = planted_table(10_000 + seed, **options)
            for key, bins in ((header[2], None), (header[3], 0.5)):
                fit = fit_scaling(table, "score", "max", "compute", bin_decades=bins)
                results[key][0].append(fit.ci["alpha"][0] <= alpha <= fit.ci["alpha"][1])
                results[key][1].append(fit.law.alpha)
                results[key][2].append(fit.n)
            if old:
                points = scaling_points(table, "score", "max", "compute")
                front = points[points["pareto"]]
                fitted, ci = old_bootstrap(front["x"].to_numpy(), front["error"].to_numpy(), resamples, seed)
                results[header[1]][0].append(ci["alpha"][0] <= alpha <= ci["alpha"][1])
                results[header[1]][1].append(fitted)
                results[header[1]][2].append(len(front))
        cells = [f"{np.mean(held):.2f} ({np.median(alphas):.3f}; {np.median(used):.0f})" if held else "-"
                 for held, alphas, used in results.values()]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=250, help="repetitions per law and cell, new method")
    parser.add_argument("--old-seeds", type=int, default=60, help="repetitions per law and cell, old bootstrap")
    parser.add_argument("--resamples", type=int, default=200, help="resamples of the old bootstrap")
    parser.add_argument("--tables", type=int, default=100, help="tables per variant in part 2")
    parser.add_argument("--decompose", action="store_true", help="part 3 only (--seeds per law, 10 and 20 points)")
    parser.add_argument("--seed-set", choices=SEED_SETS, default="benchmark",
                        help="which simulated seeds parts 1 and 3 use (benchmark: the table in docs/benchmarks.md)")
    parser.add_argument("--main-only", action="store_true", help="part 1 at 10-100 points over six decades only")
    parser.add_argument("--noise-scale", type=float, default=1.0,
                        help="noise levels times this in part 1 (a check at levels nothing was chosen on)")
    parser.add_argument("--forced", action="store_true",
                        help="part 1 with the true noise model forced (noise=...; additive for Student-t noise)")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.decompose:
        part3((10, 20), args.seeds, args.seed_set)
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
        return
    part1((10, 20, 50, 100), args.seeds, args.old_seeds, args.resamples, seed_set=args.seed_set,
          noise_scale=args.noise_scale, forced=args.forced)
    if args.main_only:
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
        return
    small = args.seeds // 2  # --seeds 0: the old bootstrap only (it is ~50 times slower)
    if small:
        part1((6, 8), small, 0, args.resamples)
        part1((10, 30), small, 0, args.resamples, decades=2.0)
        part1((10, 30), small, 0, args.resamples, decades=1.0)
    part2(args.tables, args.resamples, old=args.old_seeds > 0)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
