"""The container files agree with the code, without Docker.

docker-compose.yml is validated against the Compose Specification's schema
(tests/support/schemas/compose-spec.md says where it comes from), and the
Dockerfile, docker-compose.yml and docker/prometheus.yml are checked against
what the code says: the processes there are (ksmart_common.services and the
relay), the settings they read (tests.support.configuration), the databases
and roles setup makes (ksmart_common.config), the ports they serve. Every
image is built from the one Dockerfile: a service's from its `service`
stage with its SERVICE, the relay's, the portal's and the operators' from
stages of their own; each image is checked as that stage builds it (the
stages it stands on, the build arguments substituted). The portal is checked
like every other process, with its own shape: HTTP and /health on its own
port (it has no operations port), and nothing of the platform's but the
gateway's address."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from ksmart_common.actor_assertions import ACTOR_SIGNERS, PUBLIC_KEYS_ENV, signing_key_env
from ksmart_common.config import SERVICE_DATABASES, amqp_uri_variable
from ksmart_common.services import SERVICES
from ksmart_ops import broker_users, devserver
from ksmart_portal.app import create_app
from ksmart_portal.settings import Settings
from tests.support.configuration import (
    actor_verifiers,
    environment_variables_read,
    service_environment,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_FILE = ROOT / "docker" / "prometheus.yml"
SCHEMA_FILE = ROOT / "tests" / "support" / "schemas" / "compose-spec.json"

OPS_PORT = 9100
GATEWAY_PORT = 8000
LIVENESS_URL = f"http://127.0.0.1:{OPS_PORT}/health/live"
DOCUMENTS_DIR = "/var/lib/ksmart/documents"
RUNNER = ["python", "-m", "ksmart_common.runner"]


DOCKERFILE = "Dockerfile"
SERVICE_ARG = "SERVICE"
BUILD = {"context": ".", "dockerfile": DOCKERFILE}
# Every long-running process: how compose builds its image, and what it runs.
PROCESSES = {
    **{name: {**BUILD, "target": "service", "args": {SERVICE_ARG: name}} for name in SERVICES},
    # Part of the applications service (its code and its database role), but
    # a plain process with a command of its own.
    "relay": {**BUILD, "target": "relay"},
}
COMMANDS = {**{name: [*RUNNER, name] for name in SERVICES}, "relay": ["ksmart-relay"]}
# The web pages: gunicorn serving ksmart_portal.wsgi:app, a client of the
# gateway's API only. No operations port: its HTTP port serves its /health.
PORTAL = "portal"
PORTAL_BUILD = {**BUILD, "target": "portal"}
PORTAL_PORT = 8080
PORTAL_HEALTH_URL = f"http://127.0.0.1:{PORTAL_PORT}/health"
PORTAL_APP = "ksmart_portal.wsgi:app"
# The one-shot: ksmart-admin, run by compose's `setup` service.
SETUP = "setup"
SETUP_BUILD = {**BUILD, "target": "admin"}
# The other one-shot, `ksmart-admin broker-users`: each process's RabbitMQ
# user, from the URIs the processes are given, as the broker's administrator.
BROKER_USERS = "broker-users"
ONE_SHOTS = (SETUP, BROKER_USERS)
BUILDS = {**PROCESSES, PORTAL: PORTAL_BUILD, SETUP: SETUP_BUILD, BROKER_USERS: SETUP_BUILD}
# Image names the Kubernetes manifests use too.
IMAGES = {
    **{name: f"ksmart/{name}" for name in PROCESSES},
    PORTAL: "ksmart/portal",
    SETUP: "ksmart/admin",
    BROKER_USERS: "ksmart/admin",
}
# The instructions whose arguments Docker substitutes ARG and ENV values in
# when it builds (RUN gets them as environment variables; CMD,
# ENTRYPOINT and HEALTHCHECK are never substituted).
SUBSTITUTED = {"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "USER", "VOLUME", "WORKDIR"}


# -- a small Dockerfile parser --------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ...
    arguments: str  # continuation lines joined, comments inside them dropped
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT, else None."""
        text = self.arguments.strip()
        return json.loads(text) if text.startswith("[") else None

    def flags_and_rest(self) -> tuple[dict[str, str], str]:
        """`--interval=15s --retries=3 CMD [...]`: the flags, and what follows."""
        flags: dict[str, str] = {}
        rest = self.arguments.strip()
        while match := re.match(r"--([a-z-]+)(?:=(\S+))?\s*", rest):
            flags[match.group(1)] = match.group(2) or ""
            rest = rest[match.end() :]
        return flags, rest


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.arguments):
                name, _, value = word.partition("=")
                values[name] = value
        return values

    def title(self) -> str | None:
        """The org.opencontainers.image.title label."""
        for instruction in reversed(self.all("LABEL")):
            for word in shlex.split(instruction.arguments):
                name, _, value = word.partition("=")
                if name == "org.opencontainers.image.title":
                    return value
        return None

    def runs(self) -> list[str]:
        """The command the image runs: CMD, through `/bin/sh -c "exec ..."`
        when it reads the image's environment."""
        command = self.last("CMD").exec_form()
        if command[:2] != ["/bin/sh", "-c"]:
            return command
        env = self.env()
        script = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), command[2])
        words = shlex.split(script)
        return words[1:] if words[0] == "exec" else words


@dataclass
class Dockerfile:
    path: Path
    global_args: list[Instruction]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)

    def resolved_base(self, stage: Stage) -> str:
        defaults = {}
        for instruction in self.global_args:
            name, _, value = instruction.arguments.partition("=")
            defaults[name.strip()] = value.strip()
        return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), stage.base)

    def stage_names(self) -> set[str]:
        return {stage.name for stage in self.stages if stage.name}

    def image(self, target: str, args: dict[str, str] | None = None) -> Stage:
        """What `docker build --target TARGET --build-arg ...` makes: the
        instructions of the stages it stands on, then its own, with the
        build arguments (or their defaults) and earlier ENV values
        substituted where Docker substitutes them."""
        chain = [self.stage(target)]
        while chain[0].base in self.stage_names():
            chain.insert(0, self.stage(chain[0].base))
        values: dict[str, str] = {}
        instructions = []
        for stage in chain:
            for instruction in stage.instructions:
                arguments = instruction.arguments
                if instruction.keyword in SUBSTITUTED:
                    arguments = re.sub(
                        r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), arguments
                    )
                if instruction.keyword == "ARG":
                    name, _, default = arguments.partition("=")
                    values[name] = (args or {}).get(name, default)
                if instruction.keyword == "ENV":
                    for word in shlex.split(arguments):
                        name, _, value = word.partition("=")
                        values[name] = value
                instructions.append(Instruction(instruction.keyword, arguments, instruction.line))
        return Stage(self.resolved_base(chain[0]), target, instructions)


def parse_dockerfile(path: Path) -> Dockerfile:
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments may also sit between continuation lines
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            keyword, _, arguments = " ".join(pending).partition(" ")
            instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
            pending = []
    assert not pending, f"{path}: the file ends inside a continued instruction"

    global_args: list[Instruction] = []
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            assert instruction.keyword == "ARG", f"{path}:{instruction.line}: before FROM"
            global_args.append(instruction)
        else:
            stages[-1].instructions.append(instruction)
    assert stages, f"{path}: no FROM"
    return Dockerfile(path, global_args, stages)


def test_the_parser_joins_continuations_skips_comments_and_splits_stages(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "# syntax comment\nARG BASE=python:3.11.14-slim\n\nFROM ${BASE} AS build\n"
        "RUN one \\\n    # a comment inside\n    two\nFROM ${BASE}\n"
        'HEALTHCHECK --interval=5s --retries=3 \\\n  CMD ["python", "-c", "pass"]\n'
        'ENV A=1 \\\n    B="two words"\nCMD ["run"]\n'
    )
    parsed = parse_dockerfile(dockerfile)
    assert [stage.name for stage in parsed.stages] == ["build", None]
    assert parsed.resolved_base(parsed.final) == "python:3.11.14-slim"
    assert parsed.stage("build").instructions[0].arguments == "one two"
    flags, rest = parsed.final.last("HEALTHCHECK").flags_and_rest()
    assert flags == {"interval": "5s", "retries": "3"}
    assert rest == 'CMD ["python", "-c", "pass"]'
    assert parsed.final.env() == {"A": "1", "B": "two words"}
    assert parsed.final.last("CMD").exec_form() == ["run"]


def test_an_image_is_its_stage_on_the_stages_below_with_the_build_arguments(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "ARG BASE=python:3.11.14-slim\nFROM ${BASE} AS runtime\nUSER 10001\n"
        "FROM runtime AS app\nARG NAME\nARG KIND=plain\n"
        'LABEL org.opencontainers.image.title="x/${NAME}"\nENV NAME=${NAME} KIND=${KIND}\n'
        'RUN echo "$NAME"\nCMD ["/bin/sh", "-c", "exec run \\"$NAME\\" --kind=${KIND}"]\n'
    )
    image = parse_dockerfile(dockerfile).image("app", {"NAME": "one"})
    assert image.base == "python:3.11.14-slim"
    assert image.last("USER").arguments == "10001"
    assert image.title() == "x/one"
    assert image.env() == {"NAME": "one", "KIND": "plain"}
    assert image.last("RUN").arguments == 'echo "$NAME"'  # RUN reads it as a variable
    assert image.runs() == ["run", "one", "--kind=plain"]


# -- the files ------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfiles() -> dict[str, Dockerfile]:
    """Every Dockerfile in the repository, by its path from the root."""
    found = {}
    for pattern in ("Dockerfile", "*.Dockerfile"):
        for path in ROOT.rglob(pattern):
            relative = path.relative_to(ROOT)
            if relative.parts[0] in {".venv", "var", ".git"}:
                continue
            found[str(relative)] = parse_dockerfile(path)
    return found


def built(services: dict) -> dict[str, dict]:
    """The compose services built from a K-Smart Dockerfile."""
    return {name: service for name, service in services.items() if "build" in service}


def long_running(services: dict) -> dict[str, dict]:
    return {name: service for name, service in built(services).items() if name not in ONE_SHOTS}


def platform(services: dict) -> dict[str, dict]:
    """The compose services that are the platform's own processes (and its
    setup): every built one but the portal, which is the API's client, and
    the one-shot making the broker users, which is given their URIs only."""
    return {
        name: service
        for name, service in built(services).items()
        if name not in (PORTAL, BROKER_USERS)
    }


def environment(service: dict) -> dict:
    value = service.get("environment") or {}
    if isinstance(value, list):
        return dict(item.partition("=")[::2] if "=" in item else (item, None) for item in value)
    return value


def without_interpolation(value: str) -> str:
    """${NAME:?message} -> NAME, so that a URL holding one parses."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}", r"\1", value)


def image_name(image: str) -> str:
    """ksmart/identity:${KSMART_IMAGE_TAG:-dev} -> ksmart/identity"""
    return image.split(":", 1)[0]


@pytest.fixture(scope="module")
def dockerfile(dockerfiles) -> Dockerfile:
    return dockerfiles[DOCKERFILE]


def built_image(dockerfile: Dockerfile, build: dict) -> Stage:
    """The image a compose service's `build` makes."""
    return dockerfile.image(build["target"], build.get("args"))


# -- docker-compose.yml ------------------------------------------------------------


def test_compose_file_follows_the_compose_specification(compose):
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = [
        f"{'/'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator.iter_errors(compose)
    ]
    assert not problems, "\n".join(problems)


def test_every_process_has_a_compose_service_built_from_the_dockerfile(services):
    for name, build in BUILDS.items():
        assert name in services, f"no compose service runs {name}"
        service = services[name]
        assert service.get("build") == build, name
        assert image_name(service["image"]) == IMAGES[name], name
    for name in (*PROCESSES, PORTAL):
        assert "command" not in services[name], f"{name}: the image's own CMD runs it"


def test_one_dockerfile_builds_every_image_each_named_as_compose_names_it(
    services, dockerfiles, dockerfile
):
    assert set(dockerfiles) == {DOCKERFILE}, "one Dockerfile, no copies of it to keep in step"
    assert {name for name in services if "build" in services[name]} == set(BUILDS)
    for name, service in built(services).items():
        # The image's own name is the one compose (and k8s) calls it by.
        image = built_image(dockerfile, service["build"])
        assert image.title() == image_name(service["image"]) == IMAGES[name], name
        # ksmart/* is built here, never pulled from a registry.
        assert service.get("pull_policy") == "build", name


def test_third_party_images_are_pinned_to_a_patch_release(services):
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        assert pinned(image), f"{name}: {image} is not pinned to a patch release or digest"


# A patch release: major.minor.patch, but PostgreSQL numbers its own major.minor.
PATCH_RELEASE = {"postgres": r"\d+\.\d+(?!\.)"}


def pinned(image: str) -> bool:
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    repository, _, tag = image.rpartition(":")
    pattern = PATCH_RELEASE.get(repository, r"v?\d+\.\d+\.\d+")
    return "latest" not in tag and re.match(pattern, tag) is not None


def test_postgres_and_rabbitmq_have_health_checks_and_named_volumes(compose, services):
    volumes = set(compose.get("volumes") or {})
    postgres, rabbitmq = services["postgres"], services["rabbitmq"]
    assert re.match(r"postgres:15\.\d+", postgres["image"])
    assert re.match(r"rabbitmq:3\.13\.\d+-management", rabbitmq["image"])
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert rabbitmq["healthcheck"]["test"][1:] == ["rabbitmq-diagnostics", "-q", "ping"]
    for service in (postgres, rabbitmq):
        named = {mount.split(":")[0] for mount in service["volumes"]}
        assert named and named <= volumes
    assert "127.0.0.1:15672:15672" in rabbitmq["ports"]


def test_only_loopback_is_published(services):
    for name, service in services.items():
        for port in service.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_every_ksmart_process_waits_for_setup(services):
    setup = services[SETUP]
    assert setup.get("command") == ["setup"], "setup migrates; demo users are seeded by hand"
    assert setup["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert setup["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert setup.get("restart") == "no"
    users = services[BROKER_USERS]
    assert users.get("command") == ["broker-users"]
    assert users["depends_on"] == {"rabbitmq": {"condition": "service_healthy"}}
    assert users.get("restart") == "no"
    for name, service in long_running(platform(services)).items():
        for one_shot in ONE_SHOTS:
            condition = (service.get("depends_on") or {}).get(one_shot, {}).get("condition")
            assert condition == "service_completed_successfully", f"{name} waits not for {one_shot}"


def test_the_portal_waits_for_the_gateway_alone(services, dockerfile):
    """The gateway is all the portal talks to: it starts once the gateway's
    health check passes (which it does after setup), and on nothing else."""
    portal = services[PORTAL]
    assert portal["depends_on"] == {"gateway": {"condition": "service_healthy"}}
    gateway = services["gateway"]
    assert gateway.get("healthcheck") or built_image(dockerfile, gateway["build"]).last(
        "HEALTHCHECK"
    ), "service_healthy needs the gateway's health check"
    assert portal.get("restart") == "unless-stopped"


def test_every_ksmart_process_has_a_health_check(services, dockerfile):
    for name, service in long_running(services).items():
        healthcheck = service.get("healthcheck") or {}
        assert not healthcheck.get("disable"), f"{name}: health check disabled"
        image_check = built_image(dockerfile, service["build"]).last("HEALTHCHECK")
        assert healthcheck.get("test") or image_check, f"{name} has no health check"


def test_ksmart_containers_run_read_only_without_capabilities(services):
    for name, service in built(services).items():
        assert service.get("read_only") is True, name
        assert "/tmp" in service.get("tmpfs", []), name
        assert service.get("cap_drop") == ["ALL"], name


def test_every_setting_the_code_reads_is_given_to_the_processes(services):
    """A setting is listed (with a value, or none to pass it on from the
    shell) for the process whose folder reads it, and every setting for one
    process at least. The failure names each one missing and who reads it."""
    listed = {name: environment(service) for name, service in built(services).items()}
    problems = []
    for variable, files in sorted(service_environment().items()):
        owners = {owner for path in files if (owner := _owning_process(path))}
        if not any(variable in env for env in listed.values()):
            problems.append(f"{variable} (read in {', '.join(sorted(set(files)))}): nowhere")
        for owner in sorted(owners):
            if variable not in listed[owner]:
                problems.append(f"{variable} (read in {', '.join(sorted(set(files)))}): {owner}")
    assert not problems, "settings not in docker-compose.yml:\n" + "\n".join(problems)


def _owning_process(path: str) -> str | None:
    parts = Path(path).parts
    if parts[0] in ("gateway", PORTAL):
        return parts[0]
    if parts[0] == "services":
        return parts[1]
    return None  # common/: several processes


def test_compose_sets_no_setting_the_code_does_not_read(services):
    read = set(environment_variables_read())
    for name, service in built(services).items():
        settings = [v for v in environment(service) if v.startswith("KSMART_")]
        unknown = sorted(set(settings) - read)
        assert not unknown, f"{name} sets settings no code reads (a typo?): {unknown}"


def test_shared_settings_reach_every_ksmart_process(compose, services):
    shared = compose["x-ksmart-env"]
    for name, service in platform(services).items():
        env = environment(service)
        for variable, value in shared.items():
            assert env.get(variable, "missing") == value, f"{name}: {variable}"
        assert env.get("KSMART_OPS_ADDRESS", "0.0.0.0:9100").endswith(f":{OPS_PORT}")


SECRET_NAME = re.compile(r"SECRET|PASSWORD|_PASS$|_KEY$|API_KEY")
REQUIRED_FROM_ENVIRONMENT = re.compile(r"\$\{[A-Z][A-Z0-9_]*:\?[^}]+\}")


def test_compose_holds_no_secret_value(services):
    """A secret is passed on from the operator's environment (no value) or
    required from it (${NAME:?message}); a URL's password likewise."""
    for name, service in services.items():
        for variable, value in environment(service).items():
            if SECRET_NAME.search(variable) and value is not None:
                assert REQUIRED_FROM_ENVIRONMENT.fullmatch(str(value)), f"{name}: {variable}"
            if isinstance(value, str) and "://" in value:
                password = urlsplit(without_interpolation(value)).password
                if password is not None:
                    required = REQUIRED_FROM_ENVIRONMENT.search(value)
                    assert required and without_interpolation(required.group()) == password, (
                        f"{name}: {variable} holds a password"
                    )


def test_database_urls_name_the_service_role_and_database(services):
    expected = {
        f"KSMART_{service.upper()}_DATABASE_URL": (f"ksmart_{service}", database)
        for service, database in SERVICE_DATABASES.items()
    }
    expected["KSMART_RELAY_DATABASE_URL"] = ("ksmart_relay", SERVICE_DATABASES["applications"])
    seen = set()
    for name, service in platform(services).items():
        for variable, value in environment(service).items():
            if variable not in expected:
                continue
            url = urlsplit(value)
            assert (url.username, url.path.lstrip("/")) == expected[variable], name
            assert url.hostname == "postgres" and url.password is None, name
            seen.add(variable)
    assert seen == set(expected)
    for variable, (role, _) in expected.items():
        owner = role.removeprefix("ksmart_")
        assert variable in environment(services[owner]), f"{owner} lacks {variable}"


def test_each_process_connects_to_the_broker_as_its_own_user_alone(compose, services):
    """A process is given its own KSMART_<PROCESS>_AMQP_URI, naming its own
    user, and no other broker URI (neither another's nor the
    administrator's); the one-shot making the users is given every
    process's URI, the very same values, and the administrator's."""
    processes = set(broker_users.PROCESSES)
    assert processes == set(PROCESSES)
    every_uri = {amqp_uri_variable(process) for process in processes}
    users = environment(services[BROKER_USERS])
    assert set(users) == every_uri | {"KSMART_AMQP_URI"}
    for process in processes:
        env = environment(services[process])
        uris = {name for name in env if name.endswith("_AMQP_URI")}
        assert uris == {amqp_uri_variable(process)}, process
        uri = env[amqp_uri_variable(process)]
        assert users[amqp_uri_variable(process)] == uri, process
        parts = urlsplit(without_interpolation(uri))
        assert (parts.hostname, parts.username) == ("rabbitmq", f"ksmart-{process}"), process
        assert REQUIRED_FROM_ENVIRONMENT.search(uri), f"{process}: its password from .env"
    administrator = urlsplit(without_interpolation(users["KSMART_AMQP_URI"]))
    assert administrator.username == "ksmart"
    assert environment(services[SETUP])["KSMART_AMQP_URI"] == users["KSMART_AMQP_URI"]
    assert "KSMART_AMQP_URI" not in compose["x-ksmart-env"]


def test_signers_hold_their_actor_keys_and_verifiers_the_public_ones(services):
    for process in PROCESSES:
        env = environment(services[process])
        keys = {name for name in env if name.endswith("_ACTOR_KEY")}
        expected = {signing_key_env(process)} if process in ACTOR_SIGNERS else set()
        assert keys == expected, process
        for key in keys:
            assert REQUIRED_FROM_ENVIRONMENT.fullmatch(env[key]), process
        assert (PUBLIC_KEYS_ENV in env) is (process in actor_verifiers()), process


def test_env_example_names_every_variable_compose_requires():
    """.env.example lists, without values, each ${NAME:?...} compose needs."""
    required = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", COMPOSE_FILE.read_text()))
    lines = [
        line
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all(line.endswith("=") for line in lines), "no values in the example"
    assert {line.removesuffix("=") for line in lines} == required


def test_the_portal_is_given_its_own_settings_and_the_gateways_address_only(compose, services):
    """No broker URI, no database URL, none of the platform's shared
    settings: the portal's settings alone, the gateway's API its one
    destination, and its session key required from the operator."""
    env = environment(services[PORTAL])
    assert sorted(env) == sorted(v for v in environment_variables_read() if "_PORTAL_" in v)
    assert not set(env) & set(compose["x-ksmart-env"]), "the platform's settings"
    gateway = urlsplit(env["KSMART_PORTAL_GATEWAY_URL"])
    assert (gateway.scheme, gateway.hostname, gateway.port) == ("http", "gateway", GATEWAY_PORT)
    assert gateway.path in ("", "/"), "the portal adds the API's path itself"
    assert REQUIRED_FROM_ENVIRONMENT.fullmatch(env["KSMART_PORTAL_SECRET_KEY"])
    assert env["KSMART_PORTAL_ADDRESS"] == f"0.0.0.0:{PORTAL_PORT}"
    assert f"127.0.0.1:{PORTAL_PORT}:{PORTAL_PORT}" in services[PORTAL]["ports"]
    assert "volumes" not in services[PORTAL], "it keeps nothing"


def test_documents_live_on_a_named_volume_in_the_gateway(compose, services, dockerfile):
    gateway = services["gateway"]
    assert environment(gateway)["KSMART_DOCUMENTS_DIR"] == DOCUMENTS_DIR
    mounts = dict(mount.split(":")[1::-1] for mount in gateway["volumes"])
    assert mounts[DOCUMENTS_DIR] in compose["volumes"]
    image = built_image(dockerfile, gateway["build"])
    made = " ".join(i.arguments for i in image.all("RUN"))
    assert DOCUMENTS_DIR in made and "10001" in made, "the image makes it, owned by its user"
    assert image.env()["KSMART_DOCUMENTS_DIR"] == DOCUMENTS_DIR


def test_the_gateway_publishes_its_api_port(services, dockerfile):
    gateway = services["gateway"]
    assert environment(gateway)["KSMART_GATEWAY_ADDRESS"] == f"0.0.0.0:{GATEWAY_PORT}"
    assert f"127.0.0.1:{GATEWAY_PORT}:{GATEWAY_PORT}" in gateway["ports"]
    image = built_image(dockerfile, gateway["build"])
    assert image.env()["KSMART_GATEWAY_ADDRESS"] == f"0.0.0.0:{GATEWAY_PORT}"


# -- the Dockerfile ----------------------------------------------------------------


def test_every_image_copies_the_one_build_stage(dockerfile):
    """The virtual environment is built once, in the first stage, which no
    build argument of an image reaches: BuildKit builds it once for all."""
    assert dockerfile.stages[0].name == "build"
    build = dockerfile.stage("build")
    declared = [i.arguments.partition("=")[0] for i in dockerfile.global_args + build.all("ARG")]
    assert SERVICE_ARG not in declared, "a per-image argument would rebuild the stage per image"
    for name, build_config in BUILDS.items():
        image = built_image(dockerfile, build_config)
        copies = image.all("COPY")
        assert copies and all(c.arguments.startswith("--from=build ") for c in copies), name
        installs = " ".join(i.arguments for i in image.all("RUN"))
        assert "pip install" not in installs, name


def test_a_service_image_is_built_only_for_a_service_there_is(dockerfile):
    assert dockerfile.final.name == "service", "a build without --target makes a service"
    (declared,) = dockerfile.stage("service").all("ARG")
    assert declared.arguments == SERVICE_ARG, "no default: a build names its service"
    checks = [i.arguments for i in dockerfile.stage("service").all("RUN")]
    assert any("ksmart_common.services" in run and '"$SERVICE"' in run for run in checks)


def test_the_build_stage_installs_every_package_folder_with_the_pins(dockerfile):
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # The platform's package folders, and the two distributions beside it.
    folders = [
        *pyproject["tool"]["setuptools"]["packages"]["find"]["where"],
        "common",
        "tools/audit",
    ]
    stage = dockerfile.stage("build")
    copied = [i.arguments.split()[:-1] for i in stage.all("COPY")]
    sources = [source.rstrip("/") for words in copied for source in words]
    assert "pyproject.toml" in sources and "constraints.txt" in sources
    for folder in folders:
        assert any(folder == s or folder.startswith(f"{s}/") for s in sources), folder
    assert stage.env().get("PIP_CONSTRAINT", "").endswith("/constraints.txt")
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    for source in sources:
        assert sent_to_docker(source, ignored), f".dockerignore leaves out {source}"
    for secret_or_local in (".env", "var", ".venv", ".git"):
        assert not sent_to_docker(secret_or_local, ignored), secret_or_local


def sent_to_docker(path: str, patterns: list[str]) -> bool:
    """.dockerignore: the last pattern that matches decides ('!' re-includes)."""
    included = True
    for pattern in patterns:
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        if body == "**" or fnmatch.fnmatch(path, body) or fnmatch.fnmatch(path, f"**/{body}"):
            included = negated
    return included


def test_the_entry_points_the_images_run_exist():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"ksmart-relay", "ksmart-admin"} <= set(scripts)


def test_every_base_image_is_pinned(dockerfiles):
    for path, dockerfile in dockerfiles.items():
        for stage in dockerfile.stages:
            if stage.base in dockerfile.stage_names():
                continue  # built on a stage of the same file
            base = dockerfile.resolved_base(stage)
            assert pinned(base), f"{path}: FROM {base} is not pinned to a patch release"
            assert base.startswith("python:3.11."), f"{path}: {base} (requires-python 3.11)"


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_images_run_as_an_unprivileged_user_without_build_tools(name, dockerfile):
    image = built_image(dockerfile, BUILDS[name])
    user = image.last("USER")
    assert user is not None, f"{name}: runs as root"
    assert user.arguments.split(":")[0] not in {"root", "0"}, name
    assert user.arguments.split(":")[0] == "10001", name
    env = image.env()
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1", name
    assert env.get("PYTHONUNBUFFERED") == "1", name
    commands = " ".join(i.arguments for i in image.all("RUN"))
    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in commands, f"{name}: {tool} in the runtime stage"


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_process_images_serve_their_operations_port_and_run_their_process(name, dockerfile):
    image = built_image(dockerfile, PROCESSES[name])
    exposed = " ".join(i.arguments for i in image.all("EXPOSE")).split()
    assert str(OPS_PORT) in exposed, name
    assert image.env().get("KSMART_OPS_ADDRESS") == f"0.0.0.0:{OPS_PORT}", name
    flags, check = image.last("HEALTHCHECK").flags_and_rest()
    keyword, _, command = check.partition(" ")
    assert keyword == "CMD" and LIVENESS_URL in command, name
    assert json.loads(command)[0] == "python", f"{name}: slim images have no curl"
    assert image.runs() == COMMANDS[name], name
    assert image.last("ENTRYPOINT") is None, name


def test_the_portal_image_serves_its_pages_and_its_health_on_its_own_port(dockerfile):
    """The portal has no operations port (9100): its HTTP port, 8080, serves
    the pages and /health, which the image's health check asks."""
    image = built_image(dockerfile, PORTAL_BUILD)
    assert image.title() == IMAGES[PORTAL]
    exposed = " ".join(i.arguments for i in image.all("EXPOSE")).split()
    assert exposed == [str(PORTAL_PORT)], "its own port, and not 9100, which nothing serves"
    assert "KSMART_OPS_ADDRESS" not in image.env()
    assert image.env()["KSMART_PORTAL_ADDRESS"] == f"0.0.0.0:{PORTAL_PORT}"
    _, check = image.last("HEALTHCHECK").flags_and_rest()
    keyword, _, command = check.partition(" ")
    assert keyword == "CMD" and PORTAL_HEALTH_URL in command
    assert json.loads(command)[0] == "python", "slim images have no curl"
    command = image.runs()
    assert command[0] == "gunicorn" and command[-1] == PORTAL_APP
    assert command[command.index("--bind") + 1] == f"0.0.0.0:{PORTAL_PORT}"
    # The app `make run` serves, under the same server.
    assert devserver.portal()[devserver.PORTAL][-1] == PORTAL_APP
    assert image.last("ENTRYPOINT") is None
    # No secret in the image: whoever runs it gives the session key.
    assert "KSMART_PORTAL_SECRET_KEY" not in image.env()


def test_the_portal_serves_the_health_endpoint_its_checks_ask():
    app = create_app(
        Settings(gateway_url="http://gateway:8000", secret_key="0" * 64, development=False)
    )
    rules = {rule.rule: rule.methods for rule in app.url_map.iter_rules()}
    assert "GET" in rules[urlsplit(PORTAL_HEALTH_URL).path]
    reply = app.test_client().get(urlsplit(PORTAL_HEALTH_URL).path)
    assert reply.status_code == 200, "it answers without asking the gateway"


def test_the_portals_package_carries_its_templates_and_translations():
    """The images install the distribution (not the source tree): every file
    the portal reads at run time must be in its package data."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["*"]
    package = ROOT / "portal" / "ksmart_portal"
    data = [
        path.relative_to(package)
        for path in sorted(package.rglob("*"))
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]
    assert data, "the portal's templates and translations"
    missing = [str(relative) for relative in data if not packaged(relative, patterns)]
    assert missing == [], "add them to [tool.setuptools.package-data] in pyproject.toml"


def packaged(relative: Path, patterns: list[str]) -> bool:
    """setuptools' package-data globs: `*` stays within one folder."""
    return any(
        len(relative.parts) == len(Path(pattern).parts) and relative.match(pattern)
        for pattern in patterns
    )


def test_the_admin_image_runs_setup_once(dockerfile):
    image = built_image(dockerfile, SETUP_BUILD)
    assert image.last("ENTRYPOINT").exec_form() == ["ksmart-admin"]
    assert image.last("CMD").exec_form() == ["setup"]
    assert image.last("HEALTHCHECK") is None and not image.all("EXPOSE"), "a one-shot"


# -- Prometheus, make ----------------------------------------------------------------


def test_prometheus_scrapes_every_process_on_its_operations_port(services):
    config = yaml.safe_load(PROMETHEUS_FILE.read_text())
    scraped = set()
    for job in config["scrape_configs"]:
        if job.get("metrics_path", "/metrics") != "/metrics":
            continue
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                scraped.add((host, int(port)))
        for dns in job.get("dns_sd_configs", []):
            scraped.update((host, int(dns["port"])) for host in dns["names"])
    missing = sorted(name for name in PROCESSES if (name, OPS_PORT) not in scraped)
    assert not missing, f"Prometheus does not scrape {missing} on {OPS_PORT}"
    prometheus = services["prometheus"]
    assert "./docker/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]


def test_make_up_and_down_use_compose_and_say_when_docker_is_missing():
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.MULTILINE).group(1).split()
    assert {"up", "down"} <= set(phony)
    commands = {"up": "docker compose up -d --build", "down": "docker compose down"}
    for target, command in commands.items():
        recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)
        assert "$(DOCKER_NEEDED)" in recipe and command in recipe, target
    assert "docker info" in makefile and "exit 1" in makefile
