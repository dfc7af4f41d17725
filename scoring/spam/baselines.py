"""What the spam pipeline is measured against: the study's rules and a supervised ceiling.

- :func:`rule_labels`: the seed study's hand labelling, signatures only: a shortener
  link or profanity makes link spam, a sign-up second shared with other accounts makes
  a fake, a repeated follow makes a churn bot.
- :func:`supervised_reference`: gradient boosting on the very same feature matrix,
  trained *with* the truth and scored out of fold (stratified k-fold): what the
  features allow when labels are at hand, the ceiling of any unsupervised pipeline.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from scoring.spam.core import FEATURES

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
_F = {name: i for i, name in enumerate(FEATURES)}


def rule_labels(raw: F64) -> list[str | None]:
    """The study's rule kind per user (raw features), None for users no rule flags."""
    kinds: list[str | None] = []
    for row in raw:
        if row[_F["url_shortener"]] >= 1 or row[_F["profanity_description"]] >= 1:
            kinds.append("link")
        elif row[_F["created_batch"]] >= 1:
            kinds.append("fake")
        elif row[_F["follow_multiplicity"]] >= 2:
            kinds.append("churn")
        else:
            kinds.append(None)
    return kinds


def supervised_reference(matrix: F64, truth: B, seed: int = 0, folds: int = 5) -> tuple[B, F64]:
    """Out-of-fold spam flags and probabilities of gradient boosting on ``matrix``.

    Raises ``ValueError`` when a class has fewer members than ``folds``.
    """
    positives = int(truth.sum())
    if min(positives, truth.size - positives) < folds:
        raise ValueError(f"{positives} spam of {truth.size} users: too few for {folds} folds")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    model = HistGradientBoostingClassifier(random_state=seed)
    proba = cross_val_predict(model, matrix, truth, cv=cv, method="predict_proba")[:, 1]
    return np.asarray(proba >= 0.5), np.asarray(proba, dtype=np.float64)
