"""A client_id provider for tests that talk to a server which does not rotate ids."""

from __future__ import annotations


class StaticClientIds:
    """Always the id it holds (a test may set ``known`` to stand for a rotation)."""

    def __init__(self, known: str = "fixedid12345678") -> None:
        self.known = known

    async def current(self) -> str:
        return self.known

    async def rejected(self, value: str) -> None:
        raise AssertionError(f"{value} refused")

    def advise(self, value: str | None) -> None:
        return None
