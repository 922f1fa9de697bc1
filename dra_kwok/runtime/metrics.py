"""The Prometheus metrics of the runtime, in one registry, with controller-runtime's and client-go's names.

Why one class: the metric names are an interface (dashboards, the benchmark, the tests read them), so they are
declared once and passed to the parts that update them, instead of each module inventing globals. A program adds
its own families by subclassing (dra-kwok's are in :mod:`dra_kwok.controllers.metrics`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dra_kwok.runtime.workqueue import QueueMetrics


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # controller-runtime
        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total", "Total number of reconciliations per controller",
            ["controller", "result"], registry=r,
        )
        self.reconcile_errors = Counter(
            "controller_runtime_reconcile_errors_total", "Total number of reconciliation errors per controller",
            ["controller"], registry=r,
        )
        self.terminal_reconcile_errors = Counter(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller", ["controller"], registry=r,
        )
        self.reconcile_time = Histogram(
            "controller_runtime_reconcile_time_seconds", "Length of time per reconciliation per controller",
            ["controller"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
                     1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60),
        )
        self.active_workers = Gauge(
            "controller_runtime_active_workers", "Number of currently used workers per controller",
            ["controller"], registry=r,
        )
        self.max_concurrent = Gauge(
            "controller_runtime_max_concurrent_reconciles", "Maximum number of concurrent reconciles per controller",
            ["controller"], registry=r,
        )
        self.leader = Gauge(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master.",
            ["name"], registry=r,
        )
        # client-go
        self.requests = Counter(
            "rest_client_requests_total", "Number of HTTP requests, partitioned by status code, method, and resource.",
            ["code", "method", "resource"], registry=r,
        )
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self.queue = QueueMetrics(r)

    def observe_request(self, method: str, resource: str, code: int) -> None:
        key = (method, resource, code)
        child = self._request_children.get(key)
        if child is None:  # labels() once per combination: it is on the path of every request
            child = self._request_children[key] = self.requests.labels(
                code=str(code) if code else "<error>", method=method.upper(), resource=resource)
        child.inc()
