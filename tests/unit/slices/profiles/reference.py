"""Expected slices written FROM THE REFERENCE (shared/reference/real-drivers.md), never from dra_kwok's output.

Why a generator: §1.8 shows one H100 GPU's devices and says "gpu-1 … gpu-7, same shape"; §1.5 gives the MIG
profile tables. Writing 208 devices by hand would only add typos, so this module expands the reference's tables
(copied here from the reference text, not imported from the product) into the golden files. It imports nothing
from ``dra_kwok``. ``python -m tests.unit.slices.profiles.reference`` rewrites the generated golden files; a
test checks that the committed files equal this expansion, so neither can drift alone.

Golden conventions: a string ``<re:REGEX>`` stands for a value the reference marks *(illustrative)*: the test
matches it with ``re.fullmatch`` against the rendered value; other tests check those values' uniqueness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

GOLDEN = Path(__file__).parent / "golden"
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
BUS = r"<re:0000:[0-9a-f]{2}:00\.0>"
ROOT = "<re:pci0000:[0-9a-f]{2}>"

# §1.5, H100 80GB HBM3: profile, GI id, placement starts, size, SMs, CE, DEC, ENC, JPEG, OFA, memory
H100 = [
    ("1g.10gb", 19, [0, 1, 2, 3, 4, 5, 6], 1, 16, 1, 1, 0, 1, 0, "9984Mi"),
    ("1g.10gb+me", 20, [0, 1, 2, 3, 4, 5, 6], 1, 16, 1, 1, 0, 1, 1, "9984Mi"),
    ("1g.20gb", 15, [0, 2, 4, 6], 2, 26, 1, 1, 0, 1, 0, "20096Mi"),
    ("2g.20gb", 14, [0, 2, 4], 2, 32, 2, 2, 0, 2, 0, "20096Mi"),
    ("3g.40gb", 9, [0, 4], 4, 60, 3, 3, 0, 3, 0, "40448Mi"),
    ("4g.40gb", 5, [0], 4, 64, 4, 4, 0, 4, 0, "40448Mi"),
    ("7g.80gb", 0, [0], 8, 132, 8, 7, 0, 7, 1, "81152Mi"),
]
# §1.5, A100-SXM4-40GB
A100 = [
    ("1g.5gb", 19, [0, 1, 2, 3, 4, 5, 6], 1, 14, 1, 0, 0, 0, 0, "4864Mi"),
    ("1g.5gb+me", 20, [0, 1, 2, 3, 4, 5, 6], 1, 14, 1, 1, 0, 1, 1, "4864Mi"),
    ("1g.10gb", 15, [0, 2, 4, 6], 2, 14, 1, 1, 0, 0, 0, "9856Mi"),
    ("2g.10gb", 14, [0, 2, 4], 2, 28, 2, 1, 0, 0, 0, "9856Mi"),
    ("3g.20gb", 9, [0, 4], 4, 42, 3, 2, 0, 0, 0, "19968Mi"),
    ("4g.20gb", 5, [0], 4, 56, 4, 2, 0, 0, 0, "19968Mi"),
    ("7g.40gb", 0, [0], 8, 98, 7, 5, 0, 1, 1, "40192Mi"),
]
# §1.5 counter set = max over the profiles (H100 row "→ counter set"; A100: the column maxima)
H100_SET = (132, 8, 7, 0, 7, 1, "81152Mi")
A100_SET = (98, 7, 5, 0, 1, 1, "40192Mi")
CAPS = ("multiprocessors", "copyEngines", "decoders", "encoders", "jpegEngines", "ofaEngines", "memory")
COUNTERS = ("multiprocessors", "copy-engines", "decoders", "encoders", "jpeg-engines", "ofa-engines", "memory")
PRODUCT = {"H100": ("NVIDIA H100 80GB HBM3", "Hopper", "9.0.0"), "A100": ("NVIDIA A100-SXM4-40GB", "Ampere", "8.0.0")}


def q(v: Any) -> dict[str, str]:
    return {"value": str(v)}


def gpu_attributes(model: str, minor: int) -> dict[str, Any]:
    """§1.8's gpu-0 attributes; bus ids, roots and UUIDs are illustrative; NUMA 0 for gpu-0 as shown."""
    product, arch, cc = PRODUCT[model]
    first = minor == 0 and model == "H100"
    return {
        "addressingMode": {"string": "HMM"},
        "architecture": {"string": arch},
        "brand": {"string": "Nvidia"},
        "cudaComputeCapability": {"version": cc},
        "cudaDriverVersion": {"version": "13.0.0"},
        "driverVersion": {"version": "580.126.20"},
        "productName": {"string": product},
        "resource.kubernetes.io/numaNode": {"int": 0} if first else {"int": "<re:[01]>"},
        "resource.kubernetes.io/pciBusID": {"string": "0000:1b:00.0" if first else BUS},
        "resource.kubernetes.io/pcieRoot": {"string": "pci0000:1a" if first else ROOT},
        "type": {"string": "gpu"},
        "uuid": {"string": f"<re:GPU-{UUID}>"},
    }


def canonical(profile: str) -> str:
    """§1.2: `1g.10gb` -> `1g10gb`, `1g.10gb+me` -> `1g10gb-me`."""
    return profile.replace(".", "").replace("+", "-")


def dynamic_mig_gpu(model: str, minor: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(counter set, devices sorted by name) of one GPU in DynamicMIG (§1.5, §1.8)."""
    table, totals = (H100, H100_SET) if model == "H100" else (A100, A100_SET)
    set_name = f"gpu-{minor}-counter-set"
    counters = {c: q(v) for c, v in zip(COUNTERS, totals, strict=True)}
    counters.update({f"memory-slice-{i}": q(1) for i in range(8)})
    devices = []
    attributes = gpu_attributes(model, minor)
    if model == "H100":  # Ampere does not publish the full GPU in DynamicMIG (§1.5)
        devices.append({"name": f"gpu-{minor}", "attributes": attributes,
                        "capacity": {c: q(v) for c, v in zip(CAPS, totals, strict=True)},
                        "consumesCounters": [{"counterSet": set_name, "counters": counters}]})
    mig_attributes = {k: v for k, v in attributes.items() if k not in ("uuid", "type")}
    mig_attributes.update(parentUUID={"string": f"<re:GPU-{UUID}>"}, type={"string": "mig"})
    for profile, gi, starts, size, *values in table:
        for start in starts:
            used = {c: q(v) for c, v in zip(COUNTERS, values, strict=True)}
            used.update({f"memory-slice-{i}": q(1) for i in range(start, start + size)})
            devices.append({"name": f"gpu-{minor}-mig-{canonical(profile)}-{gi}-{start}",
                            "attributes": dict(mig_attributes, profile={"string": profile}),
                            "capacity": {c: q(v) for c, v in zip(CAPS, values, strict=True)},
                            "consumesCounters": [{"counterSet": set_name, "counters": used}]})
    devices.sort(key=lambda d: d["name"])  # §1.6: devices sorted by name
    return {"name": set_name, "counters": counters}, devices


def dynamic_mig(model: str, k8s_minor: int) -> list[dict[str, Any]]:
    """§1.6: split (counters slice + one slice per GPU) on 1.35+, combined per GPU before."""
    gpus = [dynamic_mig_gpu(model, minor) for minor in range(8)]
    if k8s_minor >= 35:
        return [{"sharedCounters": [s for s, _ in gpus]}] + [{"devices": d} for _, d in gpus]
    return [{"sharedCounters": [s], "devices": d} for s, d in gpus]


def full(model: str) -> list[dict[str, Any]]:
    """§1.8 last paragraph: one slice, 8 GPUs, the 12 attributes and only memory (81559Mi; A100: 40Gi)."""
    memory = "81559Mi" if model == "H100" else "40Gi"
    return [{"devices": [{"name": f"gpu-{m}", "attributes": gpu_attributes(model, m), "capacity": {"memory": q(memory)}}
                         for m in range(8)]}]


def cpu_individual() -> list[dict[str, Any]]:
    """§3: 2 sockets x 32 cores, SMT (NUMA0 = 0-31,64-95), reservedCPUs 0,64: 126 devices, cpudev000 = cpu 1,
    cpudev001 = cpu 65, cpudev002 = cpu 2 … cpudev125 = cpu 127; attributes as cpudev000.  coreID and cacheL3ID
    beyond cpudev000 are not in the reference: matched by pattern."""
    order = [c for core in range(1, 64) for c in (core, core + 64)]
    devices = []
    for i, cpu in enumerate(order):
        numa = {"int": 0 if cpu % 64 < 32 else 1}
        devices.append({"name": f"cpudev{i:03d}", "attributes": {
            "dra.cpu/cacheL3ID": {"int": 0 if i == 0 else "<re:[0-9]+>"},
            "dra.cpu/coreID": {"int": 1 if i == 0 else "<re:[0-9]+>"},
            "dra.cpu/coreType": {"string": "standard"}, "dra.cpu/cpuID": {"int": cpu}, "dra.cpu/numaNodeID": numa,
            "dra.cpu/smtEnabled": {"bool": True}, "dra.cpu/socketID": numa, "dra.net/numaNode": numa,
            "resource.kubernetes.io/numaNode": numa}})
    return [{"devices": devices}]


GENERATED = {
    "nvidia-gpu-dynamic-mig-h100-k135": ({"model": "H100-80GB", "mode": "dynamic-mig"}, "h100-node-1", 35,
                                         lambda: dynamic_mig("H100", 35), "§1.5, §1.6, §1.8 (9 slices, 208 devices)"),
    "nvidia-gpu-dynamic-mig-a100-k135": ({"model": "A100-SXM4-40GB", "mode": "dynamic-mig"}, "a100-node-1", 35,
                                         lambda: dynamic_mig("A100", 35), "§1.5 A100 table, no full GPU on Ampere"),
    "nvidia-gpu-full-h100": ({"model": "H100-80GB"}, "h100-node-1", 35, lambda: full("H100"), "§1.8 without DynamicMIG"),
    "nvidia-gpu-full-a100": ({"model": "A100-SXM4-40GB"}, "a100-node-1", 35, lambda: full("A100"),
                             "§1.8 captured shape, 8xA100-40GB, memory 40Gi"),
    "cpu-individual": ({"mode": "individual", "reservedCPUs": "0,64"}, "cpu-node-1", 35, cpu_individual,
                       "§3 individual mode comment"),
}


def golden_text(name: str) -> str:
    params, node, minor, make, source = GENERATED[name]
    header = (f"# GENERATED by tests/unit/slices/profiles/reference.py from real-drivers.md {source}.\n"
              "# Do not edit: change reference.py and run `python -m tests.unit.slices.profiles.reference`.\n")
    body = {"profile": name.split("-")[0] if name.startswith("cpu") else "-".join(name.split("-")[:2]),
            "params": params, "node": node, "k8sMinor": minor, "slices": make()}
    return header + yaml.dump(body, Dumper=_NoAliases, sort_keys=False, default_flow_style=None, width=120)


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


if __name__ == "__main__":
    for golden in GENERATED:
        (GOLDEN / f"{golden}.yaml").write_text(golden_text(golden))
        print("wrote", golden)
