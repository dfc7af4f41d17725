"""The operator dashboard at ``/``: jobs, the fleet, dead units. Server-rendered HTML.

An admin key is required: the login form puts it in an HttpOnly, SameSite=Strict
cookie, and every page load checks it like a bearer key. The page refreshes itself
every few seconds; there is no front-end framework and no JavaScript.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from aiohttp import web

from coordinator.auth import Principal
from coordinator.http import COORDINATOR
from coordinator.service import Coordinator
from schemas.jobs import JobView

COOKIE = "soundfleet_admin"
REFRESH_S = 5

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#1d232a;background:#fafbfc}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #d8dee4;padding:.3em .5em;text-align:left;font-size:.9em}
th{background:#eef1f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
progress{width:12em}.state-done{color:#1a7f37}.state-failed,.state-dead{color:#cf222e}
.state-cancelled{color:#9a6700;text-decoration:line-through}
.job-failed progress{accent-color:#cf222e}.job-cancelled progress{accent-color:#9a6700}
.job-failed progress::-webkit-progress-value{background:#cf222e}
.job-cancelled progress::-webkit-progress-value{background:#9a6700}
.state-running{color:#0969da}.muted{color:#57606a}.error{color:#cf222e;font-family:monospace}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{background:#fff;border:1px solid #d8dee4;
padding:.6em 1em;border-radius:6px}.card b{display:block;font-size:1.3em}
.card.alert{border-color:#cf222e;background:#ffebe9;color:#82071e}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str, *, refresh: bool) -> web.Response:
    meta = f"<meta http-equiv='refresh' content='{REFRESH_S}'>" if refresh else ""
    text = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title>{meta}<style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
    return web.Response(text=text, content_type="text/html")


def _login_form(message: str = "") -> str:
    note = f"<p class='error'>{_e(message)}</p>" if message else ""
    return (
        "<h1>soundfleet coordinator</h1><p>Sign in with an <b>admin</b> API key.</p>"
        f"{note}<form method='post' action='/login'>"
        "<input type='password' name='key' id='key' size='50' autocomplete='off' required> "
        "<button type='submit'>Sign in</button></form>"
    )


async def _admin(request: web.Request) -> Principal | None:
    key = request.cookies.get(COOKIE, "")
    if not key:
        return None
    principal = await request.app[COORDINATOR].authenticate(key)
    return principal if principal is not None and principal.is_admin else None


def _jobs_table(jobs: list[JobView]) -> str:
    rows = []
    for j in jobs:
        p = j.progress
        # a cancelled unit never ran: the bar shows what ran, the state says the rest
        finished = p.done + p.failed + p.dead
        eta = f"{p.eta_s:.0f} s" if p.eta_s is not None and j.state == "running" else ""
        ended = _e(f"{j.finished_at:%Y-%m-%d %H:%M:%S}") if j.finished_at else ""
        cancelled = f" <span class='muted'>{p.cancelled} cancelled</span>" if p.cancelled else ""
        rows.append(
            f"<tr data-job='{j.id}' class='job-{_e(j.state)}'>"
            f"<td class='num'>{j.id}</td><td>{_e(j.kind)}</td>"
            f"<td class='state-{_e(j.state)}'>{_e(j.state)}</td><td>{_e(j.owner)}</td>"
            f"<td><progress max='{max(p.total, 1)}' value='{finished}'></progress> "
            f"<span class='units'>{finished}/{p.total}</span>{cancelled}</td>"
            f"<td>{_e(f'{j.created_at:%Y-%m-%d %H:%M:%S}')}</td><td>{ended}</td>"
            f"<td class='num'>{p.queued}</td><td class='num'>{p.leased}</td>"
            f"<td class='num rows'>{p.rows_landed:,}</td>"
            f"<td class='num'>{p.units_per_s:.1f}</td><td class='num'>{_e(eta)}</td>"
            f"<td class='num'>{p.retrying}</td><td class='num dead'>{p.dead}</td></tr>"
        )
    head = (
        "<tr><th>id</th><th>kind</th><th>state</th><th>owner</th><th>progress</th>"
        "<th>submitted (UTC)</th><th>finished (UTC)</th>"
        "<th>queued</th><th>leased</th><th>rows</th><th>units/s</th><th>eta</th>"
        "<th>retrying</th><th>dead</th></tr>"
    )
    body = "".join(rows) or "<tr><td colspan='14' class='muted'>no jobs yet</td></tr>"
    return f"<table id='jobs'>{head}{body}</table>"


async def _fleet_html(coord: Coordinator) -> str:
    fleet = await coord.fleet()
    now = datetime.now(UTC)
    paused = (
        f"paused until {fleet.paused_until:%H:%M:%S}"
        if fleet.paused_until is not None and fleet.paused_until > now
        else "not paused"
    )
    client_id = (fleet.client_id[:6] + "…") if fleet.client_id else "none"
    if fleet.blocked and fleet.block_until is not None:
        since = f"{fleet.blocked_since:%H:%M:%S}" if fleet.blocked_since else "?"
        block = (
            f"<div class='card alert' id='blocked'>BLOCKED by bot protection"
            f"<b>since {since} · next try {fleet.block_until:%H:%M:%S}</b>"
            f"{_e(fleet.block_reason or '')} · level {fleet.block_level} · "
            f"{fleet.blocks} blocks so far</div>"
        )
    else:
        block = f"<div class='card' id='blocked'>blocks<b>{fleet.blocks}</b>not blocked</div>"
    cards = (
        f"<div class='cards' id='fleet'>"
        f"<div class='card'>workers<b id='workers-alive'>{len(fleet.workers)}</b></div>"
        f"<div class='card'>budget<b>{fleet.budget_rps:,.1f} / {fleet.max_budget_rps:,.0f} "
        f"req/s</b></div>"
        f"<div class='card'>429s reported<b>{fleet.throttles}</b></div>"
        f"<div class='card'>politeness<b>{_e(paused)}</b></div>"
        f"<div class='card'>client_id<b>{_e(client_id)}</b></div>{block}</div>"
    )
    rows = (
        "".join(
            f"<tr><td>{_e(w.id)}</td><td>{_e(w.hostname)}</td><td class='num'>{_e(w.pid)}</td>"
            f"<td>{_e(', '.join(w.kinds))}</td><td class='num'>{w.leased}</td>"
            f"<td>{w.last_seen_at:%H:%M:%S}</td></tr>"
            for w in fleet.workers
        )
        or "<tr><td colspan='6' class='muted'>no live workers</td></tr>"
    )
    table = (
        "<table id='worker-table'><tr><th>worker</th><th>host</th><th>pid</th>"
        f"<th>kinds</th><th>leased</th><th>last seen</th></tr>{rows}</table>"
    )
    return cards + "<h2>Workers</h2>" + table


async def _dead_html(coord: Coordinator) -> str:
    dead = await coord.dead_units(limit=50)
    rows = (
        "".join(
            f"<tr><td class='num'>{d['id']}</td><td class='num'>{d['job_id']}</td>"
            f"<td>{_e(d['kind'])}</td><td class='num'>{d['attempt']}</td>"
            f"<td class='error'>{_e((d['last_error'] or '')[:300])}</td>"
            f"<td>{d['updated_at']:%Y-%m-%d %H:%M:%S}</td></tr>"
            for d in dead
        )
        or "<tr><td colspan='6' class='muted'>no dead units</td></tr>"
    )
    return (
        "<table id='dead'><tr><th>unit</th><th>job</th><th>kind</th><th>attempts</th>"
        f"<th>last error</th><th>when</th></tr>{rows}</table>"
    )


async def dashboard(request: web.Request) -> web.Response:
    """``GET /``: the dashboard for an admin, else the sign-in form."""
    principal = await _admin(request)
    if principal is None:
        return _page("soundfleet: sign in", _login_form(), refresh=False)
    coord = request.app[COORDINATOR]
    jobs = (await coord.list_jobs(principal, None, None, None, 50)).jobs
    body = (
        f"<h1>soundfleet coordinator</h1><p class='muted'>signed in as {_e(principal.name)} · "
        f"refreshes every {REFRESH_S} s · {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC "
        "<form method='post' action='/logout' style='display:inline'>"
        "<button type='submit'>sign out</button></form></p>"
        f"<h2>Fleet</h2>{await _fleet_html(coord)}"
        f"<h2>Jobs</h2>{_jobs_table(jobs)}"
        f"<h2>Dead units</h2>{await _dead_html(coord)}"
    )
    return _page("soundfleet dashboard", body, refresh=True)


async def login(request: web.Request) -> web.Response:
    """``POST /login``: check the key is an admin's, then keep it in a cookie."""
    form = await request.post()
    key = str(form.get("key", "")).strip()
    principal = await request.app[COORDINATOR].authenticate(key) if key else None
    if principal is None or not principal.is_admin:
        why = "unknown or revoked key" if principal is None else "that key is not an admin key"
        page = _page("soundfleet: sign in", _login_form(why), refresh=False)
        page.set_status(401)
        return page
    response = web.HTTPSeeOther("/")
    response.set_cookie(COOKIE, key, httponly=True, samesite="Strict", path="/")
    raise response


async def logout(request: web.Request) -> web.Response:
    """``POST /logout``: forget the key."""
    response = web.HTTPSeeOther("/")
    response.del_cookie(COOKIE, path="/")
    raise response


def setup(app: web.Application) -> None:
    """Mount the dashboard's routes."""
    app.router.add_get("/", dashboard)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
