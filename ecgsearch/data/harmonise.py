"""Label harmonisation: which classes of one ECG label vocabulary mean the same as which of another.

An OOD dataset (``evaluate.datasets``) is scored on the classes it shares with the trained model. Its target
names are matched to the model's by name first (the same dataset, or one using the same codes), then by
clinical meaning through ``TABLE``: each row one concept with its names in the three vocabularies ecgsearch's
datasets use: SNOMED-CT codes (PhysioNet/CinC 2021, the synthetic dataset; the Challenge's equivalent codes
listed together), PTB-XL SCP statements and the six CODE-15% abnormalities. A model class with no counterpart in
the OOD dataset is skipped there (``Matched.missing``, logged once by the planner); a model class that several of
the dataset's targets stand for (RBBB: SNOMED 59118001 and 713427006) is positive when any of them is.

The table is data: add a row (or a name to a row) to harmonise another class. A name appears in one row only.
A merged class of equivalent codes (PhysioNet 2021's scored ``713427006|59118001``) means the concept its codes
share.

``match_task_classes`` is the rule an OOD dataset must pass, worded once for both places that apply it:
``ecgsearch validate`` (``ecgsearch.space.evaluate``, where both datasets declare their targets,
``DatasetInfo.target_names``) and the run's planner (``ecgsearch.train.ood.plan_evaluate``, on the prepared data).
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass, field
from typing import Sequence

VOCABULARIES = ("snomed", "ptbxl", "code15")
TABLE = """\
concept,description,snomed,ptbxl,code15
1dAVb,first degree AV block,270492004,1AVB,1dAVb
RBBB,(complete) right bundle branch block,59118001 713427006,CRBBB,RBBB
LBBB,(complete) left bundle branch block,164909002 733534002,CLBBB,LBBB
SB,sinus bradycardia,426177001,SBRAD,SB
ST,sinus tachycardia,427084000,STACH,ST
AF,atrial fibrillation,164889003,AFIB,AF
AFL,atrial flutter,164890007,AFLT,
SR,sinus rhythm,426783006,SR,
SA,sinus arrhythmia,427393009,SARRH,
IRBBB,incomplete right bundle branch block,713426002,IRBBB,
LAnFB,left anterior fascicular block,445118002,LAFB,
NSIVCB,nonspecific intraventricular conduction disorder,698252002,IVCD,
LPR,prolonged PR interval,164947007,LPR,
LQT,prolonged QT interval,111975006,LNGQT,
PAC,premature atrial contraction,284470004 63593006,PAC,
PVC,premature ventricular contraction,427172004 17338001,PVC,
PR,pacing rhythm,10370003,PACE,
LQRSV,low QRS voltages,251146004,LVOLT,
QAb,abnormal Q wave,164917005,QWAVE,
TInv,T wave inversion,59931005,INVT,
TAb,T wave abnormality,164934002,TAB_,
"""


@functools.cache
def concepts() -> dict[str, str]:
    """Every name of ``TABLE`` -> its concept (a name in two rows is a mistake in the table: ValueError)."""
    found: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO(TABLE)):
        for vocabulary in VOCABULARIES:
            for name in (row[vocabulary] or "").split():
                if name in found and found[name] != row["concept"]:
                    raise ValueError(f"harmonisation: {name} is in concepts {found[name]} and {row['concept']}")
                found[name] = row["concept"]
    return found


@dataclass(frozen=True)
class Matched:
    """The model's classes an OOD dataset has: ``pairs`` (model class, the dataset's targets standing for it),
    in the model's order, and ``missing``: the model's classes it has no counterpart of."""

    pairs: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def concept_of(name: str) -> str | None:
    """The concept of one target name of ``TABLE``; a merged name ``a|b`` means the concept all its codes
    share (None when they share none, or for a name outside the table)."""
    table = concepts()
    if name in table:
        return table[name]
    found = {table.get(part) for part in name.split("|")} if "|" in name else {None}
    return found.pop() if len(found) == 1 else None


def shared_classes(model: Sequence[str], targets: Sequence[str]) -> Matched:
    """Each model class matched to the OOD dataset's targets: the same name, else the same concept."""
    names = [str(t) for t in targets]
    theirs = {name: concept_of(name) for name in names}
    matched = Matched()
    for ours in map(str, model):
        concept = concept_of(ours)
        same = (ours,) if ours in names else tuple(t for t in names if concept is not None and theirs[t] == concept)
        if same:
            matched.pairs.append((ours, same))
        else:
            matched.missing.append(ours)
    return matched


class ClassMismatch(ValueError):
    """An OOD dataset the trained task cannot be scored on; ``str()`` is what is wrong and how to fix it
    (the caller puts the file, line and key in front)."""


def match_task_classes(model: Sequence[str], targets: Sequence[str], task: str, dataset: str) -> Matched:
    """``shared_classes``, refused with ``ClassMismatch`` when the dataset shares no class with the trained task,
    or, for any task but ``multilabel``, lacks one of the model's targets (a multilabel model is scored on the
    classes shared). model: the trained task's target names; targets: the OOD dataset's; task: the task kind
    (in the message: ``a {task} model``); dataset: the OOD dataset's name."""
    matched = shared_classes(model, targets)
    if not matched.pairs:
        raise ClassMismatch(f"dataset '{dataset}' shares no class with the trained task ({few(model)} vs "
                            f"{few(targets)}); choose labels of it that the model's classes have a counterpart "
                            "in, or remove the entry.")
    if matched.missing and task != "multilabel":
        raise ClassMismatch(f"a {task} model is scored only on data with every one of its targets, and dataset "
                            f"'{dataset}' lacks {few(matched.missing)}; choose data with the same targets.")
    return matched


def few(names: Sequence[str], shown: int = 6) -> str:
    """``a, b, c, d, e, f and 3 more``: the first names of a list, for a message."""
    names = [str(n) for n in names]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
