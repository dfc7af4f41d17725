"""The script a researcher writes instead of a crawler (the peer in ``benchmarks/vs_peers.py``).

``python -m benchmarks.peers.oneoff WEB_BASE DSN IDS CONCURRENCY [FIRST]``: client_id from
the homepage, ``GET /users/{id}`` for ids FIRST..IDS (FIRST 1 unless given: two processes
split a range), ``json.loads``, asyncpg COPY in batches of
2,000 into the same ``users`` / ``user_ids_gone`` columns soundfleet lands. No leases,
retries, checkpoints, validation or metrics. Prints its seconds as one JSON line.
"""

import asyncio
import json
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import uvloop

COLS = ("id", "permalink", "username", "full_name", "description", "city", "country_code",
        "created_at", "last_modified", "followers_count", "followings_count", "track_count",
        "playlist_count", "likes_count", "playlist_likes_count", "reposts_count",
        "comments_count", "groups_count", "verified", "plan", "avatar_url", "permalink_url",
        "fetched_at")  # fmt: skip


async def main(web: str, dsn: str, n: int, conc: int, first: int) -> None:
    db = await asyncpg.connect(dsn)
    lock, ids = asyncio.Lock(), iter(range(first, n + 1))
    users: list[tuple[Any, ...]] = []
    gone: list[tuple[int, datetime]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as http:
        home = await (await http.get(web + "/")).text()
        found = re.search(r'"apiClient", "data": \{"id": "([^"]+)"', home)
        assert found, "no client_id on the homepage"
        cid = found.group(1)

        async def flush() -> None:
            async with lock:
                u, g = users[:], gone[:]
                users.clear()
                gone.clear()
                await db.copy_records_to_table("users", records=u, columns=COLS)
                await db.copy_records_to_table("user_ids_gone", records=g)

        async def loop() -> None:
            for i in ids:
                async with http.get(f"{web}/api/users/{i}?client_id={cid}") as r:
                    body, status = await r.read(), r.status
                now = datetime.now(UTC)
                if status == 404:
                    gone.append((i, now))
                else:
                    d = json.loads(body)
                    plan = (d.get("creator_subscription") or {}).get("product") or {}
                    d["plan"], d["fetched_at"] = plan.get("id", "free"), now
                    for k in ("created_at", "last_modified"):
                        d[k] = datetime.fromisoformat(d[k]) if d.get(k) else None
                    users.append(tuple(d.get(c) for c in COLS))
                if len(users) + len(gone) >= 2000:
                    await flush()

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(conc)))
        await flush()
    print(json.dumps({"seconds": time.perf_counter() - started}))
    await db.close()


if __name__ == "__main__":
    first = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    uvloop.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), first))
