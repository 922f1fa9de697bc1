# dra-kwok container image: `make image IMG=registry.example.com/dra-kwok:v0.1.0` (docker or podman).
# Two stages: the first builds a venv with dra-kwok and its dependencies; the final stage holds only that venv
# (the code is installed in it) on the same slim Python base, and runs as a numeric non-root user, because the
# Deployment's `runAsNonRoot` can only verify a numeric UID. deploy/deployment.yaml relies on the ENTRYPOINT, the
# UID 65532 and a read-only root filesystem (no .pyc writes); tests/integration/test_deploy.py checks they agree.
#
# Reproducible: the base is pinned by digest, and every dependency comes from requirements.lock (exact versions,
# sha256 hashes, `make lock` regenerates it for Python 3.11) with --require-hashes; nothing is resolved at build
# time. The digest below is python:3.11-slim, NOT YET VERIFIED against the registry (it was taken from public
# Dockerfiles that pin it, not looked up here): confirm it, or pin your own, with
#   docker buildx imagetools inspect python:3.11-slim     # the "Digest:" line (the multi-arch index)
# and override it with `--build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest>`. Keep Python 3.11: the lock
# is resolved for it.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The dependencies (and setuptools, the build backend) exactly as locked; a layer that only a new lock rebuilds.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock
# dra-kwok itself, built with the locked setuptools (no build isolation: nothing unhashed is downloaded), then
# `pip check` fails the build if the lock lacks a dependency.
COPY setup.py setup.cfg README.md ./
COPY dra_kwok ./dra_kwok
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
 && pip check \
 && dra-kwok version

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=build /opt/venv /opt/venv
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["dra-kwok"]
CMD ["run"]
