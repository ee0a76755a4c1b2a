"""Label harmonisation: which classes of one ECG label vocabulary mean the same as which of another.

An OOD dataset (``evaluate.datasets``) is scored on the classes it shares with the trained model. Its target
names are matched to the model's by name first (the same dataset, or one using the same codes), then by
clinical meaning through ``TABLE``: each row one concept with its names in the three vocabularies ecgsearch's
datasets use: SNOMED-CT codes (PhysioNet/CinC 2021, the synthetic dataset; the Challenge's equivalent codes
listed together), PTB-XL SCP statements and the six CODE-15% abnormalities. A model class with no counterpart in
the OOD dataset is skipped there (``Matched.missing``, logged once by the planner); a model class that several of
the dataset's targets stand for (RBBB: SNOMED 59118001 and 713427006) is positive when any of them is.

The table is data: add a row (or a name to a row) to harmonise another class. A name appears in one row only.
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


def shared_classes(model: Sequence[str], targets: Sequence[str]) -> Matched:
    """Each model class matched to the OOD dataset's targets: the same name, else the same concept."""
    names = [str(t) for t in targets]
    table = concepts()
    matched = Matched()
    for ours in map(str, model):
        same = (ours,) if ours in names else tuple(t for t in names if ours in table and table.get(t) == table[ours])
        if same:
            matched.pairs.append((ours, same))
        else:
            matched.missing.append(ours)
    return matched
