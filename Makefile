# K-Smart: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR := var/run

.PHONY: run stop test lint venv clean bench bench-quick up down

venv: $(STAMP)

# Reinstall only when the pins change.
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required (Debian: apt-get install python3.11 python3.11-venv)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "setuptools==80.10.2"
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	@touch $(STAMP)

## Start the whole platform with demo data (PostgreSQL and RabbitMQ must run).
run: $(STAMP)
	@$(BIN)/ksmart-admin check-infrastructure
	@$(BIN)/ksmart-admin setup --seed --credentials-file $(RUN_DIR)/demo-password
	@$(BIN)/python -m ksmart_common.devserver start $(RUN_DIR)
	@$(BIN)/ksmart-admin demo-users --credentials-file $(RUN_DIR)/demo-password
	@echo "Stop with: make stop"

## Stop what `make run` started.
stop:
	@test -x $(BIN)/python && $(BIN)/python -m ksmart_common.devserver stop $(RUN_DIR) || true

# `make up` and `make down` need a Docker engine with the compose plugin.
DOCKER_NEEDED = docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1 || { \
	echo "make $@ needs a running Docker engine with the compose plugin, and none answers here"; \
	echo "(docker info or docker compose version failed)."; \
	echo "  Install Docker Engine and its compose plugin,"; \
	echo "  then start it (systemctl start docker) and try again."; \
	echo "  Without Docker, 'make run' starts the platform as local processes."; \
	exit 1; }

## The whole platform in containers (docker-compose.yml; set its secrets first, see its top).
up:
	@$(DOCKER_NEEDED)
	docker compose up -d --build

## Stop and remove those containers (the volumes, and so the data, stay).
down:
	@$(DOCKER_NEEDED)
	docker compose down

## Every test, on the real PostgreSQL and RabbitMQ.
test: $(STAMP)
	@$(BIN)/ksmart-admin check-infrastructure
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test,bench]"
	@command -v pgbench >/dev/null || { echo "pgbench is needed (Debian: apt-get install postgresql-contrib or postgresql-client)"; exit 1; }
	@touch $(BENCH_STAMP)

## Every benchmark beside its reference (about 15 minutes); results in bench/results/.
bench: $(BENCH_STAMP)
	@$(BIN)/ksmart-admin check-infrastructure
	$(BIN)/python -m bench

## A smoke run of the same, in under 2 minutes.
bench-quick: $(BENCH_STAMP)
	@$(BIN)/ksmart-admin check-infrastructure
	$(BIN)/python -m bench --quick

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean: stop
	rm -rf $(VENV) var
