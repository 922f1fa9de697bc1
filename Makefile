# dra-kwok — every developer and CI entry point. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
K8S_VERSION ?= $(shell cat hack/controlplane/K8S_VERSION)
# Older Kubernetes versions `make test` also runs the integration and e2e tests on (issue #15); empty: none.
COMPAT_VERSIONS ?= $(shell cat hack/controlplane/COMPAT_VERSIONS)
PYTEST_ARGS ?=

# Variables you pass (IMG, CONTAINER_TOOL, KUBECTL, PYTHON, K8S_VERSION, COMPAT_VERSIONS, DEPLOY_ARGS, PYTEST_ARGS, BENCH_ARGS, LOCK_ARGS) reach
# the recipes only through the environment, never pasted into a recipe's text, so no value is ever evaluated by the
# shell (issue #19): not `;`, quotes, `$(...)`, backquotes or globs. make takes a value given on the command line or
# in the environment literally too (no `$(shell ...)` expansion). The command and argument variables are word lists,
# split on whitespace by `read -ra` ($(ARGV) below): `KUBECTL="kubectl --context kind"`,
# `PYTEST_ARGS="-k leader -x"`; an argument therefore cannot contain a space. IMG must be an image reference.
USER_VARS := IMG CONTAINER_TOOL KUBECTL PYTHON K8S_VERSION COMPAT_VERSIONS DEPLOY_ARGS PYTEST_ARGS BENCH_ARGS LOCK_ARGS
$(foreach v,$(USER_VARS),$(if $(filter command% environment%,$(origin $(v))),$(eval override $(v) := $$(value $(v)))))
export $(USER_VARS)
# Bash arrays python, kubectl, container_tool, pytest_args, deploy_args, bench_args: the words of those variables.
ARGV = read -ra python <<<"$$PYTHON"; read -ra kubectl <<<"$$KUBECTL"; read -ra container_tool <<<"$$CONTAINER_TOOL"; \
       read -ra pytest_args <<<"$$PYTEST_ARGS"; read -ra deploy_args <<<"$$DEPLOY_ARGS"; read -ra bench_args <<<"$$BENCH_ARGS"
# IMG is one image reference, [registry[:port]/]name[:tag][@digest]; anything else is refused before it is used.
CHECK_IMG = [[ $$IMG =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]*$$ ]] || \
            { echo "make: IMG must be an image reference like registry:5000/team/dra-kwok:v1.2 (got: '$$IMG')" >&2; exit 2; }

.PHONY: help deps install binaries binaries-compat karpenter test test-unit test-integration test-e2e lint cluster-up cluster-down \
        demo demo-down bench deploy undeploy

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

install: ## install dra-kwok and its test dependencies (editable)
	@$(ARGV); "$${python[@]}" -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@if command -v pyenv >/dev/null; then pyenv rehash; fi

deps: # install the package unless it (and its test extras) already are: `make demo` / `make test` on a fresh clone
	@$(ARGV); "$${python[@]}" -c "import importlib.metadata as m, hypothesis, pytest_mock, ruff, mypy; m.version('dra-kwok')" 2>/dev/null || \
	 $(MAKE) install

binaries-compat: ## build (or find cached) the same for each of COMPAT_VERSIONS
	@read -ra compat <<<"$$COMPAT_VERSIONS"; for v in "$${compat[@]}"; do \
	   K8S_VERSION=$$v $(MAKE) --no-print-directory binaries || exit; done

binaries: ## build (or find cached) etcd, kube-apiserver, kube-scheduler, kube-controller-manager, kubectl, kwok
	@if [ -n "$$KUBEBUILDER_ASSETS" ]; then echo "controlplane: using KUBEBUILDER_ASSETS=$$KUBEBUILDER_ASSETS"; \
	 else hack/controlplane/build.sh; fi
	@if [ -n "$$KUBEBUILDER_ASSETS" ] && [ -x "$$KUBEBUILDER_ASSETS/etcd" ]; then echo "etcd: using $$KUBEBUILDER_ASSETS/etcd"; \
	 else hack/etcd/build.sh; fi
	@hack/kwok/build.sh

karpenter: ## build (or find cached) Karpenter's KWOK provider, which only tests/e2e/test_karpenter.py runs
	@hack/karpenter/build.sh

# The run gets a TMPDIR of its own, so the leak check (which runs even when tests fail) sees only what this run left
# behind, never another checkout's control plane or benchmark on the same machine; it is removed when nothing leaked.
# Then the integration and e2e tests once more on each of COMPAT_VERSIONS (unless PYTEST_ARGS picks tests: it says so).
test: deps lint binaries binaries-compat karpenter ## lint, the whole suite on K8S_VERSION, integration + e2e on COMPAT_VERSIONS, a leak check
	@$(ARGV); read -ra compat <<<"$$COMPAT_VERSIONS"; \
	 run_tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/dra-kwok-test.XXXXXX") || exit; export TMPDIR=$$run_tmp; \
	 rc=0; echo "==> Kubernetes $$K8S_VERSION: the whole suite"; "$${python[@]}" -m pytest "$${pytest_args[@]}" || rc=$$?; \
	 for v in "$${compat[@]}"; do \
	   if [ $${#pytest_args[@]} -gt 0 ]; then echo "==> Kubernetes $$v: not run (PYTEST_ARGS picks the tests)"; continue; fi; \
	   echo "==> Kubernetes $$v: integration and e2e"; \
	   K8S_VERSION=$$v "$${python[@]}" -m pytest tests/integration tests/e2e || rc=$$?; \
	 done; \
	 if "$${python[@]}" -m dra_kwok.testing.controlplane leaks; then rm -rf "$$run_tmp"; \
	 else echo "controlplane: the run's TMPDIR is kept for a look: $$run_tmp" >&2; [ "$$rc" -ne 0 ] || rc=1; fi; \
	 exit "$$rc"

test-unit: ## pure logic only, no cluster
	@$(ARGV); "$${python[@]}" -m pytest tests/unit "$${pytest_args[@]}"

test-integration: binaries ## against the real kube-apiserver
	@$(ARGV); "$${python[@]}" -m pytest tests/integration "$${pytest_args[@]}"

test-e2e: binaries karpenter ## with the real kube-scheduler and kube-controller-manager
	@$(ARGV); "$${python[@]}" -m pytest tests/e2e "$${pytest_args[@]}"

lint: deps ## static checks: ruff and mypy (strict on config/ and slices/; setup.cfg, ruff.toml), hadolint on the Dockerfile
	@$(ARGV); set -x; "$${python[@]}" -m ruff check dra_kwok tests bench && "$${python[@]}" -m mypy dra_kwok && hadolint Dockerfile

cluster-up: deps binaries ## start a local control plane and print `export KUBECONFIG=...`
	@$(ARGV); "$${python[@]}" -m dra_kwok.testing.controlplane up

cluster-down: ## stop what cluster-up started
	@$(ARGV); "$${python[@]}" -m dra_kwok.testing.controlplane down

# ---------------------------------------------------------------------------------------------------- deploy
# The image and the kustomize base in deploy/ (README "Deploy"). IMG is any image reference, with or without a tag.
IMG ?= dra-kwok:latest
CONTAINER_TOOL ?= docker
KUBECTL ?= kubectl
DEPLOY_ARGS ?=

.PHONY: image

image: ## build the container image IMG (default dra-kwok:latest) with CONTAINER_TOOL (docker or podman)
	@$(ARGV); $(CHECK_IMG); set -x; "$${container_tool[@]}" build -t "$$IMG" .

deploy: ## kubectl apply -k deploy/ into the current context, with the image IMG (via a temporary overlay)
	@set -eu; $(ARGV); $(CHECK_IMG); \
	 img=$$IMG digest=""; case "$$img" in *@*) digest=$${img#*@}; img=$${img%%@*};; esac; \
	 case "$${img##*/}" in *:*) name=$${img%:*}; tag=$${img##*:};; *) name=$$img; tag=latest;; esac; \
	 overlay=$$(mktemp -d .deploy-overlay.XXXXXX); trap 'rm -rf "$$overlay"' EXIT; \
	 { printf '%s\n' 'apiVersion: kustomize.config.k8s.io/v1beta1' 'kind: Kustomization' 'resources:' '  - ../deploy' \
	     'images:' '  - name: dra-kwok' "    newName: $$name"; \
	   if [ -n "$$digest" ]; then echo "    digest: \"$$digest\""; else echo "    newTag: \"$$tag\""; fi; \
	 } > "$$overlay/kustomization.yaml"; \
	 "$${kubectl[@]}" apply -k "$$overlay" "$${deploy_args[@]}"

undeploy: ## remove what deploy installed (the namespace stays: Karpenter may live there) and dra-kwok's slices
	@$(ARGV); set -ex; \
	 "$${kubectl[@]}" delete deployment/dra-kwok -n karpenter --cascade=foreground --ignore-not-found --timeout=120s; \
	 "$${kubectl[@]}" delete -k deploy -l app.kubernetes.io/name=dra-kwok --ignore-not-found; \
	 "$${kubectl[@]}" delete resourceslices -l app.kubernetes.io/managed-by=dra-kwok --ignore-not-found

# ---------------------------------------------------------------------------------------------------- bench
# bench/README.md. A private control plane each run; results (JSON + markdown) in bench/results/.
BENCH_ARGS ?=

bench: binaries ## benchmark dra-kwok vs a raw-client baseline (BENCH_ARGS="--nodes 5000 --profile")
	@$(ARGV); "$${python[@]}" bench/bench.py "$${bench_args[@]}"

# ---------------------------------------------------------------------------------------------------- demo
demo: deps binaries ## the main job on an embedded local cluster: KWOK nodes, fake GPUs, a scheduled DRA pod
	@$(ARGV); "$${python[@]}" -m dra_kwok.testing.demo up

demo-down: ## stop the demo's driver and control plane
	@$(ARGV); "$${python[@]}" -m dra_kwok.testing.demo down

# ---------------------------------------------------------------------------------------------------- lock
# requirements.lock: what the image installs (Dockerfile: pip install --require-hashes --no-deps), i.e. every
# dependency of setup.cfg's install_requires, and setuptools to build dra-kwok, at exact versions with sha256
# hashes. Resolved for the image's Python, so it needs a Python 3.11 (PYTHON=python3.11). Existing pins are kept;
# `make lock LOCK_ARGS=--upgrade` moves them all to the newest versions install_requires allows
# (LOCK_ARGS="--upgrade-package kubernetes" just one). pip-tools is installed if missing.
LOCK_ARGS ?=

.PHONY: lock

lock: ## regenerate requirements.lock (exact versions + hashes for the image) from setup.cfg's install_requires
	@$(ARGV); read -ra lock_args <<<"$$LOCK_ARGS"; \
	 "$${python[@]}" -c 'import sys; v = "%d.%d" % sys.version_info[:2]; sys.exit(None if v == "3.11" else "make lock: the image runs Python 3.11, this is " + v + " (set PYTHON=python3.11)")' && \
	 { "$${python[@]}" -m piptools --version >/dev/null 2>&1 || "$${python[@]}" -m pip install --quiet --disable-pip-version-check 'pip-tools>=7.4,<8'; } && \
	 CUSTOM_COMPILE_COMMAND="make lock" "$${python[@]}" -m piptools compile --quiet --generate-hashes --allow-unsafe \
	   --build-deps-for=wheel --strip-extras --no-emit-index-url --no-emit-find-links \
	   --output-file=requirements.lock "$${lock_args[@]}" setup.cfg

# ---------------------------------------------------------------------------------------------------- bench-validate
# bench/validate_bench.py: CPU and wall seconds per phase of one verdict on generated inputs (no cluster needed).
VALIDATE_BENCH_ARGS ?= --repeat 3
export VALIDATE_BENCH_ARGS

.PHONY: bench-validate
bench-validate: ## time a config verdict per phase: 1 MiB/2,300-mapping ConfigMap, 10 MiB file, alias amplification
	@$(ARGV); read -ra args <<<"$$VALIDATE_BENCH_ARGS"; "$${python[@]}" bench/validate_bench.py "$${args[@]}"
