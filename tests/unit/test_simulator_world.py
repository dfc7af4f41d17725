"""The simulator's world: determinism, planted structure, dynamics, ground truth files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from simulator import dynamics, hashing, truth
from simulator.params import LIFE_HOURS
from simulator.world import World

SEED = 5
USERS = 3000


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(SEED, USERS)


def test_hash_scalar_and_array_agree() -> None:
    items = [0, 1, 7, 2**31, 10_000_000, 2**53]
    arr = hashing.uniform_array(3, 9, items)
    assert [hashing.uniform(3, 9, i) for i in items] == arr.tolist()
    assert all(0.0 <= u < 1.0 for u in arr)
    assert hashing.uniform(3, 9, 1) != hashing.uniform(4, 9, 1)


def test_same_seed_same_world_other_seed_other_world(world: World) -> None:
    again = World.generate(SEED, USERS)
    for a, b in (
        (world.follows.t_us, again.follows.t_us),
        (world.follows.src, again.follows.src),
        (world.reposts.t_us, again.reposts.t_us),
        (world.likes.dst, again.likes.dst),
        (world.shocks.beta, again.shocks.beta),
        (world.play_cum, again.play_cum),
    ):
        assert np.array_equal(a, b)
    other = World.generate(SEED + 1, USERS)
    assert not np.array_equal(world.follows.dst[:100], other.follows.dst[:100])


def test_ids_created_at_and_gone(world: World) -> None:
    assert np.all(np.diff(world.created_s) >= 0), "created_at grows with id"
    gone_share = world.gone.mean()
    assert 0.02 < gone_share < 0.12
    ids = np.arange(1, 2 * USERS)
    mask = world.is_gone(ids)
    assert np.array_equal(mask[:USERS], world.gone)
    assert mask[USERS:].all(), "ids beyond the id space are gone"


def test_procedural_periphery_has_the_seed_gone_rate() -> None:
    big = World.generate(SEED, 1_000_000, core=500)
    ids = np.arange(500_001, 600_001)
    share = big.is_gone(ids).mean()
    assert 0.05 < share < 0.07
    assert big.created_s.size == 500


def test_proportions(world: World) -> None:
    live = ~world.gone
    no_tracks = 1.0 - world.artist[live].mean()
    assert 0.90 < no_tracks < 0.95  # seed studies: ~92.8% of users have no tracks
    sizes = world.cascade_sizes()
    assert np.median(sizes) <= 2, "most cascades stay small"
    assert sizes.max() >= 10


def test_planted_link_spam(world: World) -> None:
    labels = world.spam_labels()
    link = [u for u, k in labels.items() if k == "link_spam"]
    assert link
    followings = np.bincount(world.follows.src, minlength=USERS + 1)
    followers = np.bincount(world.follows.dst, minlength=USERS + 1)
    for uid in link:
        assert 250 <= followings[uid] <= 350
        assert followers[uid] == 0
        assert not world.artist[uid - 1]


def test_planted_fake_batches(world: World) -> None:
    labels = world.spam_labels()
    fakes = sorted(u for u, k in labels.items() if k == "fake_batch")
    assert fakes
    involved = set(world.follows.src.tolist()) | set(world.follows.dst.tolist())
    involved |= set(world.likes.src.tolist()) | set(world.reposts.src.tolist())
    assert not involved.intersection(fakes), "batch-made accounts have no activity"
    by_desc: dict[str, list[int]] = {}
    for uid in fakes:
        by_desc.setdefault(world.batch_description[uid], []).append(uid)
    for members in by_desc.values():
        assert len(members) >= 5
        assert len({int(world.created_s[u - 1]) for u in members}) == 1, "same created second"


def test_planted_follow_churn(world: World) -> None:
    labels = world.spam_labels()
    churn = [u for u, k in labels.items() if k == "follow_churn"]
    assert churn
    f = world.follows
    for uid in churn:
        targets = f.dst[f.src == uid]
        _, counts = np.unique(targets, return_counts=True)
        assert counts.min() >= 2, "every target is followed repeatedly"
    normal = np.array([world.spam_kind[u - 1] == 0 for u in f.src.tolist()])
    pairs = f.src[normal] * (USERS + 1) + f.dst[normal]
    assert np.unique(pairs).size == pairs.size, "normal users follow once"


def test_event_times_are_distinct_and_inside_the_horizon(world: World) -> None:
    for ev in (world.follows, world.reposts, world.likes):
        assert np.all(np.diff(ev.t_us) > 0)
        assert ev.t_us.max() <= world.end_us
    created = world.tracks.created_s[world.reposts.dst - 1] * 1_000_000
    assert np.all(world.reposts.t_us > created), "reposts come after the upload"


def test_mavens_bridge_communities(world: World) -> None:
    f = world.follows
    comm = world.community
    ok = (comm[f.src - 1] >= 0) & (comm[f.dst - 1] >= 0)
    cross = comm[f.src[ok] - 1] != comm[f.dst[ok] - 1]
    dst = f.dst[ok]
    mav = world.maven[dst - 1]
    assert cross[mav].mean() > 2 * cross[~mav].mean()


def test_single_shock_dynamics_conserve_population() -> None:
    s0 = 1000.0
    shocks = dynamics.Shocks(
        track=np.array([0]),
        start_h=np.array([3]),
        s0=np.array([s0]),
        i0=np.array([10.0]),
        beta=np.array([0.002]),
        gamma=np.array([0.2]),
        omega=np.array([1.5]),
    )
    hourly = dynamics.hourly_plays(shocks, 1, 400, np.array([0]), np.array([0]), np.array([0.0]))
    assert np.all(hourly[0, :3] == 0), "nothing before the shock starts"
    assert hourly[0, 3] > 0
    # plays = omega * integral of I; integral of I = (I0 + infected) / gamma
    total = hourly.sum()
    assert total > 1.5 * 10 / 0.2
    assert total < 1.5 * (10 + s0) / 0.2 + 1e-6
    assert hourly[0, -1] < 1e-6, "the epidemic is over"


def test_play_curve_matches_served_counter_up_to_noise(world: World) -> None:
    pub = world.tracks.id[world.tracks.public][:200]
    hours_us, hourly, cum = world.play_curve(pub)
    assert hourly.shape == (pub.size, LIFE_HOURS)
    assert np.all(np.diff(cum, axis=1) >= 0)
    served = np.array([world.plays_at(int(t) - 1, int(hours_us[i, -1])) for i, t in
                       enumerate(pub)])  # fmt: skip
    noiseless = cum[:, -1]
    big = noiseless > 1000
    ratio = served[big] / noiseless[big]
    assert np.all((ratio > 0.8) & (ratio < 1.2))
    table = world.shock_table()
    assert set(table) == {"track_id", "start_us", "s0", "i0", "beta", "gamma", "omega"}
    assert set(pub.tolist()) <= set(table["track_id"].tolist()), "every public track has a shock"


def test_truth_files(world: World, tmp_path: Path) -> None:
    small = World.generate(SEED, 2000, core=800)
    summary = truth.write(small, tmp_path, threshold=5)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {
        "summary.json", "users.parquet", "gone_ids.parquet", "follows.parquet",
        "reposts.parquet", "likes.parquet", "tracks.parquet", "shocks.parquet",
        "play_curves.parquet",
    }  # fmt: skip
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    gone = pq.read_table(tmp_path / "gone_ids.parquet")["id"].to_numpy()
    assert np.array_equal(gone, np.flatnonzero(small.is_gone(np.arange(1, 2001))) + 1)
    follows = pq.read_table(tmp_path / "follows.parquet")
    assert np.array_equal(follows["t_us"].to_numpy(), small.follows.t_us)
    tracks = pq.read_table(tmp_path / "tracks.parquet")
    assert tracks["viral"].to_numpy().sum() == summary["viral_tracks"]
    users = pq.read_table(tmp_path / "users.parquet").to_pydict()
    kinds = {i: k for i, k in zip(users["id"], users["spam_kind"], strict=True) if k != "none"}
    assert kinds == small.spam_labels()


@pytest.mark.parametrize(("users", "core"), [(1, None), (2, None), (10, None), (1000, 0), (50, 5)])
def test_tiny_worlds_generate_and_index(users: int, core: int | None) -> None:
    w = World.generate(SEED, users, core=core)
    w.warm()
    assert w.core == min(users, 20_000 if core is None else core)
    assert w.followers_of.ptr.size == w.core + 1
    assert np.all(w.cascade_sizes() >= 0)
