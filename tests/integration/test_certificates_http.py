"""Certificates over the real services: a granted file yields a signed
certificate, downloadable as PDF by those who may read the file, checkable
by anyone from its number or its QR code, and offline with the published
keys; a forged one is found out."""

import base64
import copy

import pytest
import requests

from ksmart_common.domain import certificate as certificates
from tests.support import actions, citizen
from tests.support.platform import running_platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("certificates")) as running:
        yield running


@pytest.fixture(scope="module")
def granted(platform):
    file = citizen.submit(platform, citizen.application(platform)).json()
    actions.take(platform, "clerk.kochi", file["file_id"], "verify")
    return actions.take(platform, "secretary.kochi", file["file_id"], "approve")


def _url(platform, path):
    return f"{platform.base_url}/api/v1{path}"


def test_a_granted_file_yields_a_certificate_its_readers_download_as_pdf(platform, granted):
    assert granted["timeline"][-1]["event_type"] == "CertificateIssued"
    path = f"/files/{granted['file_id']}/certificate"
    pdf = requests.get(_url(platform, path), headers=platform.as_user("citizen"), timeout=30)
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    for outsider in ("citizen.dubai", "clerk.tvm"):
        refused = requests.get(_url(platform, path), headers=platform.as_user(outsider), timeout=10)
        assert refused.status_code == 404


def test_anyone_checks_a_certificate_by_its_number_without_learning_whose_it_is(platform, granted):
    number = granted["file_number"]
    verdict = requests.get(_url(platform, f"/certificates/{number}"), timeout=10).json()
    assert verdict["found"] and verdict["valid"] and verdict["problems"] == []
    shown = verdict["certificate"]
    assert shown["certificate_number"] == number and shown["title"]["en"]
    assert "holder_name" not in shown and "particulars" not in shown
    unknown = requests.get(_url(platform, "/certificates/KL-EKM-KOC/BR/2026/999999"), timeout=10)
    assert unknown.json()["found"] is False
    odd = requests.get(_url(platform, "/certificates/KL-EKM-KOC/BR/2026/²"), timeout=10)
    assert odd.status_code == 200 and odd.json()["found"] is False


def test_the_qr_code_verifies_online_and_offline_and_a_forgery_does_not(platform, granted):
    # The applicant has the certificate itself (in the file, and on the PDF).
    document = requests.get(
        _url(platform, f"/files/{granted['file_id']}"),
        headers=platform.as_user("citizen"),
        timeout=10,
    ).json()["certificate"]
    qr = certificates.qr_text(document)
    online = requests.post(_url(platform, "/certificates/verify"), json={"qr_text": qr}, timeout=10)
    assert online.json()["valid"] is True

    # Offline: only the published keys, no call to the platform per check.
    keys = certificates.public_keys_from_jwks(
        requests.get(_url(platform, "/certificate-keys"), timeout=10).json()
    )
    assert certificates.verify_certificate(document, keys) == []

    forged = copy.deepcopy(document)
    forged["payload"]["holder_name"] = "Somebody Else"
    problems = certificates.verify_certificate(forged, keys)
    assert problems and problems[0].startswith("bad_signature")
    forged_qr = certificates.qr_text(forged)
    answer = requests.post(
        _url(platform, "/certificates/verify"), json={"qr_text": forged_qr}, timeout=10
    ).json()
    assert answer["valid"] is False
    garbage = base64.urlsafe_b64encode(b"not a certificate").decode()
    nonsense = requests.post(
        _url(platform, "/certificates/verify"), json={"qr_text": f"KSC1.{garbage}.x"}, timeout=10
    ).json()
    assert nonsense["valid"] is False
