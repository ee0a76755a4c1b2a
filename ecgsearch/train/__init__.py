"""What runs inside one trial, in a Ray worker or directly: build, train, score, checkpoint, transfer.

``trial.run_trial`` sequences the phases: ``setup`` builds data, model, optimizer, schedule and task
from a sampled configuration; ``loop`` runs the epochs; ``scoring`` predicts and scores a split;
``checkpoints`` saves and restores the resumable state; ``transfer`` pretrains and re-heads (``fusion``
joins several pretrained models into one). An estimator architecture (features and a fitted model, no
network) is fitted once by ``estimators`` instead. The model contract (``models``), cost features (``costs``, ``receptive_field``; ``analytic``: the
torch-free part a space-file check and a plugin's registration module use), the task and schedule contracts
(``tasks``, ``schedules``), ``precision``, ``accel`` and ``thresholds`` are what those phases use. May
import the run folder's layout, the space language, data and the contracts; knows nothing of Ray Tune.
Read ``trial.py`` first.
"""
