"""docs/operations.md names only metrics the coordinator and workers really export."""

from __future__ import annotations

import re
from pathlib import Path

from coordinator.metrics import Metrics
from crawler.metrics import WorkerMetrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
# Not exported by a process: the HPA's external metric, served by prometheus-adapter.
ADAPTER_METRICS = {"soundfleet_backlog_units"}


def exported() -> set[str]:
    names = set()
    for metrics in (Metrics(), WorkerMetrics()):
        for family in metrics.registry.collect():
            names.add(family.name)  # a histogram's family, as the guide's table names it
            for suffix in SUFFIXES.get(family.type, ("",)):
                names.add(family.name + suffix)
    return names


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_metric_in_the_operations_guide_exists() -> None:
    real = exported()
    text = section("Metrics and alerts") + section("Scaling")
    named = set(re.findall(r"\bsoundfleet_[a-z_]+", text))
    # Role names in the Scaling section are not metrics.
    named -= {"soundfleet_backlog", "soundfleet_reader"}
    wildcard = {n for n in named if n.endswith("_")}  # soundfleet_worker_* families
    named -= wildcard | ADAPTER_METRICS
    assert named, "the guide names no metric"
    assert named <= real, sorted(named - real)
    for prefix in wildcard:
        assert any(name.startswith(prefix) for name in real), prefix
