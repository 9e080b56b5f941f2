"""The Kubernetes manifests (k8s/) agree with the Kubernetes API and with the
code they deploy, without a cluster or a kustomize binary.

Each kustomization is rendered by tests/support/kustomize.py (which supports
exactly the kustomize features k8s/ uses). Every built-in object is validated
against the Kubernetes API's own JSON schemas (kubernetes-validate, strict: an
unknown field fails). The custom resources of the operators we rely on
(KEDA, CloudNativePG, RabbitMQ) have no schema in that package: they get a
minimal structural check of their own here (apiVersion, kind, the spec
fields their operators cannot do without).

Then the manifests are checked against what the code says: the processes
there are (ksmart_common.services and the relay), the settings they read
(tests.support.configuration), the queues setup declares
(ksmart_ops.admin), the images the Dockerfiles build, and the operations
port every process serves. The portal, a client of the gateway's API, is
checked like the processes, in its own shape: HTTP and /health on 8080 (no
operations port), its own autoscaler and budget, the site's root in the
Ingress, and a network policy that lets it send to the gateway and DNS only.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import kubernetes_validate.utils
import pytest

from ksmart_common.actor_assertions import ACTOR_SIGNERS, PUBLIC_KEYS_ENV, signing_key_env
from ksmart_common.config import amqp_uri_variable
from ksmart_common.messaging import OTP_QUEUE
from ksmart_common.services import SERVICES
from ksmart_ops import admin, broker_users
from ksmart_ops.admin import consumer_topologies
from ksmart_ops.deployment_broker_users import MONITORING_PASSWORD_ENV, MONITORING_USERNAME_ENV
from tests.support import kustomize
from tests.support.configuration import (
    actor_verifiers,
    environment_variables_read,
    service_environment,
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
BASE = "base"
DEV = "overlays/dev"
PRODUCTION = "overlays/production"
OVERLAYS = (DEV, PRODUCTION)
# The oldest Kubernetes the manifests are written for.
KUBERNETES_VERSION = "1.31"

NAMESPACE = "ksmart"
CONFIG_MAP = "ksmart-config"
SECRET = "ksmart-secrets"
OPS_PORT = 9100
GATEWAY_PORT = 8000
PROBE_PATHS = {
    "startupProbe": "/health/live",
    "livenessProbe": "/health/live",
    "readinessProbe": "/health/ready",
}
RELAY = "relay"
# The platform's processes: each serves its operations port.
PROCESSES = (*SERVICES, RELAY)
# The web pages: HTTP and its /health on a port of its own, no operations port.
PORTAL = "portal"
PORTAL_PORT = 8080
PORTAL_HEALTH = "/health"
DEPLOYMENTS = (*PROCESSES, PORTAL)
COMMANDS = {
    **{name: ["python", "-m", "ksmart_common.runner", name] for name in SERVICES},
    RELAY: ["ksmart-relay"],
    # The image's own command: gunicorn on KSMART_PORTAL_ADDRESS.
    PORTAL: [
        "/bin/sh",
        "-c",
        'exec gunicorn --bind "$KSMART_PORTAL_ADDRESS" --workers 2 --threads 8'
        " --worker-tmp-dir /tmp --no-control-socket --access-logfile - ksmart_portal.wsgi:app",
    ],
}
SETUP_JOB = "ksmart-setup"
BROKER_USERS_JOB = "ksmart-broker-users"
REBUILD = "ksmart-rebuild-projection"
IMAGES = {
    **{name: f"ksmart/{name}" for name in DEPLOYMENTS},
    SETUP_JOB: "ksmart/admin",
    BROKER_USERS_JOB: "ksmart/admin",
    REBUILD: "ksmart/admin",
}
# Scaled on CPU and queue depth by KEDA; every other service (RPC only, and
# the gateway) and the portal on CPU by an HPA. Never the relay.
CONSUMERS = ("workflow", "notifications")
AUTOSCALED = (*SERVICES, PORTAL)

# The broker's administrator: only the jobs that declare queues and make users.
AMQP = "KSMART_AMQP_URI"
ADMIN_URL = "KSMART_POSTGRES_ADMIN_URL"
# The key root's public half: not secret, but its integrity is the trust in
# every token and certificate key, so it lives with the secrets.
KEY_ROOT = "KSMART_KEY_ROOT_PUBLIC"


def database_url_name(role: str) -> str:
    return f"KSMART_{role.upper()}_DATABASE_URL"


# Each process's own broker user, and each signer's actor key, come from a
# Secret of the process's own (ksmart-<process>-secrets): a pod is given no
# other process's broker password or key.
def own_secret(process: str) -> str:
    return f"ksmart-{process}-secrets"


def own_secrets(process: str) -> set[str]:
    own = {amqp_uri_variable(process)}
    if process in ACTOR_SIGNERS:
        own.add(signing_key_env(process))
    if process in actor_verifiers():
        own.add(PUBLIC_KEYS_ENV)
    return own


# KEDA's monitoring user: its own Secret, which KEDA and the job making the
# users read, with the keys KEDA's rabbitmq scaler names.
MONITORING_SECRET = "ksmart-rabbitmq-monitoring"
MONITORING_KEYS = {MONITORING_USERNAME_ENV: "username", MONITORING_PASSWORD_ENV: "password"}
# The broker's full DNS name: KEDA runs in its own namespace.
BROKER_HOST = f"ksmart-rabbitmq.{NAMESPACE}.svc.cluster.local"


def secret_source(variable: str) -> tuple[str, str]:
    """(the Secret, its key) a variable is taken from."""
    if variable in MONITORING_KEYS:
        return MONITORING_SECRET, MONITORING_KEYS[variable]
    for process in broker_users.PROCESSES:
        if variable in (amqp_uri_variable(process), signing_key_env(process)):
            return own_secret(process), variable
    return SECRET, variable


# Least privilege, written out for review: the secrets each workload is given
# (and may be given), nothing more. Every secret setting the code reads is in
# this table; none of them may appear in the ConfigMap.
SECRETS_BY_WORKLOAD = {
    "identity": {
        *own_secrets("identity"),
        database_url_name("identity"),
        "KSMART_IDENTITY_SIGNING_KEY",
        KEY_ROOT,
    },
    "catalogue": own_secrets("catalogue"),
    "applications": {
        *own_secrets("applications"),
        database_url_name("applications"),
        "KSMART_CERTIFICATE_SIGNING_KEY",
        "KSMART_EVENT_SIGNING_KEY",
        "KSMART_PAYMENT_SECRET",
        KEY_ROOT,
    },
    "workflow": {*own_secrets("workflow"), database_url_name("workflow")},
    "notifications": {
        *own_secrets("notifications"),
        database_url_name("notifications"),
        "KSMART_SMS_API_KEY",
        "KSMART_SMS_RECEIPT_SECRET",
        "KSMART_SMTP_PASSWORD",
    },
    # The payment and SMS callbacks it receives are verified by the services.
    "gateway": {*own_secrets("gateway"), KEY_ROOT},
    RELAY: {*own_secrets(RELAY), database_url_name("relay")},
    # The log's key is its own: no other workload holds it.
    "checkpointer": {
        *own_secrets("checkpointer"),
        database_url_name("checkpointer"),
        "KSMART_LOG_SIGNING_KEY",
    },
    # Its session key: no broker, no database, nothing of the platform's.
    PORTAL: {"KSMART_PORTAL_SECRET_KEY"},
    # Migrations, queues, and the local-body directory (as identity).
    SETUP_JOB: {AMQP, ADMIN_URL, database_url_name("identity")},
    # Every broker user, made as the administrator: exactly the processes
    # ksmart_ops.broker_users knows, and KEDA's user.
    BROKER_USERS_JOB: {
        AMQP,
        *(amqp_uri_variable(process) for process in broker_users.PROCESSES),
        *MONITORING_KEYS,
    },
    REBUILD: {ADMIN_URL, database_url_name("relay")},
}
SECRET_SETTINGS = set().union(*SECRETS_BY_WORKLOAD.values())
# Without these a process cannot start; the others switch a feature on.
REQUIRED_SECRETS = (
    {AMQP, ADMIN_URL, "KSMART_PORTAL_SECRET_KEY", KEY_ROOT, PUBLIC_KEYS_ENV}
    | {amqp_uri_variable(process) for process in PROCESSES}
    | {signing_key_env(signer) for signer in ACTOR_SIGNERS}
    | {
        database_url_name(role)
        for role in ("applications", "workflow", "identity", "notifications", RELAY, "checkpointer")
    }
    | {"KSMART_LOG_SIGNING_KEY", "KSMART_EVENT_SIGNING_KEY"}
)

# The operators' custom resources: the fields each cannot do without.
CUSTOM_RESOURCES = {
    ("keda.sh/v1alpha1", "ScaledObject"): ("spec.scaleTargetRef.name", "spec.triggers"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): ("spec.secretTargetRef",),
    ("postgresql.cnpg.io/v1", "Cluster"): ("spec.instances", "spec.storage.size"),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): ("spec.replicas",),
}


# -- rendering -----------------------------------------------------------------


@functools.cache
def _rendered(kustomization: str) -> tuple[dict[str, Any], ...]:
    return tuple(kustomize.build(K8S / kustomization))


def rendered(kustomization: str) -> list[dict[str, Any]]:
    return list(_rendered(kustomization))


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["metadata"]["labels"]


def workloads(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every Deployment, Job and CronJob by name."""
    return {
        doc["metadata"]["name"]: doc
        for doc in docs
        if doc["kind"] in ("Deployment", "Job", "CronJob")
    }


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def secret_refs(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The container's environment variables taken from a Secret, by name."""
    return {
        variable["name"]: variable["valueFrom"]["secretKeyRef"]
        for variable in container.get("env", [])
        if "secretKeyRef" in variable.get("valueFrom", {})
    }


def path_value(document: dict[str, Any], dotted: str) -> Any:
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


@functools.cache
def built_images() -> set[str]:
    """Every image the Dockerfile builds (its stages'
    org.opencontainers.image.title labels): the service stage's, named after
    its SERVICE, once for each service there is."""
    text = (ROOT / "Dockerfile").read_text()
    found = set()
    for title in re.findall(r'org\.opencontainers\.image\.title="([^"]+)"', text):
        if "${SERVICE}" in title:
            found.update(title.replace("${SERVICE}", name) for name in SERVICES)
        else:
            found.add(title)
    return found


@functools.cache
def settings_read() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(every KSMART_* name in the code, those a running service reads)."""
    return environment_variables_read(), service_environment()


# -- the Kubernetes API ------------------------------------------------------------


@pytest.fixture(scope="module")
def schemas_read_once():
    """kubernetes-validate reads and parses its schema files (1.3 MB of
    definitions) for every document it validates: read each once here."""
    cached = functools.cache(kubernetes_validate.utils.schema_contents)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kubernetes_validate.utils, "schema_contents", cached)
        yield


@pytest.mark.usefixtures("schemas_read_once")
@pytest.mark.parametrize("kustomization", (BASE, *OVERLAYS))
def test_every_object_matches_its_schema(kustomization):
    problems = []
    for doc in rendered(kustomization):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        custom = CUSTOM_RESOURCES.get((doc["apiVersion"], doc["kind"]))
        if custom is not None:
            # A minimal structural check: no schema of these is at hand.
            problems += [
                f"{name}: no {field}" for field in custom if path_value(doc, field) in (None, [])
            ]
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            location = ".".join(str(part) for part in error.path)
            problems.append(f"{name}: {location}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{name}: neither a Kubernetes kind nor a known custom resource")
    assert problems == []


@pytest.mark.usefixtures("schemas_read_once")
def test_the_schema_check_refuses_an_unknown_field():
    deployment = dict(of_kind(rendered(DEV), "Deployment")["gateway"])
    deployment["spec"] = {**deployment["spec"], "replica": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("kustomization", (BASE, *OVERLAYS))
def test_everything_is_in_the_namespace(kustomization):
    docs = rendered(kustomization)
    assert set(of_kind(docs, "Namespace")) == {NAMESPACE}
    assert {doc["metadata"].get("namespace") for doc in docs if doc["kind"] != "Namespace"} == {
        NAMESPACE
    }


# -- the processes ---------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_every_process_has_a_deployment_running_it(kustomization):
    deployments = of_kind(rendered(kustomization), "Deployment")
    assert set(deployments) == set(DEPLOYMENTS)
    for name, deployment in deployments.items():
        (container,) = pod_spec(deployment)["containers"]
        assert container["command"] == COMMANDS[name]


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_probes_ask_the_operations_endpoints(kustomization):
    deployments = of_kind(rendered(kustomization), "Deployment")
    for name in PROCESSES:
        (container,) = pod_spec(deployments[name])["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports["ops"] == OPS_PORT, name
        for probe, path in PROBE_PATHS.items():
            if probe == "startupProbe" and probe not in container:
                continue
            check = container[probe]["httpGet"]
            assert check["path"] == path, (name, probe)
            assert ports.get(check["port"], check["port"]) == OPS_PORT, (name, probe)


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_the_portals_probes_ask_its_health_on_its_own_port(kustomization):
    """The portal has no operations port: every probe asks its /health on
    the HTTP port (ksmart_portal.app; tests/unit/test_containers.py checks
    that it answers without the gateway)."""
    (container,) = pod_spec(of_kind(rendered(kustomization), "Deployment")[PORTAL])["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": PORTAL_PORT}
    for probe in PROBE_PATHS:
        check = container[probe]["httpGet"]
        assert check["path"] == PORTAL_HEALTH, probe
        assert ports.get(check["port"], check["port"]) == PORTAL_PORT, probe


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_pods_invite_prometheus_to_scrape_them(kustomization):
    deployments = of_kind(rendered(kustomization), "Deployment")
    for name in PROCESSES:
        annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(OPS_PORT),
            "prometheus.io/path": "/metrics",
        }, name
    # The portal serves no metrics: an invitation would be a scrape that fails.
    portal = deployments[PORTAL]["spec"]["template"]["metadata"]
    assert not any(key.startswith("prometheus.io/") for key in portal.get("annotations", {}))


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_the_setup_job_runs_setup_without_demo_users(kustomization):
    job = of_kind(rendered(kustomization), "Job")[SETUP_JOB]
    (container,) = pod_spec(job)["containers"]
    assert container["command"] == ["ksmart-admin", "setup"]
    assert "--seed" not in container.get("args", [])
    assert job["spec"]["backoffLimit"] > 0
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    rebuild = of_kind(rendered(kustomization), "CronJob")[REBUILD]
    assert rebuild["spec"]["suspend"] is True
    (container,) = pod_spec(rebuild)["containers"]
    assert container["command"] == ["ksmart-admin", "rebuild-projection"]


def test_the_operators_commands_exist(capsys):
    """Every `ksmart-admin COMMAND` the manifests run or the guide shows."""
    guide = (ROOT / "docs" / "operations.md").read_text()
    commands = set(re.findall(r"ksmart-admin ([a-z][a-z-]+)", guide))
    for workload in workloads(rendered(PRODUCTION)).values():
        for container in containers(workload):
            if container["command"][0] == "ksmart-admin":
                commands.add(container["command"][1])
    assert {"setup", "rebuild-projection", "dead-letters"} <= commands
    for command in sorted(commands):
        with pytest.raises(SystemExit) as exit_:
            admin.main([command, "--help"])
        assert exit_.value.code == 0, f"ksmart-admin has no command {command!r}"
    capsys.readouterr()


# -- configuration and secrets ------------------------------------------------------------


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_every_setting_the_code_reads_is_configured(kustomization):
    docs = rendered(kustomization)
    config = of_kind(docs, "ConfigMap")[CONFIG_MAP]["data"]
    given = {
        name
        for workload in workloads(docs).values()
        for container in containers(workload)
        for name in secret_refs(container)
    }
    missing = {
        name: files
        for name, files in settings_read()[1].items()
        if name not in config and name not in given
    }
    assert missing == {}, "set these in k8s/base/config.yaml, or from ksmart-secrets"


def test_the_configuration_names_only_settings_the_code_reads():
    config = of_kind(rendered(PRODUCTION), "ConfigMap")[CONFIG_MAP]["data"]
    # ... and the operators' command that makes the broker users reads KEDA's.
    read = set(settings_read()[0]) | set(MONITORING_KEYS)
    assert sorted(set(config) - set(read)) == []
    assert sorted(SECRET_SETTINGS - set(read)) == []
    assert sorted(SECRET_SETTINGS & set(config)) == [], "secrets belong in ksmart-secrets"


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_every_workload_takes_its_configuration_and_only_its_secrets(kustomization):
    for name, workload in workloads(rendered(kustomization)).items():
        (container,) = containers(workload)
        assert container["envFrom"] == [{"configMapRef": {"name": CONFIG_MAP}}], name
        refs = secret_refs(container)
        assert set(refs) == SECRETS_BY_WORKLOAD[name], name
        for variable, ref in refs.items():
            assert (ref["name"], ref["key"]) == secret_source(variable), (name, variable)
            assert ref.get("optional", False) is (variable not in REQUIRED_SECRETS), (
                name,
                variable,
            )


@pytest.mark.parametrize("kustomization", (BASE, *OVERLAYS))
def test_no_secret_is_kept_in_the_repository(kustomization):
    docs = rendered(kustomization)
    assert [doc["metadata"]["name"] for doc in docs if doc["kind"] == "Secret"] == []
    for workload in workloads(docs).values():
        for container in containers(workload):
            for variable in container.get("env", []):
                if variable["name"] in SECRET_SETTINGS:
                    assert "value" not in variable, variable["name"]


# -- scaling ------------------------------------------------------------------------------


def declared_queues() -> set[str]:
    return {topology.queue_name for topology in consumer_topologies((1_000,))} | {OTP_QUEUE}


def test_keda_watches_every_queue_the_code_declares():
    watched = {}
    for scaled_object in of_kind(rendered(PRODUCTION), "ScaledObject").values():
        for trigger in scaled_object["spec"]["triggers"]:
            if trigger["type"] == "rabbitmq":
                queue = trigger["metadata"]["queueName"]
                watched[queue] = scaled_object["spec"]["scaleTargetRef"]["name"]
                assert trigger["metadata"]["mode"] == "QueueLength"
                assert trigger["authenticationRef"]["name"] == MONITORING_SECRET
    assert set(watched) == declared_queues()
    # A queue is named after the service that consumes it.
    assert {queue: queue.split(".")[0] for queue in watched} == watched


def test_keda_reads_queue_depths_as_the_monitoring_user_at_the_brokers_full_name():
    """KEDA runs in its own namespace: the broker's Service is named in
    full, in the triggers (no credentials there); the monitoring user's
    name and password are the only secret KEDA reads."""
    docs = rendered(PRODUCTION)
    (authentication,) = of_kind(docs, "TriggerAuthentication").values()
    assert authentication["metadata"]["name"] == MONITORING_SECRET
    assert sorted(authentication["spec"]["secretTargetRef"], key=lambda r: r["parameter"]) == [
        {"parameter": "password", "name": MONITORING_SECRET, "key": "password"},
        {"parameter": "username", "name": MONITORING_SECRET, "key": "username"},
    ]
    for scaled_object in of_kind(docs, "ScaledObject").values():
        for trigger in scaled_object["spec"]["triggers"]:
            if trigger["type"] != "rabbitmq":
                continue
            host = urlsplit(trigger["metadata"]["host"])
            assert (host.scheme, host.hostname, host.port) == ("amqp", BROKER_HOST, 5672)
            assert host.username is None and host.password is None
            assert trigger["metadata"]["protocol"] == "amqp"
            assert trigger["metadata"]["vhostName"] == "/"
    # The production broker is the Service that name points at.
    (rabbitmq,) = of_kind(docs, "RabbitmqCluster").values()
    assert BROKER_HOST.split(".")[:2] == [rabbitmq["metadata"]["name"], NAMESPACE]
    # Its user has no rights but reading queue depths (a passive declare).
    assert broker_users.grant(broker_users.MONITORING) == broker_users.Grant("^$", "^$", "^$")


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_a_job_makes_every_processs_broker_user(kustomization):
    job = of_kind(rendered(kustomization), "Job")[BROKER_USERS_JOB]
    (container,) = pod_spec(job)["containers"]
    assert container["command"] == ["ksmart-admin", "broker-users"]
    assert job["spec"]["backoffLimit"] > 0 and job["spec"]["ttlSecondsAfterFinished"] > 0


def test_only_the_broker_users_job_reaches_the_management_api():
    docs = rendered(PRODUCTION)
    (policy,) = [
        policy["spec"]
        for policy in of_kind(docs, "NetworkPolicy").values()
        if policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        == "ksmart-rabbitmq"
    ]
    admitted = [
        name
        for name, workload in workloads(docs).items()
        for rule in policy["ingress"]
        if any(port["port"] == 15672 for port in rule["ports"])
        for peer in rule["from"]
        if set(peer) == {"podSelector"}
        and selects(peer["podSelector"]["matchLabels"], pod_labels(workload))
    ]
    assert admitted == [BROKER_USERS_JOB]


def autoscaler_targets(docs: list[dict[str, Any]]) -> dict[str, list[tuple[str, int, int]]]:
    """Each Deployment's autoscalers: (kind, minimum, maximum)."""
    targets: dict[str, list[tuple[str, int, int]]] = {}
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] == "HorizontalPodAutoscaler":
            bounds = (doc["kind"], spec["minReplicas"], spec["maxReplicas"])
        elif doc["kind"] == "ScaledObject":
            bounds = (doc["kind"], spec["minReplicaCount"], spec["maxReplicaCount"])
        else:
            continue
        targets.setdefault(spec["scaleTargetRef"]["name"], []).append(bounds)
    return targets


def test_production_scales_each_service_by_one_autoscaler():
    docs = rendered(PRODUCTION)
    targets = autoscaler_targets(docs)
    expected = {
        name: "ScaledObject" if name in CONSUMERS else "HorizontalPodAutoscaler"
        for name in AUTOSCALED
    }
    assert {name: [kind for kind, _, _ in found] for name, found in targets.items()} == {
        name: [kind] for name, kind in expected.items()
    }
    for name, ((_, minimum, maximum),) in targets.items():
        assert 2 <= minimum <= maximum, name
    for scaled_object in of_kind(docs, "ScaledObject").values():
        types = [trigger["type"] for trigger in scaled_object["spec"]["triggers"]]
        assert "cpu" in types and "rabbitmq" in types
    deployments = of_kind(docs, "Deployment")
    # The autoscaler owns the count: a count in the Deployment would reset it.
    assert [name for name in AUTOSCALED if "replicas" in deployments[name]["spec"]] == []
    assert deployments[RELAY]["spec"]["replicas"] == 1


def test_dev_runs_one_of_each_without_autoscalers_or_infrastructure():
    docs = rendered(DEV)
    assert autoscaler_targets(docs) == {}
    assert {
        name: deployment["spec"]["replicas"]
        for name, deployment in of_kind(docs, "Deployment").items()
    } == {name: 1 for name in DEPLOYMENTS}
    assert not {doc["kind"] for doc in docs} & {"Cluster", "RabbitmqCluster", "ScaledObject"}


def test_production_runs_clustered_postgres_and_rabbitmq():
    docs = rendered(PRODUCTION)
    (postgres,) = of_kind(docs, "Cluster").values()
    assert postgres["apiVersion"] == "postgresql.cnpg.io/v1"
    assert postgres["spec"]["instances"] == 3
    roles = {role["name"] for role in postgres["spec"]["managed"]["roles"]}
    assert roles == {
        f"ksmart_{role}"
        for role in (
            "admin",
            "applications",
            "relay",
            "checkpointer",
            "workflow",
            "identity",
            "notifications",
        )
    }
    (rabbitmq,) = of_kind(docs, "RabbitmqCluster").values()
    assert rabbitmq["apiVersion"] == "rabbitmq.com/v1beta1"
    assert rabbitmq["spec"]["replicas"] == 3


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_every_deployment_has_a_disruption_budget_and_a_service(kustomization):
    docs = rendered(kustomization)
    budgets = of_kind(docs, "PodDisruptionBudget")
    services = of_kind(docs, "Service")
    for name, deployment in of_kind(docs, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(deployment["spec"]["selector"]["matchLabels"], labels), name
        assert selects(budgets[name]["spec"]["selector"]["matchLabels"], labels), name
        assert budgets[name]["spec"]["maxUnavailable"] == 1, name
        assert selects(services[name]["spec"]["selector"], labels), name
        ports = {port["port"] for port in services[name]["spec"]["ports"]}
        expected = {"gateway": {GATEWAY_PORT, OPS_PORT}, PORTAL: {PORTAL_PORT}}
        assert ports == expected.get(name, {OPS_PORT}), name


# -- security -------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_every_container_runs_unprivileged_on_a_read_only_root(kustomization):
    for name, workload in workloads(rendered(kustomization)).items():
        spec = pod_spec(workload)
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 10001, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        tmp_volumes = {volume["name"] for volume in spec["volumes"] if "emptyDir" in volume}
        for container in containers(workload):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert any(
                mount["mountPath"] == "/tmp" and mount["name"] in tmp_volumes
                for mount in container["volumeMounts"]
            ), name


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_every_container_has_requests_and_limits(kustomization):
    for name, workload in workloads(rendered(kustomization)).items():
        for container in containers(workload):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) == {"cpu", "memory"}, (name, bound)


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_images_are_the_ones_the_dockerfiles_build(kustomization):
    built = built_images()
    assert set(IMAGES.values()) <= built, "a process the Dockerfile builds no image for"
    for name, workload in workloads(rendered(kustomization)).items():
        (container,) = containers(workload)
        image, tag, digest = kustomize.split_image(container["image"])
        assert image == IMAGES[name] or image.endswith("/" + IMAGES[name]), name
        # A release names its images exactly: never "latest", never nothing.
        assert (tag not in (None, "latest")) or digest, name
        assert container["imagePullPolicy"] == "IfNotPresent", name


# -- network ------------------------------------------------------------------------------


INGRESS = "ksmart"


def test_the_ingress_exposes_the_portal_the_api_and_the_gateways_health():
    """The site's root is the portal's; /api and /health are the gateway's
    (longer and exact paths win over the root). Nothing else is exposed."""
    gateway = {"name": "gateway", "port": {"name": "http"}}
    portal = {"name": PORTAL, "port": {"name": "http"}}
    for kustomization in OVERLAYS:
        docs = rendered(kustomization)
        ingresses = of_kind(docs, "Ingress")
        assert set(ingresses) == {INGRESS}
        services = of_kind(docs, "Service")
        for rule in ingresses[INGRESS]["spec"]["rules"]:
            paths = {
                (path["path"], path["pathType"]): path["backend"]["service"]
                for path in rule["http"]["paths"]
            }
            assert paths == {
                ("/", "Prefix"): portal,
                ("/api", "Prefix"): gateway,
                ("/health", "Exact"): gateway,
            }, kustomization
            for backend in paths.values():
                named = {port["name"] for port in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in named, backend
    (tls,) = of_kind(rendered(PRODUCTION), "Ingress")[INGRESS]["spec"]["tls"]
    assert tls["secretName"] == "ksmart-tls"


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_network_policies_deny_ingress_but_to_the_api_and_the_metrics(kustomization):
    policies = of_kind(rendered(kustomization), "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress"],
    }
    gateway = policies["allow-gateway-http"]["spec"]
    assert gateway["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "gateway"
    assert gateway["ingress"] == [{"ports": [{"port": GATEWAY_PORT, "protocol": "TCP"}]}]
    portal = policies["allow-portal-http"]["spec"]
    assert portal["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == PORTAL
    assert portal["ingress"] == [{"ports": [{"port": PORTAL_PORT, "protocol": "TCP"}]}]
    (monitoring,) = policies["allow-monitoring-ops"]["spec"]["ingress"]
    assert monitoring["ports"] == [{"port": OPS_PORT, "protocol": "TCP"}]
    assert monitoring["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    selected = policies["allow-monitoring-ops"]["spec"]["podSelector"]["matchLabels"]
    for name, workload in workloads(rendered(kustomization)).items():
        assert selects(selected, pod_labels(workload)), name


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_the_gateway_keeps_documents_on_a_volume(kustomization):
    docs = rendered(kustomization)
    documents_dir = of_kind(docs, "ConfigMap")[CONFIG_MAP]["data"]["KSMART_DOCUMENTS_DIR"]
    spec = pod_spec(of_kind(docs, "Deployment")["gateway"])
    (container,) = spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == documents_dir]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    claim = of_kind(docs, "PersistentVolumeClaim")[volume["persistentVolumeClaim"]["claimName"]]
    # More than one gateway replica (production) needs a volume all can write.
    expected = "ReadWriteMany" if kustomization == PRODUCTION else "ReadWriteOnce"
    assert claim["spec"]["accessModes"] == [expected]


# The cluster's DNS, the one destination the portal has besides the gateway.
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
DNS_PORTS = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]


def governing(policies: dict[str, dict[str, Any]], labels: dict[str, str], kind: str):
    """The policies of a type (Ingress, Egress) that select pods so labelled."""
    return [
        policy["spec"]
        for policy in policies.values()
        if kind in policy["spec"]["policyTypes"]
        and selects_or_all(policy["spec"]["podSelector"], labels)
    ]


def selects_or_all(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A pod selector: {} selects every pod of the namespace."""
    assert set(selector) <= {"matchLabels"}, "matchExpressions: extend this test"
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def admits(rule: dict[str, Any], peer_labels: dict[str, str], port: int) -> bool:
    """Whether an ingress rule admits a pod of this namespace on a TCP port."""
    ports = rule.get("ports")
    if ports and not any(p["port"] == port and p.get("protocol", "TCP") == "TCP" for p in ports):
        return False
    peers = rule.get("from")
    return not peers or any(
        set(peer) == {"podSelector"} and selects_or_all(peer["podSelector"], peer_labels)
        for peer in peers
    )


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_the_portal_may_send_to_the_gateway_and_dns_only(kustomization):
    """Every egress rule that governs the portal's pods names the gateway's
    pods on the API port or the cluster's DNS on 53; some rule governs them
    (else egress is open); no other workload is held by it; and the
    gateway's ingress policies admit the portal on the API port."""
    docs = rendered(kustomization)
    policies = of_kind(docs, "NetworkPolicy")
    deployments = of_kind(docs, "Deployment")
    portal, gateway = pod_labels(deployments[PORTAL]), pod_labels(deployments["gateway"])
    egress = governing(policies, portal, "Egress")
    assert egress, "the portal's egress is open"
    rules = [rule for policy in egress for rule in policy.get("egress", [])]
    allowed = []
    for rule in rules:
        assert rule.get("to") and rule.get("ports"), f"a rule open to any peer or port: {rule}"
        for peer in rule["to"]:
            if peer == DNS_PEER:
                assert rule["ports"] == DNS_PORTS, rule
                allowed.append("dns")
            else:
                assert set(peer) == {"podSelector"}, f"a peer beyond the namespace: {peer}"
                selected = [
                    name
                    for name, workload in workloads(docs).items()
                    if selects(peer["podSelector"]["matchLabels"], pod_labels(workload))
                ]
                assert selected == ["gateway"], peer
                assert rule["ports"] == [{"port": GATEWAY_PORT, "protocol": "TCP"}], rule
                allowed.append("gateway")
    assert sorted(set(allowed)) == ["dns", "gateway"]
    # The platform's processes keep their open egress (their brokers, databases, providers).
    for name, workload in workloads(docs).items():
        if name != PORTAL:
            assert not governing(policies, pod_labels(workload), "Egress"), name
    # ... and the gateway lets the portal in.
    ingress = governing(policies, gateway, "Ingress")
    assert any(
        admits(rule, portal, GATEWAY_PORT)
        for policy in ingress
        for rule in policy.get("ingress", [])
    ), "no policy admits the portal to the gateway"


# -- the renderer itself -------------------------------------------------------------------


def test_a_strategic_merge_patch_merges_containers_by_name_and_replaces_other_lists():
    original = {
        "spec": {
            "containers": [
                {"name": "a", "image": "x", "args": ["1", "2"]},
                {"name": "b", "image": "y"},
            ],
            "tolerations": [{"key": "one"}],
        }
    }
    patch = {
        "spec": {
            "containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}],
            "tolerations": [{"key": "two"}],
        }
    }
    merged = kustomize.merge_patch(original, patch, strategic=True)
    assert merged["spec"]["containers"] == [
        {"name": "a", "image": "x", "args": ["1", "2"]},
        {"name": "b", "image": "z"},
        {"name": "c", "image": "w"},
    ]
    assert merged["spec"]["tolerations"] == [{"key": "two"}]
    # A custom resource takes a JSON merge patch: lists replaced, null deletes.
    patch = {"spec": {"containers": [], "tolerations": None}}
    assert kustomize.merge_patch(original, patch, strategic=False) == {"spec": {"containers": []}}
    assert original["spec"]["containers"][1]["image"] == "y"


def test_a_json_patch_and_an_image_change():
    resource = {"spec": {"items": [{"a": 1}], "keep": True}}
    kustomize.apply_json_patch(
        resource,
        [
            {"op": "replace", "path": "/spec/items/0", "value": {"a": 2}},
            {"op": "add", "path": "/spec/items/-", "value": {"a": 3}},
            {"op": "remove", "path": "/spec/keep"},
        ],
    )
    assert resource == {"spec": {"items": [{"a": 2}, {"a": 3}]}}
    change = {"name": "ksmart/relay", "newName": "registry.example/ksmart/relay", "newTag": "1.2"}
    assert kustomize.new_image("ksmart/relay", change) == "registry.example/ksmart/relay:1.2"
    assert kustomize.new_image("ksmart/relayer:3", change) == "ksmart/relayer:3"
    assert kustomize.split_image("host:5000/ksmart/admin:1@sha256:ab") == (
        "host:5000/ksmart/admin",
        "1",
        "sha256:ab",
    )
