# K-Smart: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR := var/run

.PHONY: run stop test lint venv clean bench bench-quick up down audit faults fuzz soak

venv: $(STAMP)

# Reinstall only when the pins change.
# Three distributions, installed together so that the platform's dependencies
# on the other two resolve to these folders: the kernel and pure domain
# (common/), the auditor's tool (tools/audit/) and the platform (services,
# gateway, operators' tools).
PACKAGES := -e common -e tools/audit

$(STAMP): pyproject.toml common/pyproject.toml tools/audit/pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required (Debian: apt-get install python3.11 python3.11-venv)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "setuptools==80.10.2"
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt $(PACKAGES) -e ".[test]"
	@touch $(STAMP)

## Start the whole platform with demo data (PostgreSQL and RabbitMQ must run).
run: $(STAMP)
	@$(BIN)/ksmart-admin check-infrastructure
	@$(BIN)/ksmart-admin setup --seed --credentials-file $(RUN_DIR)/demo-password
	@$(BIN)/python -m ksmart_ops.devserver start $(RUN_DIR)
	@$(BIN)/ksmart-admin demo-users --credentials-file $(RUN_DIR)/demo-password
	@echo "Stop with: make stop"

## Stop what `make run` started (and wait until it has ended).
stop:
	@if test -x $(BIN)/python; then $(BIN)/python -m ksmart_ops.devserver stop $(RUN_DIR); fi

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
	@$(MAKE) --no-print-directory audit
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

## API fuzzing (schemathesis): every operation, as every role and as nobody, with
## many generated requests each (about 15 minutes); prints a summary and each finding.
## FUZZ_EXAMPLES=N cases per operation, caller and mode; FUZZ_SEED=N other cases (0: the same each run).
fuzz: $(STAMP)
	@$(BIN)/ksmart-admin check-infrastructure
	$(BIN)/python -m tests.fuzz --examples $(or $(FUZZ_EXAMPLES),100) --seed $(or $(FUZZ_SEED),0)

## The full fault suite (a few minutes): the platform on a PostgreSQL and a
## RabbitMQ of its own, restarted and killed under a stream of requests.
## `make test` runs its quick version (tests/integration/test_faults_quick.py).
faults: $(STAMP)
	$(BIN)/python -m pytest tests/faults/full_suite.py -q -s

## The soak (SOAK_MINUTES, 5 by default, plus a minute or two to start and ramp):
## the platform at half its maximum rate, citizens submitting and officials
## deciding; fails unless memory stays flat, consumer lag bounded and nothing errs.
## SOAK_RATE=N commands (submissions and decisions) a second instead of half the
## measured maximum. Report in bench/results/soak.md.
soak: $(STAMP)
	@$(BIN)/ksmart-admin check-infrastructure
	$(BIN)/python -m bench.soak --minutes $(or $(SOAK_MINUTES),5) $(if $(SOAK_RATE),--rate $(SOAK_RATE))

# Judges pip-audit's JSON report (argv: report, exit status, its stderr): a
# known vulnerability fails; a service out of reach, or packages it could
# not check, is a loud warning, since an offline machine must still test.
define AUDIT_JUDGE
import json, sys
report, status, errors = sys.argv[1], int(sys.argv[2]), sys.argv[3]
banner = "*" * 72
def warn(text):
    print(banner, "WARNING: " + text, banner, sep="\n", file=sys.stderr)
try:
    with open(report) as file:
        dependencies = json.load(file)["dependencies"]
except (OSError, ValueError, KeyError):
    if status == 0:
        sys.exit("dependency audit: pip-audit gave no report")
    with open(errors) as file:
        said = [line.strip() for line in file if line.strip()]
    warn("dependency audit skipped: " + (said[-1] if said else "pip-audit failed"))
    sys.exit(0)
vulnerable = [d for d in dependencies if d.get("vulns")]
skipped = [d for d in dependencies if "skip_reason" in d]
for d in vulnerable:
    for v in d["vulns"]:
        fixed = ", ".join(v.get("fix_versions") or []) or "no fixed release yet"
        print(f"{d['name']}=={d['version']}: {v['id']} (fixed in {fixed})", file=sys.stderr)
if vulnerable:
    names = ", ".join(d["name"] for d in vulnerable)
    sys.exit(f"dependency audit FAILED: known vulnerabilities in {names}")
checked = len(dependencies) - len(skipped)
if skipped and not checked:
    warn(f"dependency audit skipped: the vulnerability service could check none of the "
         f"{len(skipped)} packages ({skipped[0]['skip_reason']})")
    sys.exit(0)
if skipped:
    warn("dependency audit incomplete: not checked: " + ", ".join(d["name"] for d in skipped))
print(f"dependency audit: no known vulnerabilities in {checked} checked packages")
endef
export AUDIT_JUDGE

## Known vulnerabilities in the installed dependencies (pip-audit, PyPI's advisories).
audit: $(STAMP)
	@report=$$(mktemp) errors=$$(mktemp); \
	$(BIN)/pip-audit --skip-editable --progress-spinner off --format json --output "$$report" 2>"$$errors"; \
	status=$$?; \
	$(BIN)/python -c "$$AUDIT_JUDGE" "$$report" "$$status" "$$errors"; \
	verdict=$$?; rm -f "$$report" "$$errors"; exit $$verdict

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt $(PACKAGES) -e ".[test,bench]"
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
