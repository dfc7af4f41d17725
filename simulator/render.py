"""api-v2 JSON objects for the world's users and tracks at a given simulated time.

Key sets and key order follow the real bodies in ``shared/fixtures/soundcloud-api-v2``:
a full user has 33 keys (``/users/{id}``, follower/following lists, reposters, likers,
the user nested in ``/tracks/{id}``); the user nested in a user's tracks and likes is the
19-key reduced form; a track has 47 keys. Everything that is not a count is a pure
function of ``(seed, id)``; counts are what the list endpoints return at ``now_us``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simulator import hashing
from simulator.params import S_CITY, S_DESC, S_NAME, S_PLAN, S_TRACK, created_s_of
from simulator.regimes import LOOK_EXPLICIT, LOOK_SHORTENER
from simulator.world import World

_SYLL = (
    "ka", "lo", "mi", "ra", "ne", "so", "ta", "vi", "zu", "be", "do", "fa", "gi", "ju",
    "ko", "lu", "ma", "no", "pe", "qui", "ri", "sa", "te", "vo", "xa", "yo", "ze", "dub",
    "bass", "beat", "wave", "lyn", "mar", "ten",
)  # fmt: skip
_FIRST = (
    "Alex", "Sam", "Jo", "Mia", "Noah", "Lea", "Omar", "Ivy", "Ken", "Nina", "Luca",
    "Ada", "Eli", "Zoe", "Ravi", "Kim", "", "", "",
)  # fmt: skip
_LAST = ("Smith", "Garcia", "Kim", "Okafor", "Rossi", "Nguyen", "Berg", "Silva", "", "")
_CITIES = (
    (None, None), ("Berlin", "DE"), ("London", "GB"), ("Toronto", "CA"), ("Lagos", "NG"),
    ("São Paulo", "BR"), ("Los Angeles", "US"), ("Paris", "FR"), ("Tokyo", "JP"),
    (None, None), ("Madrid", "ES"), ("Atlanta", "US"), (None, None),
)  # fmt: skip
_BIOS = (
    "producer / dj",
    "beats for sale, contact via email",
    "bedroom producer. lofi + house",
    "singer-songwriter",
    "just here for the music",
    "Management: mgmt@example.com",
)
_SPAM_BIOS = (
    "hot girls waiting for you 18+ xxx click {url}",
    "FREE followers & plays!!! no scam fuck yeah {url}",
    "sexy nude pics here -> {url}",
    "make $$$ from home, f*cking easy money {url}",
    "xxx webcam sluts online now {url}",
)
# Real users who swear or post explicit material (look-alikes of the hard regime).
_EXPLICIT_BIOS = (
    "explicit lyrics only. fuck the industry",
    "18+ techno, dark rooms, no sleep",
    "sexy basslines & dirty drums",
    "sh!t i made in my bedroom",
    "xxx-rated edits, dm for bookings",
)
_LINK_TITLES = ("new mixtape", "merch", "all my links", "free download")
_SHORTENERS = ("bit.ly", "tinyurl.com", "cutt.ly", "goo.gl", "t.co", "rb.gy")
_WORDS = (
    "night", "drive", "gold", "echo", "signal", "summer", "ghost", "river", "neon", "heart",
    "city", "dream", "fire", "velvet", "storm", "mirror", "blue", "static", "orbit", "rain",
)  # fmt: skip
_GENRES = ("Electronic", "Hip Hop/Rap", "House", "Pop", "Techno", "Ambient", "R&B & Soul",
           "Drum & Bass", "Indie", "Dubstep")  # fmt: skip
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def iso_s(epoch_s: int) -> str:
    """``2010-01-20T11:56:32Z``."""
    t = time.gmtime(epoch_s)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T{t[3]:02d}:{t[4]:02d}:{t[5]:02d}Z"


def iso_ms(epoch_us: int) -> str:
    """``2024-11-01T04:00:00.000Z`` (the cursor form)."""
    dt = datetime.fromtimestamp(epoch_us // 1_000_000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(epoch_us // 1000) % 1000:03d}Z"


def token(seed: int, stream: int, item: int, n: int) -> str:
    """``n`` deterministic alphanumeric characters."""
    out = []
    k = hashing.key(seed, stream, item)
    for i in range(n):
        if i and i % 10 == 0:
            k = hashing.mix(k + i)
        out.append(_ALNUM[k % 62])
        k //= 62
    return "".join(out)


def user_slug(seed: int, uid: int) -> str:
    """The letters part of a user's permalink (the id follows it)."""
    k = hashing.key(seed, S_NAME, uid)
    n = 2 + k % 3
    k //= 3
    parts = []
    for _ in range(n):
        parts.append(_SYLL[k % len(_SYLL)])
        k //= len(_SYLL)
    return "".join(parts)


def user_permalink(seed: int, uid: int) -> str:
    """``<letters><id>``: unique, and the id is recoverable from it (``/resolve``)."""
    return f"{user_slug(seed, uid)}{uid}"


def plan(seed: int, uid: int) -> str:
    """Subscription product: ~99.8% free, the rest Pro / Pro Unlimited."""
    u = hashing.uniform(seed, S_PLAN, uid)
    if u < 0.998:
        return "free"
    return "creator-pro" if u < 0.999 else "creator-pro-unlimited"


def spam_url(seed: int, uid: int) -> str:
    """The URL-shortener link a link-spam account advertises."""
    host = _SHORTENERS[hashing.key(seed, S_DESC, uid) % len(_SHORTENERS)]
    return f"https://{host}/{token(seed, S_DESC, uid, 7)}"


def own_domain_url(seed: int, uid: int) -> str:
    """A camouflaged link spammer's link: a domain of its own, not a shortener."""
    return f"https://www.{user_slug(seed, uid)}{hashing.key(seed, S_DESC, uid) % 997}.com/"


def description(world: World, uid: int) -> str | None:
    """Profile description: spam templates, batch descriptions, or an occasional bio."""
    seed = world.seed
    if uid <= world.core:
        kind = int(world.spam_kind[uid - 1])
        disguised = bool(world.camouflaged[uid - 1])
        if kind == 1 and not disguised:
            k = hashing.key(seed, S_DESC, uid + 7)
            return _SPAM_BIOS[k % len(_SPAM_BIOS)].format(url=spam_url(seed, uid))
        if kind == 2 and not disguised:
            return world.batch_description.get(uid)
        if world.lookalike[uid - 1] & LOOK_EXPLICIT:
            return _EXPLICIT_BIOS[hashing.key(seed, S_DESC, uid + 7) % len(_EXPLICIT_BIOS)]
    u = hashing.uniform(seed, S_DESC, uid)
    if u < 0.3:
        return _BIOS[int(u / 0.3 * len(_BIOS))]
    return None


def web_profiles(world: World, uid: int) -> list[dict[str, Any]]:
    """Links on a profile: shorteners for link spam, social networks for artists."""
    seed = world.seed
    if uid > world.core:
        return []
    kind = int(world.spam_kind[uid - 1])
    slug = user_slug(seed, uid)
    if kind == 1:
        url = own_domain_url(seed, uid) if world.camouflaged[uid - 1] else spam_url(seed, uid)
        return [{"url": url, "network": "personal", "title": "my site", "username": None}]
    links: list[dict[str, Any]] = []
    if world.artist[uid - 1]:
        links += [
            {"url": f"https://instagram.com/{slug}", "network": "instagram",
             "title": "Instagram", "username": slug},
            {"url": f"https://twitter.com/{slug}", "network": "twitter", "title": "Twitter",
             "username": slug},
        ]  # fmt: skip
    if world.lookalike[uid - 1] & LOOK_SHORTENER:
        title = _LINK_TITLES[hashing.key(seed, S_DESC, uid + 3) % len(_LINK_TITLES)]
        links.append({"url": spam_url(seed, uid), "network": "personal", "title": title,
                      "username": None})  # fmt: skip
    return links


def _badges(product: str, verified: bool) -> dict[str, bool]:
    return {
        "pro": product == "creator-pro",
        "creator_mid_tier": False,
        "pro_unlimited": product == "creator-pro-unlimited",
        "verified": verified,
    }


def _avatar(seed: int, uid: int) -> str:
    return f"https://i1.sndcdn.com/avatars-{uid:012d}-{token(seed, S_NAME, uid, 6)}-large.jpg"


def _names(seed: int, uid: int) -> tuple[str, str, str]:
    k = hashing.key(seed, S_NAME, uid + 1)
    first = _FIRST[k % len(_FIRST)]
    last = _LAST[(k // 31) % len(_LAST)]
    full = f"{first} {last}".strip()
    return first, last, full


def user_counts(world: World, uid: int, now_us: int) -> tuple[int, int, int, int]:
    """``followers_count``, ``followings_count``, ``track_count``, ``likes_count`` at now."""
    if uid > world.core:
        return 0, 0, 0, 0
    i = uid - 1
    return (
        world.followers_of.count(i, now_us),
        world.followings_of.count(i, now_us),
        world.public_tracks_by.count(i, now_us),
        world.likes_by.count(i, now_us),
    )


def created_s(world: World, uid: int) -> int:
    """A user's ``created_at`` (epoch s)."""
    if uid <= world.core:
        return int(world.created_s[uid - 1])
    return created_s_of(uid, world.users, world.start_us // 1_000_000)


@dataclass(frozen=True, slots=True)
class _UserFields:
    uid: int
    avatar: str
    city: str | None
    country: str | None
    created: str
    product: str
    description: str | None
    followers: int
    followings: int
    first: str
    full: str
    modified: str
    last: str
    likes: int
    permalink: str
    tracks: int
    username: str
    verified: bool


def _user_fields(world: World, uid: int, now_us: int) -> _UserFields:
    seed = world.seed
    created = created_s(world, uid)
    followers, followings, tracks, likes = user_counts(world, uid, now_us)
    first, last, full = _names(seed, uid)
    city, country = _CITIES[hashing.key(seed, S_CITY, uid) % len(_CITIES)]
    slug = user_slug(seed, uid)
    # edited some time after sign-up, but never after the world's start
    modified = min(
        created + int(hashing.uniform(seed, S_CITY, uid + 3) * 86400 * 30),
        world.start_us // 1_000_000 - 1,
    )
    return _UserFields(
        uid=uid,
        avatar=_avatar(seed, uid),
        city=city,
        country=country,
        created=iso_s(created),
        product=plan(seed, uid),
        description=description(world, uid),
        followers=followers,
        followings=followings,
        first=first,
        full=full,
        modified=iso_s(modified),
        last=last,
        likes=likes,
        permalink=f"{slug}{uid}",
        tracks=tracks,
        username=slug.capitalize(),
        verified=followers >= 5000,
    )


def full_user(world: World, uid: int, now_us: int) -> dict[str, Any]:
    """The 33-key user object."""
    f = _user_fields(world, uid, now_us)
    sub = {"product": {"id": f.product}}
    return {
        "avatar_url": f.avatar,
        "city": f.city,
        "comments_count": 0,
        "country_code": f.country,
        "created_at": f.created,
        "creator_subscriptions": [sub],
        "creator_subscription": sub,
        "description": f.description,
        "followers_count": f.followers,
        "followings_count": f.followings,
        "first_name": f.first,
        "full_name": f.full,
        "groups_count": 0,
        "id": uid,
        "kind": "user",
        "last_modified": f.modified,
        "last_name": f.last,
        "likes_count": f.likes,
        "playlist_likes_count": 0,
        "permalink": f.permalink,
        "permalink_url": f"https://soundcloud.com/{f.permalink}",
        "playlist_count": 0,
        "reposts_count": None,
        "track_count": f.tracks,
        "uri": f"https://api.soundcloud.com/users/soundcloud%3Ausers%3A{uid}",
        "urn": f"soundcloud:users:{uid}",
        "username": f.username,
        "verified": f.verified,
        "visuals": None,
        "badges": _badges(f.product, f.verified),
        "station_urn": f"soundcloud:system-playlists:artist-stations:{uid}",
        "station_permalink": f"artist-stations:{uid}",
        "date_of_birth": None,
    }


def _js(value: str | None) -> str:
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


def full_user_json(world: World, uid: int, now_us: int) -> str:
    """:func:`full_user` serialised compactly, byte for byte as ``json.dumps`` would.

    The hot path of a user sweep: formatting the known shape directly costs a fraction
    of building the dict and encoding it.
    """
    f = _user_fields(world, uid, now_us)
    p = f.product
    v = "true" if f.verified else "false"
    pro = "true" if p == "creator-pro" else "false"
    unl = "true" if p == "creator-pro-unlimited" else "false"
    sub = f'{{"product":{{"id":"{p}"}}}}'
    return (
        f'{{"avatar_url":"{f.avatar}","city":{_js(f.city)},"comments_count":0,'
        f'"country_code":{_js(f.country)},"created_at":"{f.created}",'
        f'"creator_subscriptions":[{sub}],"creator_subscription":{sub},'
        f'"description":{_js(f.description)},"followers_count":{f.followers},'
        f'"followings_count":{f.followings},"first_name":"{f.first}","full_name":"{f.full}",'
        f'"groups_count":0,"id":{uid},"kind":"user","last_modified":"{f.modified}",'
        f'"last_name":"{f.last}","likes_count":{f.likes},"playlist_likes_count":0,'
        f'"permalink":"{f.permalink}","permalink_url":"https://soundcloud.com/{f.permalink}",'
        f'"playlist_count":0,"reposts_count":null,"track_count":{f.tracks},'
        f'"uri":"https://api.soundcloud.com/users/soundcloud%3Ausers%3A{uid}",'
        f'"urn":"soundcloud:users:{uid}","username":"{f.username}","verified":{v},'
        f'"visuals":null,"badges":{{"pro":{pro},"creator_mid_tier":false,'
        f'"pro_unlimited":{unl},"verified":{v}}},'
        f'"station_urn":"soundcloud:system-playlists:artist-stations:{uid}",'
        f'"station_permalink":"artist-stations:{uid}","date_of_birth":null}}'
    )


_MINI_KEYS = (
    "avatar_url", "first_name", "followers_count", "full_name", "id", "kind", "last_modified",
    "last_name", "permalink", "permalink_url", "uri", "urn", "username", "verified", "city",
    "country_code", "badges", "station_urn", "station_permalink",
)  # fmt: skip


def mini_user(world: World, uid: int, now_us: int) -> dict[str, Any]:
    """The 19-key user nested in a user's tracks and likes."""
    full = full_user(world, uid, now_us)
    return {k: full[k] for k in _MINI_KEYS}


def track_title(seed: int, tid: int) -> str:
    """A track's title (two or three words)."""
    k = hashing.key(seed, S_TRACK, tid)
    n = 2 + k % 2
    k //= 2
    words = []
    for _ in range(n):
        words.append(_WORDS[k % len(_WORDS)])
        k //= len(_WORDS)
    return " ".join(words).title()


def track_permalink(seed: int, tid: int) -> str:
    """``<title-slug>-<id>`` (the id is recoverable from it)."""
    return f"{track_title(seed, tid).lower().replace(' ', '-')}-{tid}"


def track(world: World, tid: int, now_us: int, nested_full: bool) -> dict[str, Any]:
    """The 47-key track object; ``nested_full`` picks the 33-key nested user."""
    seed = world.seed
    k = tid - 1
    t = world.tracks
    uid = int(t.user_id[k])
    created = int(t.created_s[k])
    public = bool(t.public[k])
    h = hashing.key(seed, S_TRACK, tid + 1)
    duration = 90_000 + h % 330_000
    user = full_user(world, uid, now_us) if nested_full else mini_user(world, uid, now_us)
    permalink = track_permalink(seed, tid)
    uuid = token(seed, S_TRACK, tid + 2, 12)
    media_base = f"https://api-v2.soundcloud.com/media/soundcloud:tracks:{tid}/{uuid}/stream"
    transcodings = [
        {
            "url": f"{media_base}/{protocol}",
            "preset": "mp3_0_0",
            "duration": duration,
            "snipped": False,
            "format": {"protocol": protocol, "mime_type": "audio/mpeg"},
            "quality": "sq",
            "is_legacy_transcoding": True,
        }
        for protocol in ("hls", "progressive")
    ]
    return {
        "artwork_url": f"https://i1.sndcdn.com/artworks-{tid:012d}-{uuid[:6]}-large.jpg",
        "caption": None,
        "commentable": True,
        "comment_count": 0,
        "created_at": iso_s(created),
        "description": "",
        "downloadable": False,
        "download_count": 0,
        "duration": duration,
        "full_duration": duration,
        "embeddable_by": "all",
        "genre": _GENRES[h % len(_GENRES)],
        "has_downloads_left": False,
        "id": tid,
        "kind": "track",
        "label_name": None,
        "last_modified": iso_s(created + 60),
        "license": "all-rights-reserved",
        "likes_count": world.likers_of.count(k, now_us),
        "permalink": permalink,
        "permalink_url": f"{user['permalink_url']}/{permalink}",
        "playback_count": world.plays_at(k, now_us),
        "public": public,
        "publisher_metadata": None,
        "purchase_title": None,
        "purchase_url": None,
        "release_date": None,
        "reposts_count": world.reposters_of.count(k, now_us),
        "secret_token": None,
        "sharing": "public" if public else "private",
        "state": "finished",
        "streamable": True,
        "tag_list": "",
        "title": track_title(seed, tid),
        "uri": f"https://api.soundcloud.com/tracks/soundcloud%3Atracks%3A{tid}",
        "urn": f"soundcloud:tracks:{tid}",
        "user_id": uid,
        "visuals": None,
        "waveform_url": f"https://wave.sndcdn.com/{uuid}_m.json",
        "display_date": iso_s(created),
        "media": {"transcodings": transcodings},
        "station_urn": f"soundcloud:system-playlists:track-stations:{tid}",
        "station_permalink": f"track-stations:{tid}",
        "track_authorization": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9."
        + token(seed, S_TRACK, tid + 3, 40),
        "monetization_model": "NOT_APPLICABLE",
        "policy": "ALLOW",
        "user": user,
    }
