"""Built-in device profiles: publish, device by device, what a real DRA driver publishes for a node.

Why: hand-written fake devices look like no real driver's, so DeviceClasses, CEL selectors and schedulers
written for real hardware cannot be tried against them. A profile renders one node's pool content exactly as
the real driver lays it out (names, attributes, capacities, counter sets, taints, slices), per
shared/reference/real-drivers.md; the caller (the renderer) adds object metadata, driver, pool and nodeName.
"""

from __future__ import annotations

from dra_kwok.slices.profiles.amd import AMD_GPU
from dra_kwok.slices.profiles.checks import check_pool
from dra_kwok.slices.profiles.cpu import CPU
from dra_kwok.slices.profiles.example import EXAMPLE_GPU
from dra_kwok.slices.profiles.intel import INTEL_GPU
from dra_kwok.slices.profiles.model import Param, Profile, ProfileOutput
from dra_kwok.slices.profiles.nic import NIC
from dra_kwok.slices.profiles.nvidia import NVIDIA_GPU

__all__ = ["PROFILES", "Param", "Profile", "ProfileOutput", "check_pool", "get_profile"]

#: name -> profile, in the order ``dra-kwok profiles`` lists them
PROFILES: dict[str, Profile] = {p.name: p for p in (NVIDIA_GPU, EXAMPLE_GPU, CPU, NIC, INTEL_GPU, AMD_GPU)}


def get_profile(name: object) -> tuple[Profile | None, list[str]]:
    """The profile called ``name``, or the problem naming the known ones."""
    if isinstance(name, str) and name in PROFILES:
        return PROFILES[name], []
    return None, [f"profile.name: unknown profile {name!r}; known: {', '.join(PROFILES)}"]
