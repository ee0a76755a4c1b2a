"""The run folder's file names (``ecgsearch.results.folder`` draws the layout), without pandas: the CLI's help
texts name them while building its parser, which must stay fast."""

SPACE_COPY = "space.yaml"
PRUNED_FILE = "space.pruned.yaml"  # what `ecgsearch prune` writes by default
RUN_FILE = "run.json"  # what the run was started with beyond its space file (the --trials it ran)
TRIALS_DIR = "trials"
BEST_CHECKPOINT = "best.pt"
ESTIMATOR_DIR = "estimator"  # an estimator trial's fitted model (ecgsearch.train.estimators)
