"""The fuzzing loop, shared by the quick test and `make fuzz`.

Each operation of /api/v1/openapi.json is called with cases schemathesis
generates from its declaration (positive: what the schema allows; negative:
what it forbids), once per caller: anonymous (no token, or one the generator
made up for the bearer scheme), and a demo user of each role.
Every response must pass the checks below; a failure is recorded, not
raised, so one run names every finding at once."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import hypothesis
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ksmart_common.domain.roles import OFFICIAL_ROLES
from tests.support import citizen
from tests.support.platform import Platform

# One demo user per role (officials of Kochi), and the anonymous caller.
CALLERS: dict[str, str | None] = {
    "anonymous": None,
    "citizen": "citizen",
    **{role: f"{role}.kochi" for role in OFFICIAL_ROLES},
    "auditor": "auditor",
    "administrator": "admin",
    "akshaya_operator": "akshaya.edappally",
}

# No 5xx; the status is one the operation documents; the body has the
# documented content type (problem+json for errors) and matches its schema;
# input the schema forbids is refused with a 4xx.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Not checked, by design:
# - positive_data_acceptance: valid input is still refused when the file
#   (a random uuid) does not exist or is not the caller's (404), when the
#   role may not call the operation (403), or when the credentials are wrong
#   (401): the schema cannot say which files exist.
# - ignored_auth: test_authorisation_matrix.py sends every operation with and
#   without a token, as every role.

MODES = {
    "positive": schemathesis.GenerationMode.POSITIVE,
    "negative": schemathesis.GenerationMode.NEGATIVE,
}


@dataclass(frozen=True)
class Finding:
    operation: str
    caller: str
    mode: str
    status: int
    checks: tuple[str, ...]
    detail: str
    curl: str

    def __str__(self) -> str:
        return (
            f"{self.operation} as {self.caller} ({self.mode}): {self.status} "
            f"failed {', '.join(self.checks)}\n  {self.detail}\n  {self.curl}"
        )


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)  # (operation, status) -> calls
    seconds_by_operation: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def unique_findings(self) -> list[Finding]:
        """One finding per operation, caller kind and failed checks."""
        seen: dict[tuple, Finding] = {}
        for finding in self.findings:
            seen.setdefault((finding.operation, finding.checks, finding.status), finding)
        return list(seen.values())

    def summary(self) -> str:
        statuses: Counter = Counter()
        for (_, status), count in self.calls.items():
            statuses[status] += count
        lines = [
            f"{sum(self.calls.values())} calls to "
            f"{len({operation for operation, _ in self.calls})} operations "
            f"in {self.seconds:.0f} s",
            "statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())),
            "slowest: "
            + ", ".join(
                f"{operation} {seconds:.1f} s"
                for operation, seconds in self.seconds_by_operation.most_common(5)
            ),
            f"findings: {len(self.findings)} ({len(self.unique_findings())} distinct)",
        ]
        lines += [str(finding) for finding in self.unique_findings()]
        return "\n".join(lines)


def load_schema(platform: Platform) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{platform.base_url}/api/v1/openapi.json", timeout=10)
    return schema


# Ending the caller's session ends the token every other operation is
# called with: fuzzed last.
LAST = "POST /api/v1/auth/logout"


def operations(schema: schemathesis.BaseSchema) -> Iterator:
    found = [result.ok() for result in schema.get_all_operations()]
    yield from sorted(found, key=lambda operation: operation.label == LAST)


def real_resources(platform: Platform) -> dict[str, str]:
    """A citizen's file in Kochi, with its documents: path parameters that
    exist, so cases reach past the 404 a random uuid gets."""
    body = citizen.application(platform)
    reply = citizen.submit(platform, body)
    assert reply.status_code == 201, reply.text
    file = reply.json()
    return {
        "file_id": file["file_id"],
        "document_code": next(iter(body["documents"])),
        "service_code": file["service_code"],
        "local_body": file["local_body"],
        "content_hash": file["definition_hash"],
        "number": file["file_number"],
    }


def real_path_parameters(path: str, resources: dict[str, str]) -> dict[str, str] | None:
    """The path parameters naming real resources, or None if it has others."""
    names = re.findall(r"{(\w+)}", path)
    if "code" in names:
        if "/documents/" in path:
            code = resources["document_code"]
        elif "/local-bodies/" in path:
            code = resources["local_body"]
        else:
            code = resources["service_code"]
        resources = {**resources, "code": code}
    if not names or not set(names) <= set(resources):
        return None
    return {name: resources[name] for name in names}


def can_be_negated(operation) -> bool:
    """Whether the operation has anything a negative case could break: a
    body, or a parameter narrower than any text. Looking for what is not
    there costs Hypothesis a thousand tries, so it is not looked for."""
    declared = operation.definition.raw
    if "requestBody" in declared:
        return True
    return any(
        parameter.get("schema") != {"type": "string"}
        for parameter in declared.get("parameters", ())
    )


def caller_headers(platform: Platform, caller: str) -> dict[str, str]:
    user = CALLERS[caller]
    return platform.as_user(user) if user else {}


def fuzz_operation(
    platform: Platform,
    operation,
    caller: str,
    headers: dict[str, str],
    mode: str,
    max_examples: int,
    report: Report,
    seed: int = 0,
    path_parameters: dict[str, str] | None = None,
) -> bool:
    """Up to max_examples cases of one operation as one caller; False if
    the mode can make no case (nothing in the operation to make invalid)."""
    session = requests.Session()
    strategy = operation.as_strategy(generation_mode=MODES[mode], path_parameters=path_parameters)

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=max_examples,
        derandomize=seed == 0,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
        print_blob=False,
    )
    @hypothesis.given(case=strategy)
    def run(case) -> None:
        if caller == "anonymous":
            # Nobody's token: whatever the generator made up, or none at all.
            sent = {}
        else:
            sent = headers
        response = case.call(base_url=platform.base_url, session=session, headers=sent, timeout=30)
        report.calls[(operation.label, response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=sent)
        except FailureGroup as group:
            failures: list[Failure] = list(group.exceptions)
            report.findings.append(
                Finding(
                    operation=operation.label,
                    caller=caller,
                    mode=mode,
                    status=response.status_code,
                    checks=tuple(sorted({type(failure).__name__ for failure in failures})),
                    detail=" | ".join(failure.title for failure in failures)
                    + f": {response.text[:300]!r}",
                    curl=case.as_curl_command(headers=sent),
                )
            )

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        return False
    return True


# How a caller stands to an operation: anyone may call it; the caller's
# role may; or the caller is refused (401 or 403) before the input is read.
PUBLIC, ALLOWED, REFUSED = "public", "allowed", "refused"


def fuzz(
    platform: Platform,
    examples_for: Callable[[str, str, str], int],
    seed: int = 0,
) -> Report:
    """Fuzz every operation as every caller; examples_for(mode, standing,
    caller) says how many cases to try."""
    started = time.monotonic()
    report = Report()
    schema = load_schema(platform)
    resources = real_resources(platform)
    unsatisfiable: set[tuple[str, str]] = set()
    for operation in operations(schema):
        operation_started = time.monotonic()
        if not can_be_negated(operation):
            unsatisfiable.add((operation.label, "negative"))
        roles = set(operation.definition.raw.get("x-allowed-roles", ()))
        for caller in CALLERS:
            if "public" in roles:
                standing = PUBLIC
            else:
                standing = ALLOWED if caller in roles else REFUSED
            headers = caller_headers(platform, caller)
            for mode in MODES:
                count = examples_for(mode, standing, caller)
                if not count or (operation.label, mode) in unsatisfiable:
                    continue
                made = fuzz_operation(
                    platform, operation, caller, headers, mode, count, report, seed
                )
                if not made:
                    unsatisfiable.add((operation.label, mode))
            real = real_path_parameters(operation.path, resources)
            count = examples_for("positive", standing, caller)
            if real and count and standing != REFUSED:
                # Valid input, about resources that exist.
                fuzz_operation(
                    platform, operation, caller, headers, "positive", count, report, seed, real
                )
        report.seconds_by_operation[operation.label] += time.monotonic() - operation_started
    report.seconds = time.monotonic() - started
    platform.tokens.clear()  # logout ended their sessions
    return report
