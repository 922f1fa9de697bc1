"""dra-kwok's own metrics (``dra_kwok_*``), beside the runtime's controller-runtime and client-go families."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from dra_kwok.runtime.metrics import Metrics


class DriverMetrics(Metrics):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.slices_managed = Gauge(
            "dra_kwok_resourceslices", "ResourceSlices owned by this driver, as seen in its cache", registry=r
        )
        self.kwok_nodes = Gauge(
            "dra_kwok_kwok_nodes", "KWOK nodes seen (all) and matched by at least one mapping (matched)",
            ["state"], registry=r,
        )
        self.config_valid = Gauge(
            "dra_kwok_config_valid", "1 when the last configuration seen was valid, 0 when it was rejected or none was seen yet", registry=r
        )
        self.config_last_reload = Gauge(
            "dra_kwok_config_last_reload_success_timestamp_seconds",
            "Unix time of the last configuration accepted", registry=r,
        )
        self.writes = Counter(
            "dra_kwok_resourceslice_writes_total", "ResourceSlice writes by verb and result",
            ["verb", "result"], registry=r,
        )
        self.pool_conflicts = Gauge(
            "dra_kwok_pool_conflicts", "Pools this instance renders but refuses to publish, because another dra-kwok "
            "instance (holder) published them first", ["driver", "holder"], registry=r,
        )
        self.dropped_fields = Counter(
            "dra_kwok_dropped_fields_total", "ResourceSlice writes whose answer lacked a field that was sent: the "
            "apiserver dropped it (its feature gate is off), by field path (devices[].taints)", ["field"], registry=r,
        )
