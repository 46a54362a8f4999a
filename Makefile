# The two commands of the README: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install fonts browser run test lint unit integration e2e bench chaos docs lock clean cluster cluster-down

install: $(STAMP) fonts

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# A font that shows Japanese and Chinese in the board report (`kizuki analysis --board`): Debian's Noto CJK.
fonts:
	fc-list 2>/dev/null | grep -q "Noto Sans CJK" || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk)

# Debian's Chromium for the browser test (Playwright drives it; its own browser download is not used).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

run: install
	$(BIN)/kizuki run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two pytest sessions side by side: the end-to-end tests (each runs the whole system, mostly on the
# CPU) one after the other, and beside them the unit and integration tests (mostly waiting on servers)
# with the e2e tests marked `beside`; the second's report follows the first's. Fails if either fails.
test: lint browser
	@mkdir -p var/pytest
	$(BIN)/pytest -q -m "not e2e or beside" --basetemp=var/pytest/rest > var/pytest-rest.log 2>&1 & rest=$$!; \
	$(BIN)/pytest -q -m "e2e and not beside" --basetemp=var/pytest/e2e; e2e=$$?; \
	wait $$rest; rest=$$?; cat var/pytest-rest.log; test $$e2e -eq 0 && test $$rest -eq 0

unit: install
	$(BIN)/pytest -q -m unit

integration: install
	$(BIN)/pytest -q -m integration

e2e: install browser
	$(BIN)/pytest -q -m e2e

# Figures, not pass or fail on timing: a table, and every figure in var/bench/results.json.
bench: install
	$(BIN)/python -m bench

# Each service's AsyncAPI document, from its contract (shared/contracts.py), into docs/asyncapi/: commit
# them with the change; a unit test fails while they differ from what the code makes.
docs: install
	$(BIN)/python -m shared.asyncapi

# Re-pin every dependency after editing pyproject.toml.
lock: install
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile --quiet --python $(BIN)/python pyproject.toml --extra dev -o requirements.lock

# deploy/compose.yaml: three NATS nodes, PostgreSQL, two replicas of every service, published on
# 127.0.0.1 only. Builds the images that are missing (base images from Debian's packages unless
# PYTHON_BASE / POSTGRES_BASE name others, e.g. python:3.11-slim and postgres:15-bookworm), starts it,
# waits for every replica's health check and prints where things are. See deploy/cluster.sh.
cluster: $(STAMP)
	VENV_PYTHON=$(BIN)/python sh deploy/cluster.sh up

# Stops the cluster and removes its containers and network; its volumes and var/cluster (keys) are kept.
cluster-down:
	sh deploy/cluster.sh down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Faults under load (see "Faults under load" in the README): `kizuki run` with three NATS nodes and
# PostgreSQL, complaints at a steady rate, a fault after another; fails if anything was lost or
# duplicated, the chain does not verify or the nodes' copies differ. As root (iptables on loopback).
chaos: install
	$(BIN)/python -m bench.chaos
