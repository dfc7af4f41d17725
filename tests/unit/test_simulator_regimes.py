"""The hard world regime: camouflaged spam, spam-looking humans, sign-up bursts."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.spam.core import has_profanity, is_shortener
from simulator import render
from simulator.regimes import (
    LOOK_EXPLICIT,
    LOOK_REFOLLOW,
    LOOK_SHARED_SECOND,
    LOOK_SHORTENER,
    REGIMES,
    regime,
)
from simulator.world import World

SEED = 11
USERS = 6000


@pytest.fixture(scope="module")
def hard() -> World:
    return World.generate(SEED, USERS, regime=REGIMES["hard"])


def _pairs(world: World) -> tuple[np.ndarray, np.ndarray]:
    key = world.follows.src * (world.core + 1) + world.follows.dst
    pairs, counts = np.unique(key, return_counts=True)
    return pairs, counts


def test_the_hard_world_is_reproducible_and_ordered(hard: World) -> None:
    again = World.generate(SEED, USERS, regime=REGIMES["hard"])
    assert np.array_equal(hard.follows.t_us, again.follows.t_us)
    assert np.array_equal(hard.lookalike, again.lookalike)
    assert (np.diff(hard.created_s) >= 0).all()  # ids stay in sign-up order
    assert (np.diff(hard.follows.t_us) > 0).all()  # distinct event times
    easy = World.generate(SEED, USERS)
    assert np.array_equal(easy.spam_kind, hard.spam_kind)  # same spammers, other disguise
    assert not easy.camouflaged.any() and not easy.lookalike.any()
    with pytest.raises(ValueError, match="known: easy, hard"):
        regime("medium")


def test_camouflaged_spam_hides_its_signatures(hard: World) -> None:
    for kind in (1, 2, 3):
        members = hard.spam_kind == kind
        assert 0.3 <= hard.camouflaged[members].mean() <= 0.7
    now = hard.end_us
    for uid in (np.flatnonzero(hard.camouflaged & (hard.spam_kind == 1)) + 1).tolist():
        assert not has_profanity(render.description(hard, uid))
        assert not any(is_shortener(w["url"]) for w in render.web_profiles(hard, uid))
    fakes = np.flatnonzero(hard.camouflaged & (hard.spam_kind == 2)) + 1
    descriptions = [render.description(hard, uid) for uid in fakes.tolist()]
    assert len(set(d for d in descriptions if d)) < len(fakes)  # bios of their own kind
    assert all(d is None or "#" not in d for d in descriptions)
    assert np.unique(hard.created_s[fakes - 1]).size > 0.5 * fakes.size  # no shared second
    # ... but they still behave as spam: fakes follow, churn bots re-follow
    followings = np.bincount(hard.follows.src, minlength=hard.core + 1)
    assert (followings[fakes] > 0).all()
    pairs, counts = _pairs(hard)
    churn = np.flatnonzero(hard.camouflaged & (hard.spam_kind == 3)) + 1
    repeated_src = pairs[counts > 1] // (hard.core + 1)
    assert np.isin(churn, repeated_src).all()
    assert render.full_user(hard, int(churn[0]), now)["followings_count"] > 0


def test_spam_is_followed_back(hard: World) -> None:
    spam_ids = np.flatnonzero(hard.spam_kind > 0) + 1
    followers = np.bincount(hard.follows.dst, minlength=hard.core + 1)
    assert (followers[spam_ids] > 0).mean() > 0.3
    back = np.isin(hard.follows.dst, spam_ids) & hard.artist[hard.follows.src - 1]
    assert back.any()


def test_lookalike_humans_carry_one_spam_trait(hard: World) -> None:
    real = (hard.spam_kind == 0) & ~hard.gone
    traits = hard.lookalike
    assert (traits[~real & (traits > 0)] == 0).all()
    assert 0.02 <= (traits[real] > 0).mean() <= 0.06
    for bit in (LOOK_SHORTENER, LOOK_EXPLICIT, LOOK_SHARED_SECOND, LOOK_REFOLLOW):
        assert ((traits & bit) > 0).sum() >= 5
    for uid in (np.flatnonzero(traits == LOOK_SHORTENER) + 1).tolist():
        assert any(is_shortener(w["url"]) for w in render.web_profiles(hard, uid))
    for uid in (np.flatnonzero(traits == LOOK_EXPLICIT) + 1).tolist():
        assert has_profanity(render.description(hard, uid))
    shared = np.flatnonzero((traits & LOOK_SHARED_SECOND) > 0)
    seconds, counts = np.unique(hard.created_s[shared], return_counts=True)
    assert (counts >= 2).all() and seconds.size >= 5  # each shares its second
    pairs, counts = _pairs(hard)
    refollowers = np.flatnonzero(traits == LOOK_REFOLLOW) + 1
    repeated_src = pairs[counts > 1] // (hard.core + 1)
    assert np.isin(refollowers, repeated_src).mean() > 0.5  # those who follow anyone


def test_signup_bursts_of_real_users(hard: World) -> None:
    real = np.flatnonzero((hard.spam_kind == 0) & ~hard.gone)
    t = hard.created_s[real]
    within_hour = np.searchsorted(t, t + 3600, side="right") - np.arange(t.size)
    assert within_hour.max() >= 20  # dozens of real sign-ups inside one hour
