# Every K-Smart image, from one file and one build stage:
#
#   docker build --build-arg SERVICE=identity -t ksmart/identity .
#       (likewise catalogue, applications, workflow, notifications, gateway)
#   docker build --target relay -t ksmart/relay .
#   docker build --target admin -t ksmart/admin .
#   docker build --target portal -t ksmart/portal .
#
# The build context is the repository root: the platform's distribution
# (pyproject.toml) holds every service's package, beside common/ and tools/.
# docker-compose.yml builds each image the same way (build.target, build.args).
#
# Why one file: the images differ only in what they run; the virtual
# environment in them is the same, so it is built once (the `build` stage)
# and each image copies it out. Six copies of that stage, kept character
# for character in step by a test, are gone.
#
# The six services are one stage, `service`, told which service it runs by
# SERVICE: they differ in that name alone (the gateway reads two settings
# the others ignore, set here for all). The relay and the operators' tool
# are targets of their own in this file rather than values of SERVICE: the
# relay is a plain process started by its own command (ksmart-relay), not
# by the services' runner, and the admin image is a one-shot with the
# `ksmart-admin` entry point and no port or health check. The portal (the
# web pages, ksmart_portal) is a target of its own too: a WSGI application
# under gunicorn, a client of the gateway's public API with no operations
# port, so it stands on `runtime`, not on `process`. A SERVICE that
# switched those would hide four images' differences in shell logic; a
# target states each in a few lines.

# A tag pinned to a patch release. CI pins the digest too
# (python:3.11.14-slim-bookworm@sha256:...) when it builds images to ship:
# PYTHON_IMAGE is a build argument so that it can without editing this file.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- build ---------------------------------------------------------------------
# No stage argument reaches this stage (SERVICE is declared only in the
# `service` stage), so BuildKit builds it once for every image.
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
COPY portal/ portal/
RUN pip install --no-deps --no-build-isolation ./common ./tools/audit . \
 && pip check \
 && pip uninstall --yes pip

# -- runtime: what every image shares -------------------------------------------
# The interpreter and the virtual environment: no compiler, no pip, no source
# tree. The process runs as uid 10001 and writes only to /tmp and to mounted
# volumes, so the root file system can be mounted read-only (docker-compose.yml
# does); the working directory, /, is not writable on purpose.
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# Uploaded documents (the gateway's): a volume mounted here (docker-compose.yml:
# documents). Made by the image and owned by the processes' user, so that an
# empty named volume mounted on it starts owned by that user too; an empty
# folder in the images that never use it.
RUN python -m pip uninstall --yes --disable-pip-version-check pip setuptools wheel \
 && groupadd --system --gid 10001 ksmart \
 && useradd --system --uid 10001 --gid ksmart --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin ksmart \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/ksmart/documents
COPY --from=build /opt/venv /opt/venv
USER 10001:10001

# -- admin: `ksmart-admin`, the operators' commands, run once and done ------------
# By default `ksmart-admin setup` (databases, roles, migrations, queues, the
# local-body directory): docker-compose.yml's `setup` service and the k8s
# setup job. Any other command replaces CMD, e.g.
#   docker compose run --rm setup dead-letters notifications.deliveries
# A one-shot: no port, no health check.
FROM runtime AS admin
LABEL org.opencontainers.image.title="ksmart/admin"
ENTRYPOINT ["ksmart-admin"]
CMD ["setup"]

# -- portal: the web pages, a client of the gateway's public API -------------------
# gunicorn serving ksmart_portal.wsgi:app on KSMART_PORTAL_ADDRESS (8080). It
# has no operations port: its own /health on 8080 is the health check (and
# the orchestrators' probe), and it serves no /metrics yet (the gateway's
# request metrics cover what it asks of the platform). It reads
# KSMART_PORTAL_GATEWAY_URL and KSMART_PORTAL_SECRET_KEY, which whoever runs
# it sets (docker-compose.yml, k8s/base/portal.yaml): the key never in the image.
# gunicorn's control socket is off (it would live under $HOME) and its workers'
# heartbeat files go to /tmp, so a read-only root suffices; SIGTERM stops it
# gracefully, finishing the requests in flight. Two workers of eight threads:
# a page mostly waits on the gateway, and threads overlap those waits.
FROM runtime AS portal
LABEL org.opencontainers.image.title="ksmart/portal"
ENV KSMART_PORTAL_ADDRESS=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]
# Through a shell only to read KSMART_PORTAL_ADDRESS; exec leaves gunicorn as
# PID 1, so it receives the container's SIGTERM.
CMD ["/bin/sh", "-c", "exec gunicorn --bind \"$KSMART_PORTAL_ADDRESS\" --workers 2 --threads 8 --worker-tmp-dir /tmp --no-control-socket --access-logfile - ksmart_portal.wsgi:app"]

# -- every long-running process ---------------------------------------------------
# Every process serves /health/live, /health/ready and /metrics here
# (ksmart_common.operations); Prometheus scrapes it, orchestrators probe it.
FROM runtime AS process
ENV KSMART_OPS_ADDRESS=0.0.0.0:9100
EXPOSE 9100
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/health/live', timeout=4)"]

# -- relay: publishes the applications service's stored events --------------------
# Part of the applications service (its code is ksmart_applications.relay_main;
# it reads that service's database with a role of its own, ksmart_relay) and
# runs as its own deployment.
FROM process AS relay
LABEL org.opencontainers.image.title="ksmart/relay"
CMD ["ksmart-relay"]

# -- service: one of the six (the default target) -----------------------------------
FROM process AS service
# identity, catalogue, applications, workflow, notifications or gateway
# (ksmart_common.services); no default, and the build stops on any other.
ARG SERVICE
RUN python -c 'import sys; from ksmart_common.services import SERVICES; sys.exit(0 if sys.argv[1] in SERVICES else "SERVICE=" + repr(sys.argv[1]) + " names none of " + ", ".join(SERVICES))' "$SERVICE"
LABEL org.opencontainers.image.title="ksmart/${SERVICE}"
# The gateway's public API on 8000 and its documents folder (above); the
# other services read neither. Port 8000 is published by who runs the
# gateway (docker-compose.yml's ports, the k8s Service), so it is not an
# EXPOSE of all six images.
ENV KSMART_GATEWAY_ADDRESS=0.0.0.0:8000 \
    KSMART_DOCUMENTS_DIR=/var/lib/ksmart/documents \
    SERVICE=${SERVICE}
# Through a shell only to read SERVICE; exec leaves python as PID 1, so the
# service itself receives the container's SIGTERM.
CMD ["/bin/sh", "-c", "exec python -m ksmart_common.runner \"$SERVICE\""]
