# ksmart/relay: the relay, which publishes the applications service's stored events.
#
#   docker build -f services/applications/relay.Dockerfile -t ksmart/relay .
#
# The build context is the repository root: the platform's distribution
# (pyproject.toml) holds every service's package, beside common/ and tools/. docker-compose.yml builds it the same way.

# It lives beside the applications service because it is part of it: its
# code is ksmart_applications.relay_main, it reads that service's database
# with a role of its own (ksmart_relay), and runs as its own deployment.

# A tag pinned to a patch release. CI pins the digest too
# (python:3.11.14-slim-bookworm@sha256:...) when it builds images to ship:
# PYTHON_IMAGE is a build argument so that it can without editing this file.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- build ---------------------------------------------------------------------
# This stage is the same, character for character, in every K-Smart
# Dockerfile (tests/unit/test_containers.py keeps it so): BuildKit keys its
# cache on the instructions and on the files they copy, so building all the
# images installs the pinned dependencies and the platform once, and every
# image copies the same virtual environment out of it.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CONSTRAINT=/src/constraints.txt
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The dependencies first, in a layer that a code change does not invalidate.
# constraints.txt pins every package, transitive ones included; as
# PIP_CONSTRAINT it also holds what pip builds from source to those pins.
# Three distributions: the kernel and pure domain (common/, with its `io`
# extra), the auditor's tool (tools/audit/) and the platform (the root); the
# third-party requirements of all three, not the three themselves.
COPY pyproject.toml constraints.txt ./
COPY common/pyproject.toml common/
COPY tools/audit/pyproject.toml tools/audit/
RUN python -c "import tomllib; projects = [tomllib.load(open(f, 'rb'))['project'] for f in ('pyproject.toml', 'common/pyproject.toml', 'tools/audit/pyproject.toml')]; print(*sorted({d for p in projects for d in p['dependencies'] + p.get('optional-dependencies', {}).get('io', []) if not d.startswith('ksmart-')}), sep='\n')" > requirements.txt \
 && pip install --requirement requirements.txt
# Then the three distributions' package folders.
COPY common/ common/
COPY tools/ tools/
COPY services/ services/
COPY gateway/ gateway/
RUN pip install --no-deps --no-build-isolation ./common ./tools/audit . \
 && pip check \
 && pip uninstall --yes pip

# -- runtime -------------------------------------------------------------------
# The interpreter and the virtual environment: no compiler, no pip, no source
# tree. The process runs as uid 10001 and writes only to /tmp and to mounted
# volumes, so the root file system can be mounted read-only (docker-compose.yml
# does); the working directory, /, is not writable on purpose.
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
RUN python -m pip uninstall --yes --disable-pip-version-check pip setuptools wheel \
 && groupadd --system --gid 10001 ksmart \
 && useradd --system --uid 10001 --gid ksmart --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin ksmart
COPY --from=build /opt/venv /opt/venv
LABEL org.opencontainers.image.title="ksmart/relay"
USER 10001:10001
# Every process serves /health/live, /health/ready and /metrics here
# (ksmart_common.operations); Prometheus scrapes it, orchestrators probe it.
ENV KSMART_OPS_ADDRESS=0.0.0.0:9100
EXPOSE 9100
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/health/live', timeout=4)"]
CMD ["ksmart-relay"]
