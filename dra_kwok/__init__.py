"""dra-kwok: publishes fake DRA devices (resource.k8s.io/v1 ResourceSlices) for KWOK nodes."""

__version__ = "0.1.0"
