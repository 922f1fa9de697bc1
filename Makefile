# dra-kwok — every developer and CI entry point. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
K8S_VERSION ?= $(shell cat hack/controlplane/K8S_VERSION)
export K8S_VERSION
PYTEST_ARGS ?=

.PHONY: help deps install binaries test test-unit test-integration test-e2e lint cluster-up cluster-down \
        demo demo-down bench deploy undeploy

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

install: ## install dra-kwok and its test dependencies (editable)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@if command -v pyenv >/dev/null; then pyenv rehash; fi

deps: # install the package unless it (and its test extras) already are: `make demo` / `make test` on a fresh clone
	@$(PYTHON) -c "import importlib.metadata as m, hypothesis, pytest_mock; m.version('dra-kwok')" 2>/dev/null || $(MAKE) install

binaries: ## build (or find cached) kube-apiserver, kube-scheduler, kube-controller-manager, kubectl
	@if [ -n "$$KUBEBUILDER_ASSETS" ]; then echo "controlplane: using KUBEBUILDER_ASSETS=$$KUBEBUILDER_ASSETS"; \
	 else hack/controlplane/build.sh; fi

test: deps binaries ## the whole suite: unit, integration (real apiserver), e2e (real scheduler); then a leak check
	$(PYTHON) -m pytest $(PYTEST_ARGS)
	$(PYTHON) -m dra_kwok.testing.controlplane leaks

test-unit: ## pure logic only, no cluster
	$(PYTHON) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: binaries ## against the real kube-apiserver
	$(PYTHON) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: binaries ## with the real kube-scheduler and kube-controller-manager
	$(PYTHON) -m pytest tests/e2e $(PYTEST_ARGS)

lint: ## static checks of the Dockerfile
	hadolint Dockerfile

cluster-up: deps binaries ## start a local control plane and print `export KUBECONFIG=...`
	@$(PYTHON) -m dra_kwok.testing.controlplane up

cluster-down: ## stop what cluster-up started
	@$(PYTHON) -m dra_kwok.testing.controlplane down

# ---------------------------------------------------------------------------------------------------- deploy
# The image and the kustomize base in deploy/ (README "Deploy"). IMG is any image reference, with or without a tag.
IMG ?= dra-kwok:latest
CONTAINER_TOOL ?= docker
KUBECTL ?= kubectl
DEPLOY_ARGS ?=

.PHONY: image

image: ## build the container image IMG (default dra-kwok:latest) with CONTAINER_TOOL (docker or podman)
	$(CONTAINER_TOOL) build -t $(IMG) .

deploy: ## kubectl apply -k deploy/ into the current context, with the image IMG (via a temporary overlay)
	@set -e; overlay=$$(mktemp -d .deploy-overlay.XXXXXX); trap 'rm -rf "$$overlay"' EXIT; \
	 img='$(IMG)'; case "$${img##*/}" in *:*) name="$${img%:*}"; tag="$${img##*:}";; *) name="$$img"; tag=latest;; esac; \
	 printf '%s\n' 'apiVersion: kustomize.config.k8s.io/v1beta1' 'kind: Kustomization' 'resources:' '  - ../deploy' \
	   'images:' '  - name: dra-kwok' "    newName: $$name" "    newTag: \"$$tag\"" > "$$overlay/kustomization.yaml"; \
	 $(KUBECTL) apply -k "$$overlay" $(DEPLOY_ARGS)

undeploy: ## remove what deploy installed (the namespace stays: Karpenter may live there) and dra-kwok's slices
	$(KUBECTL) delete deployment/dra-kwok -n karpenter --cascade=foreground --ignore-not-found --timeout=120s
	$(KUBECTL) delete -k deploy -l app.kubernetes.io/name=dra-kwok --ignore-not-found
	$(KUBECTL) delete resourceslices -l app.kubernetes.io/managed-by=dra-kwok --ignore-not-found

# ---------------------------------------------------------------------------------------------------- bench
# bench/README.md. A private control plane each run; results (JSON + markdown) in bench/results/.
BENCH_ARGS ?=

bench: binaries ## benchmark dra-kwok vs a raw-client baseline (BENCH_ARGS="--nodes 5000 --profile")
	$(PYTHON) bench/bench.py $(BENCH_ARGS)

# ---------------------------------------------------------------------------------------------------- demo
demo: deps binaries ## the main job on an embedded local cluster: KWOK nodes, fake GPUs, a scheduled DRA pod
	@$(PYTHON) -m dra_kwok.testing.demo up

demo-down: ## stop the demo's driver and control plane
	@$(PYTHON) -m dra_kwok.testing.demo down

# ---------------------------------------------------------------------------------------------------- bench-validate
# bench/validate_bench.py: CPU and wall seconds per phase of one verdict on generated inputs (no cluster needed).
VALIDATE_BENCH_ARGS ?= --repeat 3

.PHONY: bench-validate
bench-validate: ## time a config verdict per phase: 1 MiB/2,300-mapping ConfigMap, 10 MiB file, alias amplification
	$(PYTHON) bench/validate_bench.py $(VALIDATE_BENCH_ARGS)
