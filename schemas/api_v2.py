"""Pydantic v2 models of SoundCloud api-v2 payloads.

Modelled on real response bodies (``shared/fixtures/soundcloud-api-v2``). A model lists
the fields soundfleet lands or checks; every other field is ignored, never an error,
because the platform adds fields without notice (and changing the type of a field
nobody stores must not fail a crawl; validating the user fields no table holds, such as
badges, names and station URNs, was a fifth of a swept user's parse). A listed field of
the wrong type fails with an error naming the field's path.

Use :func:`parse` to validate a decoded JSON body into a model and get a
:class:`~schemas.errors.PayloadError` on failure.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from schemas.errors import PayloadError


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# A user's subscriptions are validated into plain dicts, not models: a swept user has
# two of them, and four nested model instances were a fifth of its validation.
class Product(TypedDict):
    """A subscription product (``free``, ``creator-pro``, ``creator-pro-unlimited``…)."""

    id: str


class CreatorSubscription(TypedDict):
    """A user's creator subscription."""

    product: Product


class MiniUser(_Payload):
    """The reduced user nested in comments and some tracks."""

    id: int
    kind: Literal["user"] = "user"
    permalink: str | None = None
    username: str | None = None
    full_name: str | None = None
    avatar_url: str | None = None
    permalink_url: str | None = None
    city: str | None = None
    country_code: str | None = None
    followers_count: int | None = None
    last_modified: datetime | None = None
    verified: bool | None = None


class User(MiniUser):
    """The full user of ``/users/{id}``, of follower/following lists, of reposters…"""

    created_at: datetime
    description: str | None = None
    followings_count: int | None = None
    track_count: int | None = None
    playlist_count: int | None = None
    likes_count: int | None = None
    playlist_likes_count: int | None = None
    reposts_count: int | None = None
    comments_count: int | None = None
    groups_count: int | None = None
    creator_subscription: CreatorSubscription | None = None
    creator_subscriptions: list[CreatorSubscription] = Field(default_factory=list)

    @property
    def plan(self) -> str:
        """The creator subscription's product id, ``free`` when none is given."""
        if self.creator_subscription is not None:
            return self.creator_subscription["product"]["id"]
        if self.creator_subscriptions:
            return self.creator_subscriptions[0]["product"]["id"]
        return "free"


class Track(_Payload):
    """A track (``/tracks/{id}``, a user's tracks, inside likes)."""

    id: int
    kind: Literal["track"] = "track"
    user_id: int
    user: MiniUser | None = None
    title: str | None = None
    permalink: str | None = None
    permalink_url: str | None = None
    description: str | None = None
    genre: str | None = None
    tag_list: str | None = None
    created_at: datetime
    last_modified: datetime | None = None
    display_date: datetime | None = None
    duration: int | None = None
    full_duration: int | None = None
    playback_count: int | None = None
    likes_count: int | None = None
    reposts_count: int | None = None
    comment_count: int | None = None
    download_count: int | None = None
    public: bool | None = None
    sharing: str | None = None
    streamable: bool | None = None
    state: str | None = None
    urn: str | None = None


class Playlist(_Payload):
    """A playlist or album (``/users/{id}/albums``, playlist likes)."""

    id: int
    kind: Literal["playlist"] = "playlist"
    user_id: int
    title: str | None = None
    permalink: str | None = None
    created_at: datetime
    is_album: bool | None = None
    set_type: str | None = None
    track_count: int | None = None
    likes_count: int | None = None
    reposts_count: int | None = None


class Like(_Payload):
    """An item of ``/users/{id}/likes``: when, and the liked track or playlist."""

    created_at: datetime
    kind: Literal["like"] = "like"
    track: Track | None = None
    playlist: Playlist | None = None


class Comment(_Payload):
    """An item of ``/tracks/{id}/comments``."""

    id: int
    kind: Literal["comment"] = "comment"
    body: str | None = None
    created_at: datetime
    timestamp: int | None = None
    track_id: int
    user_id: int
    user: MiniUser | None = None


class WebProfile(_Payload):
    """A link on a user's profile (``/users/{urn}/web-profiles``)."""

    url: str
    network: str | None = None
    title: str | None = None
    username: str | None = None


ItemT = TypeVar("ItemT", bound=BaseModel)


class Page(_Payload, Generic[ItemT]):
    """A ``linked_partitioning`` collection page.

    ``next_href`` is null on the last page; a page may be empty while ``next_href`` is
    set (private items sit there), and then must still be followed.
    """

    collection: list[ItemT]
    next_href: str | None = None
    query_urn: str | None = None
    total_results: int | None = None


class HydrationEntry(_Payload):
    """One entry of the homepage's ``window.__sc_hydration`` array."""

    hydratable: str
    data: Any = None


class ApiClient(_Payload):
    """The ``apiClient`` hydration entry's data: the web client's ``client_id``."""

    id: str = Field(min_length=1)
    isExpiring: bool | None = None


UserPage = Page[User]
TrackPage = Page[Track]
LikePage = Page[Like]
CommentPage = Page[Comment]
PlaylistPage = Page[Playlist]

ModelT = TypeVar("ModelT", bound=BaseModel)

_hydration_adapter: TypeAdapter[list[HydrationEntry]] = TypeAdapter(list[HydrationEntry])
_web_profiles_adapter: TypeAdapter[list[WebProfile]] = TypeAdapter(list[WebProfile])


def _describe(exc: ValidationError, what: str) -> PayloadError:
    first = exc.errors()[0]
    path = ".".join(str(p) for p in first["loc"]) or "(body)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return PayloadError(f"{what}: field {path}: {first['msg']}{more}")


def parse(model: type[ModelT], data: object) -> ModelT:
    """Validate decoded JSON ``data`` as ``model``; :class:`PayloadError` names the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _describe(exc, model.__name__) from exc


def parse_hydration(data: object) -> list[HydrationEntry]:
    """Validate the ``__sc_hydration`` array."""
    try:
        return _hydration_adapter.validate_python(data)
    except ValidationError as exc:
        raise _describe(exc, "__sc_hydration") from exc


def client_id_from_hydration(entries: list[HydrationEntry]) -> str | None:
    """The ``client_id`` of the ``apiClient`` entry, if there is one."""
    for entry in entries:
        if entry.hydratable == "apiClient":
            return parse(ApiClient, entry.data).id
    return None


def parse_web_profiles(data: object) -> list[WebProfile]:
    """Validate a web-profiles body: a JSON array of links."""
    try:
        return _web_profiles_adapter.validate_python(data)
    except ValidationError as exc:
        raise _describe(exc, "web-profiles") from exc


def is_not_found_body(data: object) -> bool:
    """True for the empty object the platform sends with a 404."""
    return data == {}


class SkippedItem(TypedDict):
    """A list item that no model fits (a deleted user, an unknown ``kind``): kept raw."""

    index: int
    reason: str
    raw: Any


class ListPage(Generic[ItemT]):
    """A list page read leniently: the items that fit, and those skipped with reasons."""

    __slots__ = ("collection", "next_href", "skipped")

    def __init__(
        self, collection: list[ItemT], next_href: str | None, skipped: list[SkippedItem]
    ) -> None:
        self.collection = collection
        self.next_href = next_href
        self.skipped = skipped


MAX_PAGE_ITEMS = 1000
"""Items a list page may hold before it is refused (pages are asked for 200 at most)."""


class ListPageParser(Generic[ItemT]):
    """Parse a list page's bytes so that one odd item never fails the whole page.

    The whole page is validated from the bytes first (the fast path, nearly every page);
    only when that fails is the body decoded and each item validated on its own. An
    envelope that is not a page (no ``collection`` list, a ``next_href`` that is not a
    string) still fails, with :class:`PayloadError`: that body is malformed, not odd.
    """

    def __init__(self, model: type[ItemT], max_items: int = MAX_PAGE_ITEMS) -> None:
        self.model = model
        self.max_items = max_items
        self._page: type[Page[ItemT]] = Page[model]  # type: ignore[valid-type]

    def parse_body(self, body: bytes) -> ListPage[ItemT]:
        """The page in ``body``; raises :class:`PayloadError` for a malformed envelope."""
        try:
            page = self._page.model_validate_json(body)
        except ValidationError as exc:
            if exc.errors()[0]["type"] == "json_invalid":
                raise _describe(exc, "malformed JSON") from exc
            return self.parse_data(json.loads(body))
        self._check_size(len(page.collection))
        return ListPage(list(page.collection), page.next_href, [])

    def _check_size(self, items: int) -> None:
        # api-v2 pages hold at most `limit` (<= 200) items: thousands are not a page.
        if items > self.max_items:
            raise PayloadError(
                f"{self._page.__name__}: {items} items in one page, over the cap of "
                f"{self.max_items}"
            )

    def parse_data(self, data: object) -> ListPage[ItemT]:
        """The page of decoded JSON ``data``, item by item."""
        if not isinstance(data, dict):
            raise PayloadError(f"{self._page.__name__}: expected an object, got {_kind(data)}")
        items = data.get("collection")
        if not isinstance(items, list):
            raise PayloadError(f"{self._page.__name__}: field collection: expected a list")
        next_href = data.get("next_href")
        if next_href is not None and not isinstance(next_href, str):
            raise PayloadError(f"{self._page.__name__}: field next_href: expected a string")
        self._check_size(len(items))
        kept: list[ItemT] = []
        skipped: list[SkippedItem] = []
        expected = self.model.model_fields.get("kind")
        want = expected.default if expected is not None else None
        for index, item in enumerate(items):
            kind = item.get("kind") if isinstance(item, dict) else None
            if want is not None and kind is not None and kind != want:
                skipped.append(
                    {"index": index, "reason": f"kind {kind!r}, not {want}", "raw": item}
                )
                continue
            try:
                kept.append(self.model.model_validate(item))
            except ValidationError as exc:
                reason = str(_describe(exc, self.model.__name__))
                skipped.append({"index": index, "reason": reason, "raw": item})
        return ListPage(kept, next_href, skipped)


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


CLIENT_PARAMS = ("client_id", "app_version", "app_locale")
"""Query parameters that say who asked, not what: the same page with or without them."""

MAX_BATCH_IDS = 50
"""Ids asked for in one ``/tracks?ids=`` request (the web client asks for 10-15)."""


class BatchParser(Generic[ItemT]):
    """A batch answer (``/tracks?ids=…``): a bare JSON array, parsed item by item.

    An odd item is skipped and kept (as a list page's are), never failing the batch; a
    body that is not an array fails with :class:`PayloadError`.
    """

    def __init__(self, model: type[ItemT], max_items: int = MAX_BATCH_IDS) -> None:
        self._items = ListPageParser(model, max_items)
        self._fast: TypeAdapter[list[ItemT]] = TypeAdapter(list[model])  # type: ignore[valid-type]
        self.max_items = max_items

    def parse_body(self, body: bytes) -> ListPage[ItemT]:
        """The batch's items; raises :class:`PayloadError` for a malformed body."""
        try:
            items = self._fast.validate_json(body)
        except ValidationError as exc:
            if exc.errors()[0]["type"] == "json_invalid":
                raise _describe(exc, "malformed JSON") from exc
            data = json.loads(body)
            if not isinstance(data, list):
                raise PayloadError(f"batch: expected an array, got {_kind(data)}") from None
            return self._items.parse_data({"collection": data, "next_href": None})
        if len(items) > self.max_items:
            raise PayloadError(f"batch: {len(items)} items, over the cap of {self.max_items}")
        return ListPage(items, None, [])
