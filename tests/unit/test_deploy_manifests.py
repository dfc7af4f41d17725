"""The Kubernetes manifests: both overlays render, validate offline, and keep their promises.

``kubectl kustomize`` renders ``k8s/overlays/dev`` and ``k8s/overlays/prod``; every core
object is checked against the Kubernetes OpenAPI schemas vendored by
``kubernetes-validate`` (strict: unknown fields fail), and the KEDA and CloudNativePG
objects against the structural schemas in ``tests/data/crds``. The remaining tests pin
the operational properties the manifests exist for: non-root read-only pods, probes,
resources, drain time under the termination grace, secrets never committed, narrow
network policies, and command lines the real ``soundfleet`` parser accepts.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from soundfleet.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CRDS = ROOT / "tests" / "data" / "crds"
OVERLAYS = ("dev", "prod")
# The oldest Kubernetes release the manifests promise to work on (CronJob timeZone is GA
# in 1.27; PodDisruptionBudget policy/v1 and autoscaling/v2 are older).
K8S_VERSION = "1.27.0"
WORKLOAD_KINDS = ("Deployment", "Job", "CronJob")
Obj = dict[str, Any]


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not installed: apt-get install kubernetes-client (see .ci/run)")
    return path


def render(overlay: str) -> list[Obj]:
    """The objects ``kubectl kustomize`` renders for ``overlay``."""
    proc = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


def by_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def pod_spec(obj: Obj) -> Obj:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def pod_labels(obj: Obj) -> dict[str, str]:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return obj["spec"]["template"]["metadata"]["labels"]


def workloads(objs: list[Obj]) -> Iterator[Obj]:
    return (o for o in objs if o["kind"] in WORKLOAD_KINDS)


def crd_schemas() -> dict[tuple[str, str], Obj]:
    schemas = {}
    for path in sorted(CRDS.glob("*.json")):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        key = (schema["properties"]["apiVersion"]["const"], schema["properties"]["kind"]["const"])
        schemas[key] = schema
    return schemas


# ----------------------------------------------------------------------------- rendering


def test_both_overlays_render_every_part(rendered: dict[str, list[Obj]]) -> None:
    for overlay, objs in rendered.items():
        kinds = {o["kind"] for o in objs}
        assert {
            "Namespace",
            "ConfigMap",
            "Job",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "CronJob",
            "NetworkPolicy",
            "Cluster",
        } <= kinds, overlay
        namespace = one(objs, "Namespace", f"soundfleet{'-dev' if overlay == 'dev' else ''}")
        ns = namespace["metadata"]["name"]
        for obj in objs:
            if obj["kind"] != "Namespace":
                assert obj["metadata"].get("namespace") == ns, (overlay, obj["metadata"])
        # No Secret is ever rendered: their values are never in the repository.
        assert not by_kind(objs, "Secret")
    assert by_kind(rendered["prod"], "ScaledObject")
    assert by_kind(rendered["prod"], "TriggerAuthentication")
    assert by_kind(rendered["dev"], "HorizontalPodAutoscaler")


def test_core_objects_validate_against_kubernetes_schemas(rendered: dict[str, list[Obj]]) -> None:
    crds = crd_schemas()
    checked = 0
    for overlay, objs in rendered.items():
        for obj in objs:
            if (obj["apiVersion"], obj["kind"]) in crds:
                continue
            try:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{overlay} {obj['kind']}/{obj['metadata']['name']}: {exc.message}")
            checked += 1
    assert checked >= 40


def test_kubernetes_validation_is_not_vacuous(rendered: dict[str, list[Obj]]) -> None:
    # The same validator rejects a misspelt field and a wrong type in our own objects.
    worker = copy.deepcopy(one(rendered["prod"], "Deployment", "soundfleet-worker"))
    pod_spec(worker)["containers"][0]["readOnlyRootFilesytem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, K8S_VERSION, strict=True)
    job = copy.deepcopy(one(rendered["prod"], "Job", "soundfleet-migrate"))
    job["spec"]["backoffLimit"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def test_keda_and_cloudnative_pg_objects_validate_against_their_schemas(
    rendered: dict[str, list[Obj]],
) -> None:
    crds = crd_schemas()
    seen = set()
    for overlay, objs in rendered.items():
        for obj in objs:
            key = (obj["apiVersion"], obj["kind"])
            if key in crds:
                errors = list(jsonschema.Draft202012Validator(crds[key]).iter_errors(obj))
                assert not errors, (overlay, key, [e.message for e in errors])
                seen.add(key)
    assert seen == set(crds)
    # The KEDA HPA behaviour is a real autoscaling/v2 behaviour: check it as one.
    scaled = one(rendered["prod"], "ScaledObject", "soundfleet-worker")
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "keda-behaviour"},
        "spec": {
            "scaleTargetRef": scaled["spec"]["scaleTargetRef"],
            "maxReplicas": scaled["spec"]["maxReplicaCount"],
            "behavior": scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
        },
    }
    kubernetes_validate.validate(hpa, K8S_VERSION, strict=True)


def test_crd_schemas_reject_what_the_operators_would(rendered: dict[str, list[Obj]]) -> None:
    crds = crd_schemas()
    cluster = copy.deepcopy(one(rendered["prod"], "Cluster", "soundfleet-db"))
    # An unquoted YAML `on` is a boolean, which CloudNativePG refuses as a parameter.
    cluster["spec"]["postgresql"]["parameters"]["wal_compression"] = True
    validator = jsonschema.Draft202012Validator(crds[("postgresql.cnpg.io/v1", "Cluster")])
    assert list(validator.iter_errors(cluster))
    scaled = copy.deepcopy(one(rendered["prod"], "ScaledObject", "soundfleet-worker"))
    del scaled["spec"]["triggers"][0]["metadata"]["query"]
    validator = jsonschema.Draft202012Validator(crds[("keda.sh/v1alpha1", "ScaledObject")])
    assert list(validator.iter_errors(scaled))


# ----------------------------------------------------------------------------- pods


def test_every_pod_is_non_root_read_only_and_bounded(rendered: dict[str, list[Obj]]) -> None:
    for overlay, objs in rendered.items():
        for obj in workloads(objs):
            where = f"{overlay} {obj['kind']}/{obj['metadata']['name']}"
            spec = pod_spec(obj)
            assert spec["automountServiceAccountToken"] is False, where
            pod_sc = spec["securityContext"]
            assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0, where
            assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", where
            for container in spec["containers"]:
                sc = container["securityContext"]
                assert sc["readOnlyRootFilesystem"] is True, where
                assert sc["allowPrivilegeEscalation"] is False, where
                assert sc["capabilities"]["drop"] == ["ALL"], where
                assert not sc["capabilities"].get("add"), where
                res = container["resources"]
                assert {"cpu", "memory"} <= set(res["requests"]), where
                assert "memory" in res["limits"], where
                # Read-only root: something writable must back /tmp.
                mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
                assert "/tmp" in mounts, where


def test_long_running_pods_have_probes(rendered: dict[str, list[Obj]]) -> None:
    for overlay, objs in rendered.items():
        for obj in by_kind(objs, "Deployment"):
            for container in pod_spec(obj)["containers"]:
                where = f"{overlay} {obj['metadata']['name']}/{container['name']}"
                assert "readinessProbe" in container, where
                assert "livenessProbe" in container, where
    coordinator = one(rendered["prod"], "Deployment", "soundfleet-coordinator")
    probes = pod_spec(coordinator)["containers"][0]
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Coordinator liveness must not depend on the database (no restart storm in an outage).
    assert "readyz" not in json.dumps(probes.get("startupProbe", {}))
    worker = pod_spec(one(rendered["prod"], "Deployment", "soundfleet-worker"))["containers"][0]
    assert worker["readinessProbe"]["exec"]["command"] == ["soundfleet", "worker", "--check"]
    # The probe gets no flags: the worker must take its coordinator from the environment too.
    assert "--coordinator" not in worker["args"]
    assert "SOUNDFLEET_COORDINATOR_URL" in _container_env(rendered["prod"], worker)
    # Worker liveness asks the process whether its event loop still ticks (/healthz on
    # the metrics port it was given), not whether a thread still answers.
    port = _flag(worker["args"], "--metrics-port")
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    for probe in ("startupProbe", "livenessProbe"):
        assert worker[probe]["httpGet"]["path"] == "/healthz"
        assert ports[worker[probe]["httpGet"]["port"]] == int(port)
    # ... and Prometheus finds the metrics there
    annotations = one(rendered["prod"], "Deployment", "soundfleet-worker")["spec"]["template"][
        "metadata"
    ]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == port


def _flag(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_worker_drain_fits_in_the_termination_grace(rendered: dict[str, list[Obj]]) -> None:
    for overlay, objs in rendered.items():
        worker = one(objs, "Deployment", "soundfleet-worker")
        spec = pod_spec(worker)
        grace = float(_flag(spec["containers"][0]["args"], "--grace"))
        # The drain, then reporting releases and exiting: at least 10 s of headroom.
        assert spec["terminationGracePeriodSeconds"] >= grace + 10, overlay
        assert grace > 0


def test_worker_ids_are_unique_per_process_start() -> None:
    # Pods share no id: the worker builds it from hostname (the pod name), pid and a random
    # suffix, so a restarted container or a pod with a recycled name gets a new one.
    from crawler.worker import new_worker_id

    ids = {new_worker_id() for _ in range(50)}
    assert len(ids) == 50


def test_coordinator_is_replicated_and_protected(rendered: dict[str, list[Obj]]) -> None:
    for overlay, objs in rendered.items():
        deploy = one(objs, "Deployment", "soundfleet-coordinator")
        replicas = deploy["spec"]["replicas"]
        assert replicas >= 2, overlay
        assert deploy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pdb = one(objs, "PodDisruptionBudget", "soundfleet-coordinator")
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels(deploy).items()
        assert 1 <= pdb["spec"]["minAvailable"] < replicas, overlay
        service = one(objs, "Service", "soundfleet-coordinator")
        assert service["spec"]["selector"].items() <= pod_labels(deploy).items()
    assert one(rendered["prod"], "Deployment", "soundfleet-coordinator")["spec"]["replicas"] == 3


# ----------------------------------------------------------------------------- commands


def _expand(arg: str, env: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        assert match.group(1) in env, f"$({match.group(1)}) is not defined for the container"
        return env[match.group(1)]

    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", value, arg)


def _container_env(objs: list[Obj], container: Obj) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config = one(objs, "ConfigMap", source["configMapRef"]["name"])
        env.update(config["data"])
    for var in container.get("env", []):
        env[var["name"]] = var.get("value", "<from " + json.dumps(var.get("valueFrom")) + ">")
    return env


def test_command_lines_parse_with_the_real_cli(rendered: dict[str, list[Obj]]) -> None:
    parser = build_parser()
    seen = set()
    for overlay, objs in rendered.items():
        for obj in workloads(objs):
            for container in pod_spec(obj)["containers"]:
                env = _container_env(objs, container)
                argv = [_expand(a, env) for a in container["args"]]
                commands = [argv]
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    command = container.get(probe, {}).get("exec", {}).get("command")
                    if command and command[0] == "soundfleet":
                        commands.append(command[1:])
                    elif command:
                        # Anything else is a Python one-liner: it must at least compile.
                        assert command[:2] == ["python", "-c"]
                        compile(command[2], probe, "exec")
                for cmd in commands:
                    args = parser.parse_args(cmd)
                    assert callable(args.handler), (overlay, cmd)
                    seen.add(cmd[0] if cmd[0] != "db" else " ".join(cmd[:2]))
    assert {"coordinator", "worker", "db migrate", "score", "simulator"} <= seen
    scores = {pod_spec(c)["containers"][0]["args"][1] for c in by_kind(rendered["prod"], "CronJob")}
    assert scores == {"network", "spam", "virality", "revisit"}


def test_containers_in_pods_bind_all_interfaces_only_where_served(
    rendered: dict[str, list[Obj]],
) -> None:
    # Inside a pod the coordinator must listen beyond loopback, or its Service is dead.
    coordinator = one(rendered["prod"], "Deployment", "soundfleet-coordinator")
    container = pod_spec(coordinator)["containers"][0]
    assert _flag(container["args"], "--host") == "0.0.0.0"
    port = int(_flag(container["args"], "--port"))
    assert container["ports"][0]["containerPort"] == port


# ----------------------------------------------------------------------------- secrets


def secret_templates() -> dict[str, Obj]:
    templates = {}
    for path in sorted((K8S / "base" / "secrets").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        templates[doc["metadata"]["name"]] = doc
    return templates


def test_secret_templates_carry_no_values() -> None:
    templates = secret_templates()
    assert set(templates) == {"soundfleet-database", "soundfleet-worker", "soundfleet-backlog"}
    for name, doc in templates.items():
        assert "data" not in doc, name
        secret_keys = {k: v for k, v in doc["stringData"].items() if k != "username"}
        assert secret_keys and all(v == "" for v in secret_keys.values()), name
    base = (K8S / "base" / "kustomization.yaml").read_text()
    assert "secrets/" not in yaml.safe_load(base).get("resources", [])


def test_every_referenced_secret_key_has_a_source(rendered: dict[str, list[Obj]]) -> None:
    templates = secret_templates()
    for overlay, objs in rendered.items():
        has_cnpg = bool(by_kind(objs, "Cluster"))
        for obj in workloads(objs):
            for container in pod_spec(obj)["containers"]:
                for var in container.get("env", []):
                    ref = var.get("valueFrom", {}).get("secretKeyRef")
                    if ref is None:
                        continue
                    if ref["name"] == "soundfleet-db-app":
                        # Made by CloudNativePG for the Cluster's owner: key `uri` (-rw).
                        assert has_cnpg and ref["key"] == "uri" and var["name"] == "DATABASE_URL"
                    else:
                        assert ref["key"] in templates[ref["name"]]["stringData"], (overlay, ref)
        auth = [o for o in objs if o["kind"] == "TriggerAuthentication"]
        for ta in auth:
            for ref in ta["spec"]["secretTargetRef"]:
                assert ref["key"] in templates[ref["name"]]["stringData"]


def test_database_url_comes_from_cloudnative_pg_in_both_overlays(
    rendered: dict[str, list[Obj]],
) -> None:
    # The JSON patches address env[1]; check each one hit DATABASE_URL and nothing else.
    for overlay, objs in rendered.items():
        for obj in workloads(objs):
            for container in pod_spec(obj)["containers"]:
                refs = {
                    v["name"]: v["valueFrom"]["secretKeyRef"]["name"]
                    for v in container.get("env", [])
                    if "secretKeyRef" in v.get("valueFrom", {})
                }
                if "DATABASE_URL" in refs:
                    assert refs["DATABASE_URL"] == "soundfleet-db-app", (overlay, obj["metadata"])
                assert "soundfleet-database" not in refs.values()
                required = {
                    v["name"]: v.get("value") for v in container.get("env", []) if "value" in v
                }.get("SOUNDFLEET_REQUIRE", "")
                for field in filter(None, required.split(",")):
                    var = (
                        "DATABASE_URL" if field == "database_url" else f"SOUNDFLEET_{field.upper()}"
                    )
                    assert var in refs, (overlay, obj["metadata"]["name"], var)


# ----------------------------------------------------------------------------- scaling


def test_keda_scales_workers_on_the_backlog_through_the_read_only_role(
    rendered: dict[str, list[Obj]],
) -> None:
    objs = rendered["prod"]
    scaled = one(objs, "ScaledObject", "soundfleet-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "soundfleet-worker"
    one(objs, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    meta = trigger["metadata"]
    assert "reporting.backlog" in meta["query"]
    assert "units_leased" in meta["query"] and "units_due" in meta["query"]
    assert float(meta["targetQueryValue"]) > 0
    one(objs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    # The -ro service of the Cluster, in this namespace, and the managed read-only role.
    cluster = one(objs, "Cluster", "soundfleet-db")
    namespace = cluster["metadata"]["namespace"]
    assert meta["host"] == f"soundfleet-db-ro.{namespace}.svc.cluster.local"
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    role = roles[meta["userName"]]
    # One Secret holds the role's password for both CloudNativePG and KEDA.
    secret = secret_templates()[role["passwordSecret"]["name"]]
    assert secret["type"] == "kubernetes.io/basic-auth"
    assert secret["stringData"]["username"] == meta["userName"]
    auth = one(objs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": secret["metadata"]["name"], "key": "password"}
    ]
    assert role["inRoles"] == ["soundfleet_reader"]
    assert not any(role.get(k) for k in ("superuser", "createdb", "createrole", "replication"))
    sql = " ".join(cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"])
    assert f"ALTER ROLE {meta['userName']} SET statement_timeout" in sql
    assert f"ALTER ROLE {meta['userName']} SET default_transaction_read_only = on" in sql


def test_the_autoscaler_alone_owns_the_worker_count(rendered: dict[str, list[Obj]]) -> None:
    for overlay, objs in rendered.items():
        assert "replicas" not in one(objs, "Deployment", "soundfleet-worker")["spec"], overlay
        scalers = [
            o
            for o in objs
            if o["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")
            and o["spec"]["scaleTargetRef"]["name"] == "soundfleet-worker"
        ]
        assert len(scalers) == 1, overlay


def test_hpa_alternative_targets_the_workers(rendered: dict[str, list[Obj]]) -> None:
    hpa = one(rendered["dev"], "HorizontalPodAutoscaler", "soundfleet-worker")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "soundfleet-worker"
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["External"]["external"]["metric"]["name"] == "soundfleet_backlog_units"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


# ----------------------------------------------------------------------------- network


def _selects(policy: Obj, labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"].get("matchLabels", {})
    return selector.items() <= labels.items()


def test_workers_reach_only_coordinator_database_dns_and_platform(
    rendered: dict[str, list[Obj]],
) -> None:
    for overlay, objs in rendered.items():
        policies = by_kind(objs, "NetworkPolicy")
        deny = one(objs, "NetworkPolicy", "soundfleet-default-deny")
        assert deny["spec"]["podSelector"] == {}
        assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        worker_labels = pod_labels(one(objs, "Deployment", "soundfleet-worker"))
        allowed: set[tuple[str, int]] = set()
        for policy in policies:
            if not _selects(policy, worker_labels):
                continue
            for rule in policy["spec"].get("egress", []):
                assert rule.get("to"), f"{policy['metadata']['name']}: egress to anywhere"
                for peer in rule["to"]:
                    if "ipBlock" in peer:
                        target = "public"
                        # Never the cluster's private ranges nor the metadata endpoint.
                        assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
                        assert {"10.0.0.0/8", "169.254.0.0/16"} <= set(peer["ipBlock"]["except"])
                    elif "namespaceSelector" in peer:
                        target = "dns"
                        assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
                    else:
                        labels = peer["podSelector"]["matchLabels"]
                        target = labels.get("app.kubernetes.io/component") or "database"
                        if target == "database":
                            assert labels == {"soundfleet.io/database": "true"}
                    for port in rule["ports"]:
                        allowed.add((target, port["port"]))
        expected = {("coordinator", 8700), ("database", 5432), ("dns", 53), ("public", 443)}
        if overlay == "dev":
            expected.add(("simulator", 8701))
        assert allowed == expected, overlay
        # The database pods carry the label the clients' policy admits.
        cluster = one(objs, "Cluster", "soundfleet-db")
        assert cluster["spec"]["inheritedMetadata"]["labels"]["soundfleet.io/database"] == "true"


def test_the_database_is_backed_up_and_its_image_pinned(rendered: dict[str, list[Obj]]) -> None:
    for overlay, objs in rendered.items():
        cluster = one(objs, "Cluster", "soundfleet-db")
        # a minor release (15.x), never a floating major tag
        assert re.fullmatch(r".+:\d+\.\d+(-\w+)?", cluster["spec"]["imageName"]), overlay
        backup = cluster["spec"]["backup"]
        assert backup["retentionPolicy"] and backup["barmanObjectStore"]["destinationPath"]
        assert backup["barmanObjectStore"]["wal"]["compression"]
        scheduled = one(objs, "ScheduledBackup", "soundfleet-db-daily")
        assert scheduled["spec"]["cluster"]["name"] == "soundfleet-db"
        assert scheduled["spec"]["method"] == "barmanObjectStore"
