"""What the benchmark reads from outside the code under test: /proc, Prometheus text, the machine and versions.

Why from outside: the driver runs as a real `dra-kwok run` subprocess, so its CPU and memory come from
/proc/<pid> (all threads included), and its API traffic from two independent counters: its own
`rest_client_requests_total` and the apiserver's `apiserver_request_total` (which also counts what the driver
might not know it sent).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------- /proc
def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (every thread), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5), counted after the comm


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def self_cpu_seconds() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class CpuMeter:
    """CPU seconds of several processes between two marks: `m = CpuMeter(pids); ...; m.delta()`."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {k: v for k, v in pids.items() if v}
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            try:
                out[name] = cpu_seconds(pid)
            except OSError:
                out[name] = float("nan")
        out["bench"] = self_cpu_seconds()
        return out

    def delta(self) -> dict[str, float]:
        now = self._read()
        return {k: round(now[k] - self.start.get(k, 0.0), 3) for k in now}


# ---------------------------------------------------------------------------------------------- metrics
_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        out.append((m.group(1), dict(_LABEL.findall(m.group(2) or "")), value))
    return out


def metric_sum(samples, name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == w for k, w in labels.items()))


def by_labels(samples, name: str, *keys: str) -> dict[str, float]:
    """Samples of `name` summed by the given label keys, keyed "v1 v2"."""
    out: dict[str, float] = defaultdict(float)
    for n, lab, v in samples:
        if n == name:
            out[" ".join(lab.get(k, "") for k in keys)] += v
    return dict(out)


def counter_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    keys = set(before) | set(after)
    out = {k: int(round(after.get(k, 0) - before.get(k, 0))) for k in keys}
    return {k: v for k, v in sorted(out.items()) if v}


def http_get(url: str, token: str | None = None, timeout: float = 10) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    ctx = None
    if url.startswith("https:"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:
        return 0, str(err)


def apiserver_requests(url: str, token: str) -> dict[str, float]:
    """apiserver_request_total by "VERB resource[/subresource]", resource requests only (not /metrics etc.)."""
    code, text = http_get(f"{url}/metrics", token, timeout=30)
    if code != 200:
        raise RuntimeError(f"apiserver /metrics: {code} {text[:200]}")
    out: dict[str, float] = defaultdict(float)
    for name, lab, value in parse_prometheus(text):
        if name != "apiserver_request_total" or not lab.get("resource"):
            continue
        res = lab["resource"] + (f"/{lab['subresource']}" if lab.get("subresource") else "")
        out[f"{lab.get('verb', '')} {res}"] += value
    return dict(out)


def apiserver_latency(url: str, token: str) -> dict[str, list[float]]:
    """apiserver_request_duration_seconds by "VERB resource": [sum, count] (the apiserver's own view of a request,
    from receiving it to writing the response; it does not include the client's side)."""
    code, text = http_get(f"{url}/metrics", token, timeout=30)
    if code != 200:
        raise RuntimeError(f"apiserver /metrics: {code} {text[:200]}")
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for name, lab, value in parse_prometheus(text):
        if name in ("apiserver_request_duration_seconds_sum", "apiserver_request_duration_seconds_count") \
                and lab.get("resource"):
            out[f"{lab.get('verb', '')} {lab['resource']}"][0 if name.endswith("_sum") else 1] += value
    return dict(out)


def latency_delta(before: dict, after: dict, key: str) -> dict:
    """Mean apiserver-side latency of `key` ("VERB resource") between two scrapes."""
    s = after.get(key, [0, 0])[0] - before.get(key, [0, 0])[0]
    n = after.get(key, [0, 0])[1] - before.get(key, [0, 0])[1]
    return {"requests": int(n), "mean_ms": round(s / n * 1000, 2) if n else None}


WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "CREATE", "UPDATE", "APPLY")


def summarize_verbs(delta: dict[str, int]) -> dict[str, int]:
    """{"writes": n, "lists": n, "gets": n, "watches": n} from a "VERB resource" -> count map."""
    out = {"writes": 0, "lists": 0, "gets": 0, "watches": 0}
    for key, n in delta.items():
        verb = key.split(" ", 1)[0].upper()
        if verb in WRITE_VERBS:
            out["writes"] += n
        elif verb == "LIST":
            out["lists"] += n
        elif verb == "GET":
            out["gets"] += n
        elif verb == "WATCH":
            out["watches"] += n
    return out


# ---------------------------------------------------------------------------------------------- stamps
def machine() -> dict:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_bytes": mem,
        "memory_gib": round(mem / 2**30, 1),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
    }


def versions(repo: str, apiserver_version: str | None, etcd_binary: str | None) -> dict:
    import kubernetes

    import dra_kwok

    out = {
        "dra_kwok": dra_kwok.__version__,
        "kubernetes_client": kubernetes.__version__,
        "kube_apiserver": apiserver_version,
        "python": sys.version.split()[0],
    }
    try:
        import orjson  # noqa: F401

        out["orjson"] = orjson.__version__
    except ImportError:
        pass
    if etcd_binary:
        try:
            text = subprocess.run([etcd_binary, "--version"], capture_output=True, text=True, timeout=10).stdout
            out["etcd"] = text.split("\n")[0].split(":")[-1].strip()
        except Exception:
            pass
    try:
        sha = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", "dra_kwok"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        out["git"] = sha + ("+dirty(dra_kwok)" if dirty else "")
    except Exception:
        pass
    out["dra_kwok_sources_sha256"] = sources_digest(repo)
    return out


def sources_digest(repo: str) -> str:
    """What exactly ran, when the tree is dirty (or others edit it during a run): a digest of dra_kwok/**/*.py."""
    digest = hashlib.sha256()
    for path in sorted(Path(repo, "dra_kwok").rglob("*.py")):
        digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
