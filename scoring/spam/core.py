"""The spam model: pure functions from per-user arrays to labels.

Pipeline, after the seed study (features clustered with K-Means, clusters learned by a
neural network), extended with graph features that expose follow bots:

1. :func:`build_features` turns raw profile fields into the feature matrix: followers,
   followings, tracks, URL provided, profanities in the description, profanities in a
   URL title, duplicate descriptions, duplicate URLs, activity (likes + reposts +
   playlists + comments), subscription type, URL shortener; plus reciprocity, follow
   multiplicity and the size of the user's ``created_at`` batch (accounts made in the
   same second). Counts go through ``log1p``: they are heavy tailed and K-Means'
   Euclidean distance would otherwise see only the superstars.
2. :func:`select_features`: correlation-based subset selection (a feature is dropped
   when it is constant or nearly collinear with one already kept).
3. standardization, K-Means for k = 2..k_max, k chosen by the elbow of the inertia
   curve (:func:`elbow`), clusters named from their centroids (:func:`name_clusters`).
4. an MLP trained on the cluster labels with balanced classes; its accuracy on a held
   out split is reported, and its predictions (probability of a spam cluster) label
   every user. Each flagged user gets a kind: ``link``, ``fake`` or ``churn``.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

FEATURES: tuple[str, ...] = (
    "followers",
    "followings",
    "tracks",
    "url_provided",
    "profanity_description",
    "profanity_url_title",
    "duplicate_description",
    "duplicate_url",
    "activity",
    "subscription",
    "url_shortener",
    "reciprocity",
    "follow_multiplicity",
    "created_batch",
)
_F = {name: i for i, name in enumerate(FEATURES)}

URL_SHORTENERS = frozenset(
    {
        "bit.ly", "bitly.com", "tinyurl.com", "goo.gl", "t.co", "ow.ly", "is.gd", "buff.ly",
        "cutt.ly", "rb.gy", "rebrand.ly", "shorturl.at", "tiny.cc", "bl.ink", "lnkd.in",
        "s.id", "adf.ly", "t.ly", "v.gd", "shorte.st", "soo.gd", "clck.ru", "qr.net",
        "tr.im", "x.co", "snip.ly", "linktr.ee.short", "urlz.fr", "short.io",
    }
)  # fmt: skip

# Profanity and sexual-spam vocabulary; masked spellings (f*ck, sh!t) are matched too.
_PROFANE_WORDS = (
    "fuck", "fucking", "fucker", "motherfucker", "shit", "bullshit", "bitch", "bastard",
    "asshole", "dick", "cock", "pussy", "cunt", "slut", "sluts", "whore", "porn", "porno",
    "xxx", "nude", "nudes", "naked", "sexy", "sex", "horny", "milf", "cum", "camgirl",
    "webcam", "escort", "hookup", "18+", "onlyfans", "nsfw", "tits", "boobs",
)  # fmt: skip
_MASKED = re.compile(r"\b(f[\*\#@!u]{1,2}c?k\w*|sh[\*!1i]t\w*|b[\*!1i]tch\w*|d[\*!1i]ck)\b")
_TOKEN = re.compile(r"[a-z0-9\+\$]+")
_PROFANE = frozenset(_PROFANE_WORDS)


def has_profanity(text: str | None) -> bool:
    """Whether ``text`` contains a word of the profanity list (or a masked spelling)."""
    if not text:
        return False
    low = text.lower()
    if _MASKED.search(low):
        return True
    return any(token in _PROFANE for token in _TOKEN.findall(low))


def is_shortener(url: str) -> bool:
    """Whether ``url``'s host is a known URL shortener."""
    try:
        host = (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower()
    except ValueError:
        return False
    host = host.removeprefix("www.")
    return host in URL_SHORTENERS


@dataclass
class SpamInput:
    """Raw per-user fields, aligned by index; NaN marks a missing count.

    ``urls``/``url_titles`` hold each user's web-profile links; ``reciprocity``,
    ``max_multiplicity`` come from :func:`graph_features`.
    """

    user_id: I64
    followers: F64
    followings: F64
    tracks: F64
    likes: F64
    reposts: F64
    playlists: F64
    comments: F64
    plan: Sequence[str | None]
    description: Sequence[str | None]
    created_at_s: F64
    urls: Sequence[Sequence[str]]
    url_titles: Sequence[Sequence[str | None]]
    reciprocity: F64
    max_multiplicity: F64

    def __len__(self) -> int:
        return int(self.user_id.shape[0])


def graph_features(
    user_ids: I64, follower: I64, followee: I64, multiplicity: I64
) -> tuple[F64, F64]:
    """Per user: reciprocity (share of followees following back) and max multiplicity.

    ``follower``/``followee``/``multiplicity`` are distinct follow pairs with their
    event counts. Users without followings get reciprocity 0 and multiplicity 0.
    """
    n = user_ids.shape[0]
    recip = np.zeros(n)
    max_mult = np.zeros(n)
    if follower.shape[0] == 0 or n == 0:
        return recip, max_mult
    key = np.sort(follower.astype(np.int64) * (2**31) + followee)
    rev = followee.astype(np.int64) * (2**31) + follower
    pos = np.searchsorted(key, rev)
    pos[pos == key.shape[0]] = 0
    back = key[pos] == rev
    idx = np.searchsorted(user_ids, follower)
    idx[idx == n] = 0
    known = user_ids[idx] == follower
    out_deg = np.bincount(idx[known], minlength=n).astype(np.float64)
    back_deg = np.bincount(idx[known], weights=back[known].astype(np.float64), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        recip = np.where(out_deg > 0, back_deg / np.maximum(out_deg, 1), 0.0)
    np.maximum.at(max_mult, idx[known], multiplicity[known].astype(np.float64))
    return recip, max_mult


def _normalized(text: str | None) -> str | None:
    if text is None:
        return None
    norm = " ".join(text.lower().split())
    return norm or None


def _share_counts(keys: Sequence[Any]) -> F64:
    """For each item, how many OTHER items have the same (non-None) key."""
    counts = Counter(k for k in keys if k is not None)
    return np.array([counts[k] - 1 if k is not None else 0 for k in keys], dtype=np.float64)


@dataclass
class Features:
    """The feature matrix of the scorable users and why the others were left out."""

    matrix: F64  # (n_scorable, len(FEATURES))
    raw: F64  # the same before log transforms (for naming and reporting)
    scorable: B  # per input user
    unscorable_reasons: dict[str, int]


def build_features(inp: SpamInput) -> Features:
    """Feature matrix of :data:`FEATURES` for every user whose core counts are known.

    Users with a missing (NaN) follower, following or track count cannot be scored
    and are excluded (counted by reason); missing activity parts count as zero.
    """
    n = len(inp)
    core_counts = np.column_stack([inp.followers, inp.followings, inp.tracks])
    missing = np.isnan(core_counts).any(axis=1)
    negative = (np.nan_to_num(core_counts, nan=0.0) < 0).any(axis=1)
    scorable: B = np.asarray(~missing & ~negative, dtype=bool)
    reasons = {}
    if missing.any():
        reasons["missing follower, following or track count"] = int(missing.sum())
    if negative.any():
        reasons["negative count"] = int((negative & ~missing).sum())

    raw = np.zeros((n, len(FEATURES)))
    raw[:, _F["followers"]] = np.nan_to_num(inp.followers)
    raw[:, _F["followings"]] = np.nan_to_num(inp.followings)
    raw[:, _F["tracks"]] = np.nan_to_num(inp.tracks)
    activity = sum(
        np.clip(np.nan_to_num(a), 0, None)
        for a in (inp.likes, inp.reposts, inp.playlists, inp.comments)
    )
    raw[:, _F["activity"]] = activity
    raw[:, _F["url_provided"]] = [1.0 if urls else 0.0 for urls in inp.urls]
    raw[:, _F["url_shortener"]] = [
        1.0 if any(is_shortener(u) for u in urls) else 0.0 for urls in inp.urls
    ]
    raw[:, _F["profanity_description"]] = [float(has_profanity(d)) for d in inp.description]
    raw[:, _F["profanity_url_title"]] = [
        float(any(has_profanity(t) for t in titles)) for titles in inp.url_titles
    ]
    raw[:, _F["duplicate_description"]] = _share_counts([_normalized(d) for d in inp.description])
    # A user listing several links counts the most-shared one.
    url_counts = Counter(u.lower().rstrip("/") for urls in inp.urls for u in set(urls))
    raw[:, _F["duplicate_url"]] = [
        max((url_counts[u.lower().rstrip("/")] - 1 for u in set(urls)), default=0)
        for urls in inp.urls
    ]
    raw[:, _F["subscription"]] = [
        0.0 if (p or "free").lower() in ("free", "") else 1.0 for p in inp.plan
    ]
    raw[:, _F["reciprocity"]] = np.nan_to_num(inp.reciprocity)
    raw[:, _F["follow_multiplicity"]] = np.nan_to_num(inp.max_multiplicity)
    created = inp.created_at_s
    batch = np.zeros(n)
    has_created = ~np.isnan(created)
    if has_created.any():
        seconds = np.floor(created[has_created]).astype(np.int64)
        _, inverse, counts = np.unique(seconds, return_inverse=True, return_counts=True)
        batch[has_created] = counts[inverse] - 1  # other accounts made in the same second
    raw[:, _F["created_batch"]] = batch

    matrix = raw.copy()
    for name in (
        "followers", "followings", "tracks", "activity", "duplicate_description",
        "duplicate_url", "created_batch",
    ):  # fmt: skip
        matrix[:, _F[name]] = np.log1p(np.clip(matrix[:, _F[name]], 0, None))
    matrix[:, _F["follow_multiplicity"]] = np.log1p(
        np.clip(matrix[:, _F["follow_multiplicity"]] - 1, 0, None)
    )
    return Features(
        matrix=matrix[scorable], raw=raw[scorable], scorable=scorable, unscorable_reasons=reasons
    )


@dataclass
class Selection:
    """Outcome of correlation-based feature-subset selection."""

    selected: list[str]
    dropped: dict[str, str]  # feature -> why
    correlations: dict[str, float]  # "a~b" -> Pearson r, for |r| >= report threshold


def select_features(matrix: F64, threshold: float = 0.9) -> Selection:
    """Keep features in :data:`FEATURES` order unless constant or collinear with a kept one.

    Collinear: ``|r| > threshold`` (Pearson) with a feature already kept.
    """
    std = matrix.std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr: F64 | None = (
            np.atleast_2d(np.corrcoef(matrix, rowvar=False)) if matrix.shape[0] > 1 else None
        )
    selected: list[int] = []
    dropped: dict[str, str] = {}
    correlations: dict[str, float] = {}
    for j, name in enumerate(FEATURES):
        if std[j] == 0 or corr is None:
            dropped[name] = "constant"
            continue
        partner = next((k for k in selected if abs(corr[j, k]) > threshold), None)
        if partner is not None:
            dropped[name] = f"|r|={abs(corr[j, partner]):.3f} with {FEATURES[partner]}"
            continue
        selected.append(j)
    if corr is not None:
        for j in range(len(FEATURES)):
            for k in range(j + 1, len(FEATURES)):
                r = corr[j, k]
                if np.isfinite(r) and abs(r) >= 0.5:
                    correlations[f"{FEATURES[j]}~{FEATURES[k]}"] = round(float(r), 4)
    return Selection([FEATURES[j] for j in selected], dropped, correlations)


def elbow(ks: Sequence[int], inertias: Sequence[float]) -> int:
    """The k at the elbow: the point farthest from the chord of the normalized curve."""
    if len(ks) < 3:
        return int(ks[0])
    x = np.asarray(ks, dtype=np.float64)
    y = np.asarray(inertias, dtype=np.float64)
    span_y = y[0] - y[-1]
    if span_y <= 0:
        return int(ks[0])
    xn = (x - x[0]) / (x[-1] - x[0])
    yn = (y[0] - y) / span_y  # rising from 0 to 1
    return int(ks[int(np.argmax(yn - xn))])


# Thresholds on centroid means of raw features that make a cluster a spam cluster.
def _link(c: dict[str, float]) -> bool:
    return c["url_shortener"] >= 1.0 or c["profanity_description"] >= 1.0


def _fake(c: dict[str, float]) -> bool:
    return c["created_batch"] >= 1.0


def _churn(c: dict[str, float]) -> bool:
    return c["follow_multiplicity"] >= 2.0


# Tests on a cluster's median member (raw features) that make it a spam cluster: it
# advertises a shortener or swears, shares its sign-up second with other accounts, or
# follows the same target repeatedly. Medians, not means: one fake account with a
# 30-account batch must not turn a small cluster of paying users into "spam".
SPAM_RULES = {"link": _link, "fake": _fake, "churn": _churn}


def name_clusters(raw_centroids: list[dict[str, float]], medians: dict[str, float]) -> list[str]:
    """Names from (median) centroids: ``spam:<kind>``, superstars, musicians, fans, lurkers.

    ``medians`` are the whole population's medians (superstars stand out from them).
    """
    names: list[str] = []
    for c in raw_centroids:
        kinds = [kind for kind, rule in SPAM_RULES.items() if rule(c)]
        if kinds:
            names.append(f"spam:{kinds[0]}")
        elif c["followers"] >= max(1000.0, 20 * (medians["followers"] + 1)):
            names.append("superstars")
        elif c["tracks"] >= 1.0:
            names.append("musicians")
        elif c["followings"] + c["activity"] >= 5.0:
            names.append("fans")
        else:
            names.append("lurkers")
    seen: Counter[str] = Counter()
    unique = []
    for name in names:
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return unique


def user_kind(raw_row: F64) -> str | None:
    """The spam kind a user's own features show, if any."""
    if raw_row[_F["url_shortener"]] >= 1 or raw_row[_F["profanity_description"]] >= 1:
        return "link"
    if raw_row[_F["created_batch"]] >= 1:
        return "fake"
    if raw_row[_F["follow_multiplicity"]] >= 2:
        return "churn"
    return None


@dataclass
class SpamParams:
    """Knobs of :func:`fit`."""

    k_min: int = 2
    k_max: int = 15
    correlation_threshold: float = 0.9
    test_size: float = 0.25
    per_class: int = 3000
    hidden: tuple[int, ...] = (32, 16)
    max_iter: int = 300
    seed: int = 0


@dataclass
class SpamModel:
    """Everything a spam run reports and writes."""

    selection: Selection
    ks: list[int]
    inertias: list[float]
    k: int
    cluster: I64
    cluster_names: list[str]
    centroids: list[dict[str, float]]
    cluster_sizes: list[int]
    predicted: I64
    probability: F64
    is_spam: B
    kind: list[str | None]
    mlp_accuracy: float
    mlp_converged: bool
    train_size: int
    test_size: int
    extra: dict[str, Any] = field(default_factory=dict)


def _balanced_indices(labels: I64, per_class: int, rng: np.random.Generator) -> I64:
    """Equal rows per class: small classes oversampled, large ones undersampled."""
    parts = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        replace = idx.shape[0] < per_class
        parts.append(rng.choice(idx, size=per_class, replace=replace))
    return np.concatenate(parts)


def fit(features: Features, params: SpamParams | None = None) -> SpamModel:
    """Select, standardize, cluster (elbow k), name, train the MLP, label every user.

    Raises ``ValueError`` when there are too few users or no usable feature.
    """
    p = params or SpamParams()
    x_all = features.matrix
    n = x_all.shape[0]
    if n < max(p.k_min + 1, 10):
        raise ValueError(f"only {n} scorable users; at least {max(p.k_min + 1, 10)} needed")
    if not np.isfinite(x_all).all():
        raise ValueError("features contain NaN or infinite values")
    selection = select_features(x_all, p.correlation_threshold)
    if not selection.selected:
        raise ValueError("every feature is constant: nothing to cluster on")
    cols = [_F[name] for name in selection.selected]
    x = StandardScaler().fit_transform(x_all[:, cols])

    distinct = np.unique(x, axis=0).shape[0]
    ks = [k for k in range(p.k_min, p.k_max + 1) if k <= distinct]
    if not ks:
        raise ValueError(f"only {distinct} distinct users: too few to cluster")
    fits = [KMeans(n_clusters=k, n_init=4, random_state=p.seed).fit(x) for k in ks]
    inertias = [float(f.inertia_) for f in fits]
    k = elbow(ks, inertias)
    km = fits[ks.index(k)]
    cluster = km.labels_.astype(np.int64)

    raw = features.raw
    medians = {name: float(np.median(raw[:, _F[name]])) for name in FEATURES}
    centroids = [
        {name: float(raw[cluster == c, _F[name]].mean()) for name in FEATURES} for c in range(k)
    ]
    median_centroids = [
        {name: float(np.median(raw[cluster == c, _F[name]])) for name in FEATURES} for c in range(k)
    ]
    names = name_clusters(median_centroids, medians)
    spam_clusters = np.array([name.startswith("spam") for name in names])
    sizes = np.bincount(cluster, minlength=k)

    rng = np.random.default_rng(p.seed)
    stratify = cluster if sizes.min() >= 2 else None
    idx_train, idx_test = train_test_split(
        np.arange(n), test_size=p.test_size, random_state=p.seed, stratify=stratify
    )
    train = _balanced_indices(cluster[idx_train], p.per_class, rng)
    mlp = MLPClassifier(
        hidden_layer_sizes=p.hidden, max_iter=p.max_iter, random_state=p.seed, alpha=1e-4
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        mlp.fit(x[idx_train][train], cluster[idx_train][train])
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    accuracy = float((mlp.predict(x[idx_test]) == cluster[idx_test]).mean())

    proba = mlp.predict_proba(x)
    classes = mlp.classes_.astype(np.int64)
    spam_columns = spam_clusters[classes]
    probability = proba[:, spam_columns].sum(axis=1) if spam_columns.any() else np.zeros(n)
    predicted = classes[np.argmax(proba, axis=1)]
    is_spam = probability >= 0.5
    kinds: list[str | None] = []
    for i in range(n):
        if not is_spam[i]:
            kinds.append(None)
            continue
        own = user_kind(raw[i])
        if own is None:
            # Fall back on the kind of the most likely spam cluster.
            best = classes[spam_columns][np.argmax(proba[i, spam_columns])]
            own = names[int(best)].split(":")[1].split("-")[0]
        kinds.append(own)
    return SpamModel(
        selection=selection,
        ks=ks,
        inertias=inertias,
        k=k,
        cluster=cluster,
        cluster_names=names,
        centroids=centroids,
        cluster_sizes=sizes.tolist(),
        predicted=predicted,
        probability=probability,
        is_spam=is_spam,
        kind=kinds,
        mlp_accuracy=accuracy,
        mlp_converged=converged,
        train_size=int(train.shape[0]),
        test_size=int(idx_test.shape[0]),
    )


def precision_recall(flagged: B, truth: B) -> tuple[float, float]:
    """Precision and recall of ``flagged`` against ``truth`` (NaN when undefined)."""
    tp = float((flagged & truth).sum())
    precision = tp / flagged.sum() if flagged.any() else float("nan")
    recall = tp / truth.sum() if truth.any() else float("nan")
    return precision, recall
