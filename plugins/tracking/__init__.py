"""Built-in experiment trackers (``tracking:`` in a space file, docs/tracking.md): MLflow, TensorBoard and
Weights & Biases, each a ``TrackerInfo`` driven through the lifecycle hooks by the ``tracking`` plugin
(``hooks``); what they share (run bookkeeping, the row's params and metrics, the best model) is ``_shared``."""
