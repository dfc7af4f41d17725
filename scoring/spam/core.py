"""The spam model: pure functions from per-user arrays to labels.

Pipeline, after the seed study (features clustered with K-Means, clusters learned by a
neural network), extended with what a crawl holds about behaviour:

1. :func:`build_features` turns profile fields and follow events into the feature
   matrix: the study's followers, followings, tracks, URL provided, profanities in the
   description and in a URL title, duplicate descriptions and URLs, activity (likes +
   reposts + playlists + comments), subscription type and URL shortener; the size of
   the user's sign-up second; and the behaviour of :mod:`scoring.spam.behaviour`
   (reciprocity, follow-backs, repeated follows, follow bursts, follows made right
   after sign-up, sign-up bursts, lockstep following, TrustRank). Counts go through
   ``log1p``: they are heavy tailed and K-Means' Euclidean distance would otherwise
   see only the superstars.
2. :func:`select_features`: correlation-based subset selection (a feature is dropped
   when it is constant or nearly collinear with one already kept).
3. standardization, K-Means for k = k_min..k_max, k chosen by the elbow of the inertia
   curve (:func:`elbow`), reported as the study's segmentation; the partition that is
   named is finer (about one cluster per ``users_per_cluster`` users), since spam is a
   few percent of users and a coarse cluster hides it among humans.
4. clusters are named from their median member's *behaviour* (:func:`name_clusters`),
   never from what spam says about itself: a cluster is spam when its median member
   neither gives nor earns anything (no tracks, no likes or reposts, no follower it did
   not follow first) and acts like software on at least one automation signal (mass
   following in a burst, repeated follows of the same targets, following right after
   sign-up in lockstep with accounts made alongside), judged against the upper tail of
   the users who do give or earn something. Clusters that mix such users with others
   are bisected first, so that a median speaks for its cluster.
5. an MLP trained on the cluster labels with balanced classes; its accuracy on a held
   out split is reported, and its predictions (probability of a spam cluster) label
   every user. Each flagged user gets the kind of its spam cluster: ``churn``
   (repeated follows), ``link`` (mass following) or ``fake`` (made and set following
   in batches).

No labels are used anywhere: the study ran without them, and so does this.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from scoring.spam.behaviour import BEHAVIOUR_FEATURES, FollowEvents, behaviour_features

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
    "created_batch",
    *BEHAVIOUR_FEATURES,
)
_F = {name: i for i, name in enumerate(FEATURES)}
_LOG_FEATURES = (
    "followers", "followings", "tracks", "activity", "duplicate_description",
    "duplicate_url", "created_batch", "repeated_targets", "follow_burst", "signup_burst",
    "trust", "organic_followers", "lockstep",
)  # fmt: skip

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
    """Raw per-user fields, aligned by index and sorted by ``user_id``; NaN marks a
    missing count or time.

    ``urls``/``url_titles`` hold each user's web-profile links; ``follows`` every
    crawled follow event (users outside ``user_id`` are ignored).
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
    follows: FollowEvents

    def __len__(self) -> int:
        return int(self.user_id.shape[0])


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
    behaviour = behaviour_features(
        inp.user_id, inp.created_at_s, inp.followers, inp.tracks, inp.follows
    )
    for name, column in behaviour.items():
        raw[:, _F[name]] = column
    created = inp.created_at_s
    batch = np.zeros(n)
    has_created = ~np.isnan(created)
    if has_created.any():
        seconds = np.floor(created[has_created]).astype(np.int64)
        _, inverse, counts = np.unique(seconds, return_inverse=True, return_counts=True)
        batch[has_created] = counts[inverse] - 1  # other accounts made in the same second
    raw[:, _F["created_batch"]] = batch

    matrix = raw.copy()
    for name in _LOG_FEATURES:
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


# Automation signals and the kind of spam each one marks: a churn bot re-follows, a
# link spammer follows en masse (in a burst, and in number), a fake account is made and
# set following alongside others of its batch.
AUTOMATION_SIGNALS: tuple[tuple[str, str], ...] = (
    ("repeated_targets", "churn"),
    ("follow_burst", "link"),
    # the profile's own count: mass following shows even where a crawl has no follow
    # times (page-bound) or saw only some of the edges
    ("followings", "link"),
    ("early_follows", "fake"),
    ("signup_burst", "fake"),
    ("lockstep", "fake"),
)
# What a human gives or earns: uploads; likes, reposts, playlists, comments; followers
# it did not follow first.
CONTRIBUTION = ("tracks", "activity", "organic_followers")


@dataclass
class Reference:
    """The upper tail of automation signals among users who give or earn something.

    ``ceiling[signal]`` is that group's ``quantile`` of the signal; a cluster acting
    beyond it on some signal acts like software. With too few contributing users the
    ceilings are infinite and nothing is named spam.
    """

    ceiling: dict[str, float]
    contributors: int


def reference(raw: F64, quantile: float = 0.99, min_contributors: int = 50) -> Reference:
    """Automation ceilings from the users with tracks, activity or organic followers."""
    gives = (raw[:, [_F[c] for c in CONTRIBUTION]] > 0).any(axis=1)
    n = int(gives.sum())
    ceiling = {
        name: float(np.quantile(raw[gives, _F[name]], quantile))
        if n >= min_contributors
        else float("inf")
        for name, _ in AUTOMATION_SIGNALS
    }
    return Reference(ceiling, n)


def spam_kind_of(median: dict[str, float], ref: Reference) -> str | None:
    """The spam kind a cluster's median member shows, or None when it looks human.

    Of the signals beyond their ceiling, the one exceeded by the largest factor names
    the kind (a fake batch also follows a little in a burst; a link spammer also
    follows right after sign-up).
    """
    if any(median[c] > 0 for c in CONTRIBUTION):
        return None
    best, best_factor = None, 0.0
    for signal, kind in AUTOMATION_SIGNALS:
        value, ceiling = median[signal], ref.ceiling[signal]
        if value > ceiling:
            factor = value / ceiling if ceiling > 0 else float("inf")
            if factor > best_factor:
                best, best_factor = kind, factor
    return best


def name_clusters(
    median_centroids: list[dict[str, float]], medians: dict[str, float], ref: Reference
) -> list[str]:
    """Names from median members: ``spam:<kind>``, superstars, musicians, fans, lurkers.

    ``medians`` are the whole population's medians (superstars stand out from them).
    """
    names: list[str] = []
    for c in median_centroids:
        kind = spam_kind_of(c, ref)
        if kind is not None:
            names.append(f"spam:{kind}")
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


@dataclass
class SpamParams:
    """Knobs of :func:`fit`."""

    k_min: int = 2
    k_max: int = 15
    users_per_cluster: int = 200
    k_label_max: int = 100
    mixed_share: float = 0.1
    split_depth: int = 3
    min_cluster: int = 5
    correlation_threshold: float = 0.9
    test_size: float = 0.25
    per_class: int = 3000
    hidden: tuple[int, ...] = (32, 16)
    max_iter: int = 300
    seed: int = 0


@dataclass
class SpamModel:
    """Everything a spam run reports and writes.

    ``cluster`` indexes ``cluster_names`` (the fine K-Means partition that is named);
    ``predicted`` indexes ``groups`` (the named groups the MLP learned).
    """

    selection: Selection
    ks: list[int]
    inertias: list[float]
    k: int
    k_label: int
    cluster: I64
    cluster_names: list[str]
    centroids: list[dict[str, float]]
    cluster_sizes: list[int]
    groups: list[str]
    predicted: I64
    probability: F64
    is_spam: B
    kind: list[str | None]
    mlp_accuracy: float
    mlp_converged: bool
    train_size: int
    test_size: int
    reference: Reference


def _balanced_indices(labels: I64, per_class: int, rng: np.random.Generator) -> I64:
    """Equal rows per class: small classes oversampled, large ones undersampled."""
    parts = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        replace = idx.shape[0] < per_class
        parts.append(rng.choice(idx, size=per_class, replace=replace))
    return np.concatenate(parts)


def _centroid(rows: F64, stat: Any) -> dict[str, float]:
    return {name: float(stat(rows[:, _F[name]])) for name in FEATURES}


def looks_automated(raw: F64, ref: Reference) -> B:
    """Per user (raw rows): neither gives nor earns, and exceeds a ceiling on a signal."""
    gives = (raw[:, [_F[c] for c in CONTRIBUTION]] > 0).any(axis=1)
    beyond = np.zeros(raw.shape[0], dtype=bool)
    for signal, _ in AUTOMATION_SIGNALS:
        beyond |= raw[:, _F[signal]] > ref.ceiling[signal]
    return np.asarray(beyond & ~gives)


def _homogenise(x: F64, raw: F64, cluster: I64, ref: Reference, p: SpamParams) -> I64:
    """Bisect clusters that mix automated-looking users with the others.

    A cluster is named by its median member, so a cluster where a sizeable minority
    acts like software (a churn ring among users who re-followed once) would hide it.
    Such clusters are split in two by K-Means, ``p.split_depth`` levels at most.
    """
    cluster = cluster.copy()
    automated = looks_automated(raw, ref)
    queue = [(c, 0) for c in range(int(cluster.max()) + 1)]
    while queue:
        c, depth = queue.pop()
        members = np.flatnonzero(cluster == c)
        share = float(automated[members].mean()) if members.size else 0.0
        mixed = p.mixed_share <= share <= 1 - p.mixed_share
        if not mixed or depth >= p.split_depth or members.size < 2 * p.min_cluster:
            continue
        halves = KMeans(n_clusters=2, n_init=4, random_state=p.seed).fit(x[members]).labels_
        if min(int((halves == h).sum()) for h in (0, 1)) < p.min_cluster:
            continue
        new = int(cluster.max()) + 1
        cluster[members[halves == 1]] = new
        queue += [(c, depth + 1), (new, depth + 1)]
    return cluster


def _group(name: str) -> str:
    """``spam:fake-3`` -> ``spam:fake``: the named group a cluster belongs to."""
    head, _, tail = name.rpartition("-")
    return head if head and tail.isdigit() else name


def fit(features: Features, params: SpamParams | None = None) -> SpamModel:
    """Select, standardize, cluster, name, train the MLP, label every user.

    K-Means' elbow (k in ``k_min..k_max``) gives the study's coarse segmentation,
    reported as such. Naming needs finer clusters: spam is a few percent of users, and
    a coarse cluster hides a churn ring among thousands of fans or a viral sign-up
    burst beside a fake batch. The partition that is named has
    ``n / users_per_cluster`` clusters (at least the elbow's k, at most
    ``k_label_max``); each is named by its median member, and the MLP learns the
    named groups (spam kinds, superstars, musicians, fans, lurkers).

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
    k_label = min(max(k, min(p.k_label_max, n // p.users_per_cluster)), distinct)
    km = fits[ks.index(k)] if k_label == k else KMeans(k_label, n_init=4, random_state=p.seed)
    cluster = (km.labels_ if k_label == k else km.fit(x).labels_).astype(np.int64)
    raw = features.raw
    ref = reference(raw)
    cluster = _homogenise(x, raw, cluster, ref, p)
    k_label = int(cluster.max()) + 1
    medians = {name: float(np.median(raw[:, _F[name]])) for name in FEATURES}
    centroids = [_centroid(raw[cluster == c], np.mean) for c in range(k_label)]
    median_centroids = [_centroid(raw[cluster == c], np.median) for c in range(k_label)]
    names = name_clusters(median_centroids, medians, ref)
    sizes = np.bincount(cluster, minlength=k_label)
    groups = sorted({_group(name) for name in names})
    target = np.array([groups.index(_group(names[c])) for c in cluster], dtype=np.int64)

    rng = np.random.default_rng(p.seed)
    counts = np.bincount(target, minlength=len(groups))
    stratify = target if counts.min() >= 2 else None
    idx_train, idx_test = train_test_split(
        np.arange(n), test_size=p.test_size, random_state=p.seed, stratify=stratify
    )
    train = _balanced_indices(target[idx_train], p.per_class, rng)
    mlp = MLPClassifier(
        hidden_layer_sizes=p.hidden, max_iter=p.max_iter, random_state=p.seed, alpha=1e-4
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        mlp.fit(x[idx_train][train], target[idx_train][train])
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    accuracy = float((mlp.predict(x[idx_test]) == target[idx_test]).mean())

    proba = mlp.predict_proba(x)
    classes = mlp.classes_.astype(np.int64)
    spam_columns = np.array([groups[c].startswith("spam:") for c in classes])
    probability = proba[:, spam_columns].sum(axis=1) if spam_columns.any() else np.zeros(n)
    is_spam = probability >= 0.5
    # The label follows the decision: the likeliest spam group for flagged users, the
    # likeliest other group for the rest (their spam share may still be the largest).
    masked = np.where(spam_columns[None, :] == is_spam[:, None], proba, -1.0)
    predicted = classes[np.argmax(masked, axis=1)]
    kinds: list[str | None] = [
        groups[int(g)].removeprefix("spam:") if spam else None
        for g, spam in zip(predicted, is_spam, strict=True)
    ]
    return SpamModel(
        selection=selection,
        ks=ks,
        inertias=inertias,
        k=k,
        k_label=k_label,
        cluster=cluster,
        cluster_names=names,
        centroids=centroids,
        cluster_sizes=sizes.tolist(),
        groups=groups,
        predicted=predicted,
        probability=probability,
        is_spam=is_spam,
        kind=kinds,
        mlp_accuracy=accuracy,
        mlp_converged=converged,
        train_size=int(train.shape[0]),
        test_size=int(idx_test.shape[0]),
        reference=ref,
    )


def precision_recall(flagged: B, truth: B) -> tuple[float, float]:
    """Precision and recall of ``flagged`` against ``truth`` (NaN when undefined)."""
    tp = float((flagged & truth).sum())
    precision = tp / flagged.sum() if flagged.any() else float("nan")
    recall = tp / truth.sum() if truth.any() else float("nan")
    return precision, recall
