# dra-kwok container image: `make image IMG=registry.example.com/dra-kwok:v0.1.0` (docker or podman).
# Two stages: the first builds a venv with dra-kwok and its dependencies; the final stage holds only that venv
# (the code is installed in it) on the same slim Python base, and runs as a numeric non-root user, because the
# Deployment's `runAsNonRoot` can only verify a numeric UID. deploy/deployment.yaml relies on the ENTRYPOINT, the
# UID 65532 and a read-only root filesystem (no .pyc writes); tests/integration/test_deploy.py checks they agree.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY setup.py setup.cfg README.md ./
COPY dra_kwok ./dra_kwok
RUN pip install --no-cache-dir . \
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
