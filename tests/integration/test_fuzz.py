"""API fuzzing, the quick run of `make test`: schemathesis generates a few
requests for every operation of the OpenAPI document, valid and invalid, and
sends them as every role and as nobody. No answer may be a 5xx, and every
answer must be what the document says: a status it lists, its content type
(problem+json for errors), a body that matches its schema. The cases are
derandomized, so a run repeats the last one. `make fuzz` runs many more
(tests/fuzz/)."""

import pytest
import requests

from tests.fuzz.runner import PUBLIC, REFUSED, fuzz
from tests.support.platform import running_platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


def quick_examples(mode: str, standing: str, caller: str) -> int:
    """A caller that is refused is refused before the input is read, and a
    public operation reads no token: one valid case each is enough there."""
    if standing == REFUSED or (standing == PUBLIC and caller != "anonymous"):
        return 1 if mode == "positive" else 0
    return 3


def test_every_operation_answers_as_documented_whoever_calls_with_whatever(platform):
    report = fuzz(platform, quick_examples)
    print(report.summary())
    assert [str(finding) for finding in report.unique_findings()] == []
    assert len({operation for operation, _ in report.calls}) >= 40


def test_a_url_no_endpoint_matches_is_refused_with_a_problem_document(platform):
    # Found by the fuzzer: werkzeug's routing answered these in HTML.
    not_a_uuid = requests.get(f"{platform.base_url}/api/v1/files/h", timeout=10)
    assert not_a_uuid.status_code == 404
    assert not_a_uuid.headers["Content-Type"] == "application/problem+json"
    assert not_a_uuid.json()["status"] == 404
    wrong_method = requests.delete(f"{platform.base_url}/api/v1/files", timeout=10)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Content-Type"] == "application/problem+json"
    assert set(wrong_method.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}
