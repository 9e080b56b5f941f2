"""Counter staff file an application in a citizen's name (issue 17, journey
3), over HTTP through the real services: a clerk of the body's front
office or an Akshaya operator asks the citizen's consent by a one-time
code sent to their phone or email (read here from the dev inbox), uploads
the scans, and files; the citizen is the applicant, the event records who
filed, and the citizen finds the file under My files once signed in."""

import secrets

import jwt
import pytest
import requests
import sqlalchemy as sa

from tests.support import citizen
from tests.support.inbox import CODE, phone_number, served_inbox
from tests.support.platform import running_platform
from tests.support.waiting import wait_for

TVM = "KL-TVM-TVC"


@pytest.fixture(scope="module")
def inbox_and_platform(tmp_path_factory):
    with served_inbox() as (inbox, inbox_environ):
        environ = {**inbox_environ, "KSMART_CODE_BACKOFF_SECONDS": "0.2"}
        with running_platform(tmp_path_factory.mktemp("counter"), environ=environ) as platform:
            yield inbox, platform


@pytest.fixture
def inbox(inbox_and_platform):
    return inbox_and_platform[0]


@pytest.fixture
def platform(inbox_and_platform):
    return inbox_and_platform[1]


def _post(platform, user, path, body):
    return requests.post(
        f"{platform.base_url}/api/v1{path}", json=body, headers=platform.as_user(user), timeout=15
    )


def _ask_consent(platform, user, **destination):
    return _post(platform, user, "/counter/consents", destination)


def _sms_code(inbox, phone, count=1):
    """The code of the phone's `count`-th message, once it arrived."""
    messages = wait_for(
        lambda: len(inbox.sms.messages(phone)) >= count and inbox.sms.messages(phone),
        message="the consent code",
    )
    text = messages[count - 1]["text"]
    return CODE.search(text).group(1), text


def _consent(platform, inbox, user="clerk.kochi", phone=None):
    """A consent asked by `user` for a new phone: (consent, code, phone)."""
    phone = phone or phone_number()
    asked = _ask_consent(platform, user, phone=phone)
    assert asked.status_code == 202, asked.text
    code, _text = _sms_code(inbox, phone)
    return asked.json(), code, phone


def _application(platform, user="clerk.kochi", local_body=citizen.KOCHI):
    """A complete application whose scans `user` uploaded."""
    return {**citizen.application(platform, user=user), "local_body": local_body}


def _file(platform, user, body, consent_id, code):
    return _post(
        platform,
        user,
        "/counter/files",
        {**body, "consent": {"consent_id": consent_id, "code": code}},
    )


def _user_id(platform, user):
    return jwt.decode(platform.token(user), options={"verify_signature": False})["sub"]


def _event_count(platform):
    engine = platform.engine("applications")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
    finally:
        engine.dispose()


def _sign_in(platform, inbox, phone):
    """The citizen signs in with a code to a phone that had messages before
    (the consent's): the new message's code, not the last one seen."""
    sent = len(inbox.sms.messages(phone))
    asked = requests.post(f"{platform.base_url}/api/v1/auth/otp", json={"phone": phone}, timeout=10)
    assert asked.status_code == 202, asked.text
    code, _text = _sms_code(inbox, phone, count=sent + 1)
    verified = requests.post(
        f"{platform.base_url}/api/v1/auth/otp/verify",
        json={"challenge_id": asked.json()["challenge_id"], "code": code},
        timeout=10,
    )
    assert verified.status_code == 200, verified.text
    platform.tokens[phone] = verified.json()["access_token"]


def _wrong(code):
    return f"{(int(code) + 1) % 10**6:06d}"


def test_a_clerk_files_for_a_new_citizen_who_then_sees_it_in_my_files(platform, inbox):
    phone = phone_number()
    asked = _ask_consent(platform, "clerk.kochi", phone=phone, language="en")
    assert asked.status_code == 202, asked.text
    consent = asked.json()
    assert consent["channel"] == "sms" and "*" in consent["sent_to"]
    assert phone not in asked.text and 0 < consent["expires_in"] <= 900
    assert "code" not in consent
    code, text = _sms_code(inbox, phone)
    # The citizen is told plainly who asks, for what, and when to give the code.
    assert "Counter staff at Kochi Corporation" in text
    assert "file an application in your name" in text and "only if you asked" in text

    body = _application(platform)
    filed = _file(platform, "clerk.kochi", body, consent["consent_id"], code)
    assert filed.status_code == 201, filed.text
    file = filed.json()
    clerk_id = _user_id(platform, "clerk.kochi")
    assert file["file_number"].startswith("KL-EKM-KOC/BR/")
    assert file["applicant_id"] != clerk_id
    assert file["filed_by"] == {
        "actor_id": clerk_id,
        "role": "clerk",
        "office": {
            "local_body": "KL-EKM-KOC",
            "name": {"en": "Kochi Corporation", "ml": "കൊച്ചി കോർപ്പറേഷൻ"},
        },
        "consent_id": consent["consent_id"],
    }
    assert file["timeline"][0]["role"] == "clerk"
    assert file["timeline"][0]["actor_id"] == clerk_id
    assert set(file["documents"]) == set(body["documents"])
    # The clerk reads it again for the printed acknowledgement.
    again = requests.get(
        f"{platform.base_url}/api/v1/files/{file['file_id']}",
        headers=platform.as_user("clerk.kochi"),
        timeout=10,
    )
    assert again.status_code == 200 and again.json()["filed_by"]["role"] == "clerk"

    # The event store records both: the citizen as applicant, the clerk as filer.
    events = requests.get(
        f"{platform.base_url}/api/v1/audit/files/{file['file_id']}/events",
        headers=platform.as_user("auditor"),
        timeout=10,
    ).json()
    assert events["verified"] is True
    submitted = events["events"][0]
    assert submitted["event_type"] == "ApplicationSubmitted"
    assert submitted["data"]["applicant_id"] == file["applicant_id"]
    assert submitted["data"]["filed_by"] == file["filed_by"]
    assert submitted["metadata"]["actor_id"] == clerk_id
    assert submitted["metadata"]["actor_roles"] == ["clerk"]

    # The citizen signs in with the same phone: it is their file.
    _sign_in(platform, inbox, phone)
    assert _user_id(platform, phone) == file["applicant_id"]
    mine = wait_for(
        lambda: {
            entry["file_id"]: entry
            for entry in requests.get(
                f"{platform.base_url}/api/v1/files", headers=platform.as_user(phone), timeout=10
            ).json()["files"]
        }.get(file["file_id"]),
        message="the file in the citizen's My files",
    )
    assert mine["file_number"] == file["file_number"]
    assert mine["filed_by"] == file["filed_by"]
    read = requests.get(
        f"{platform.base_url}/api/v1/files/{file['file_id']}",
        headers=platform.as_user(phone),
        timeout=10,
    )
    assert read.status_code == 200 and read.json()["filed_by"]["actor_id"] == clerk_id


def test_an_akshaya_operator_files_to_any_body_by_email_and_reads_only_its_own(platform, inbox):
    email = f"asha.{secrets.token_hex(4)}@example.org"
    asked = _ask_consent(platform, "akshaya.edappally", email=email, language="ml")
    assert asked.status_code == 202, asked.text
    mail = wait_for(lambda: inbox.mailbox.mails(email), message="the consent mail")[-1]
    assert "Akshaya centre, Edappally" in mail["text"]
    assert "നിങ്ങളുടെ പേരിൽ" in mail["text"]
    code = CODE.search(mail["text"]).group(1)
    body = _application(platform, "akshaya.edappally", local_body=TVM)
    filed = _file(platform, "akshaya.edappally", body, asked.json()["consent_id"], code)
    assert filed.status_code == 201, filed.text
    file = filed.json()
    assert file["local_body"] == TVM
    assert file["filed_by"]["role"] == "akshaya_operator"
    assert file["filed_by"]["office"] == {
        "local_body": None,
        "name": {"en": "Akshaya centre, Edappally", "ml": "Akshaya centre, Edappally"},
    }
    url = f"{platform.base_url}/api/v1/files/{file['file_id']}"
    seen = {
        user: requests.get(url, headers=platform.as_user(user), timeout=10).status_code
        for user in ("akshaya.edappally", "clerk.tvm", "clerk.kochi", "citizen")
    }
    assert seen == {"akshaya.edappally": 200, "clerk.tvm": 200, "clerk.kochi": 404, "citizen": 404}
    # Another body's file the operator did not file stays out of its reach.
    others = citizen.submit(platform, citizen.application(platform)).json()
    other = requests.get(
        f"{platform.base_url}/api/v1/files/{others['file_id']}",
        headers=platform.as_user("akshaya.edappally"),
        timeout=10,
    )
    assert other.status_code == 404


def test_a_wrong_code_is_a_problem_with_every_other_and_nothing_is_written(platform, inbox):
    consent, code, _phone = _consent(platform, inbox)
    body = _application(platform)
    incomplete = {**body, "form": {**body["form"], "date_of_birth": "02/11/2026"}}
    before = _event_count(platform)
    refused = _file(platform, "clerk.kochi", incomplete, consent["consent_id"], _wrong(code))
    assert refused.status_code == 422, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    fields = {problem["field"] for problem in refused.json()["problems"]}
    assert fields == {"consent.code", "form.date_of_birth"}
    wrong = next(p for p in refused.json()["problems"] if p["field"] == "consent.code")
    assert wrong["message"] == "the code is wrong; 4 tries left"
    # The right code with a form still wrong: the form's problems; the consent stays good.
    right = _file(platform, "clerk.kochi", incomplete, consent["consent_id"], code)
    assert right.status_code == 422
    assert "consent.code" not in {p["field"] for p in right.json()["problems"]}
    assert _event_count(platform) == before
    filed = _file(platform, "clerk.kochi", body, consent["consent_id"], code)
    assert filed.status_code == 201, filed.text


def test_a_consent_makes_one_file_only(platform, inbox):
    consent, code, _phone = _consent(platform, inbox)
    body = _application(platform)
    first = _file(platform, "clerk.kochi", body, consent["consent_id"], code)
    assert first.status_code == 201, first.text
    # The same request again (its answer lost): the same file, not a second.
    retried = _file(platform, "clerk.kochi", body, consent["consent_id"], code)
    assert retried.status_code == 200 and retried.json()["file_id"] == first.json()["file_id"]
    before = _event_count(platform)
    another = _application(platform)
    another["form"] = {**another["form"], "child_name": "Another child"}
    reused = _file(platform, "clerk.kochi", another, consent["consent_id"], code)
    assert reused.status_code == 422, reused.text
    assert reused.json()["problems"] == [
        {
            "field": "consent.code",
            "message": f"this consent was used already, for file {first.json()['file_number']};"
            " ask for a new one",
        }
    ]
    assert _event_count(platform) == before


def test_another_operators_consent_is_refused_and_costs_it_nothing(platform, inbox):
    consent, code, _phone = _consent(platform, inbox, user="clerk.kochi")
    body = _application(platform, "akshaya.edappally")
    before = _event_count(platform)
    stolen = _file(platform, "akshaya.edappally", body, consent["consent_id"], code)
    assert stolen.status_code == 422, stolen.text
    assert stolen.json()["problems"] == [
        {"field": "consent.consent_id", "message": "no such consent was requested"}
    ]
    assert _event_count(platform) == before
    # Its owner still files with it: the stranger's try counted nothing.
    own = _file(platform, "clerk.kochi", _application(platform), consent["consent_id"], code)
    assert own.status_code == 201, own.text


def test_a_clerk_files_to_their_own_body_only(platform, inbox):
    consent, code, _phone = _consent(platform, inbox, user="clerk.tvm")
    before = _event_count(platform)
    kochi = _application(platform, "clerk.tvm")
    refused = _file(platform, "clerk.tvm", kochi, consent["consent_id"], code)
    assert refused.status_code == 403, refused.text
    assert _event_count(platform) == before
    # To their own body the same consent serves.
    own = _file(
        platform,
        "clerk.tvm",
        _application(platform, "clerk.tvm", local_body=TVM),
        consent["consent_id"],
        code,
    )
    assert own.status_code == 201, own.text


def test_only_counter_staff_use_the_counter(platform):
    for user in ("citizen", "secretary.kochi", "auditor", "admin"):
        asked = _ask_consent(platform, user, phone=phone_number())
        assert asked.status_code == 403, (user, asked.text)
        filed = _post(platform, user, "/counter/files", {})
        assert filed.status_code == 403, (user, filed.text)


def test_a_consent_code_never_signs_in_and_a_sign_in_code_never_consents(platform, inbox):
    consent, code, phone = _consent(platform, inbox)
    signed_in = requests.post(
        f"{platform.base_url}/api/v1/auth/otp/verify",
        json={"challenge_id": consent["consent_id"], "code": code},
        timeout=10,
    )
    assert signed_in.status_code == 401
    assert signed_in.json()["detail"] == "no such sign-in code was requested"
    challenge = requests.post(
        f"{platform.base_url}/api/v1/auth/otp", json={"phone": phone}, timeout=10
    ).json()
    sign_in_code, _text = _sms_code(inbox, phone, count=2)
    filed = _file(
        platform, "clerk.kochi", _application(platform), challenge["challenge_id"], sign_in_code
    )
    assert filed.status_code == 422
    assert filed.json()["problems"][0]["field"] == "consent.consent_id"


def test_consents_are_rate_limited_per_phone_like_sign_in_codes(platform):
    phone = phone_number()
    replies = [_ask_consent(platform, "akshaya.edappally", phone=phone) for _ in range(4)]
    assert [reply.status_code for reply in replies] == [202, 202, 202, 429]
    assert int(replies[-1].headers["Retry-After"]) > 0
