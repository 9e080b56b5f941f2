"""Intake: an application is checked against the definition it is filed
under, and every problem comes back in one answer, in the applicant's
language. Also the fee it owes, the documents added later, and payments."""

import hashlib
import uuid

import pytest

from ksmart_catalogue.catalogue import Catalogue
from ksmart_catalogue.samples import documents_needed, sample_form
from ksmart_common.domain.file import (
    Actor,
    attach_document,
    record_payment,
    submit_application,
    take_action,
)
from ksmart_common.domain.intake import Upload, application_problems, fee_demand, language
from ksmart_common.errors import ActionNotAllowed, Forbidden, InvalidInput
from tests.support.files import sample_uploads, submission
from tests.unit.test_file_domain import Stream

KOCHI = "KL-EKM-KOC"
CITIZEN = Actor("citizen-1", ("citizen",))
CLERK = Actor("clerk-1", ("clerk",), KOCHI)
SECRETARY = Actor("secretary-1", ("secretary",), KOCHI)
CATALOGUE = Catalogue.load()
ALL_DEFINITIONS = [CATALOGUE.get_service(s["code"]) for s in CATALOGUE.list_services()]


def upload(media_type="application/pdf", size=2048, name="x"):
    return Upload(hashlib.sha256(name.encode()).hexdigest(), media_type, size, f"{name}.pdf")


@pytest.fixture
def birth():
    return CATALOGUE.get_service("birth-certificate")


@pytest.mark.parametrize("definition", ALL_DEFINITIONS, ids=lambda d: d["code"])
def test_the_sample_application_of_every_service_is_accepted(definition):
    form = sample_form(definition)
    assert application_problems(definition, form, sample_uploads(definition, form)) == []


def test_several_problems_come_back_together_each_with_its_place_and_reason(birth):
    form = sample_form(birth, {"place_of_birth": "hospital"})
    form["date_of_birth"] = "15/01/2026"  # not ISO
    form["sex"] = "unknown"  # not a choice
    del form["mother_name"]  # required
    form["favourite_colour"] = "blue"  # not a question
    form["phone"] = "9847012345"  # no country code
    documents = sample_uploads(birth, form)
    documents.pop("hospital_birth_report")  # a missing document
    documents["applicant_passport"] = upload()  # not applicable: not abroad

    problems = application_problems(birth, form, documents)

    assert {(p["field"], p["code"]) for p in problems} == {
        ("form.date_of_birth", "not_date"),
        ("form.sex", "not_choice"),
        ("form.mother_name", "required"),
        ("form.favourite_colour", "unknown_field"),
        ("form.phone", "not_phone"),
        ("documents.hospital_birth_report", "document_missing"),
        ("documents.applicant_passport", "document_not_applicable"),
    }
    by_field = {p["field"]: p["message"] for p in problems}
    assert by_field["form.mother_name"] == "Mother's name: is required"
    assert "male (Male)" in by_field["form.sex"]


def test_the_problems_speak_the_applicants_language(birth):
    problems = application_problems(birth, {}, {}, lang="ml")
    messages = {p["field"]: p["message"] for p in problems}
    assert messages["form.mother_name"] == "അമ്മയുടെ പേര്: നിർബന്ധമായും നൽകണം"
    with pytest.raises(InvalidInput) as raised:
        submit_application("f", birth, KOCHI, CITIZEN, {}, {}, lang="ml")
    assert raised.value.detail.startswith("അപേക്ഷയിൽ")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("ml", "ml"),
        ("ml-IN,ml;q=0.9,en;q=0.8", "ml"),
        ("fr-FR, en", "en"),
        ("de", "en"),
    ],
)
def test_the_language_is_read_from_accept_language(header, expected):
    assert language(header) == expected


def test_a_document_is_judged_on_what_its_content_is_not_what_it_claims(birth):
    form = sample_form(birth, {"place_of_birth": "hospital"})
    documents = sample_uploads(birth, form)
    spec = next(d for d in birth["documents"] if d["code"] == "hospital_birth_report")
    documents["hospital_birth_report"] = Upload("a" * 64, "text/plain", 10, "report.pdf")
    documents["parent_identity_proof"] = upload("application/pdf", spec["max_bytes"] + 1)

    codes = {(p["field"], p["code"]) for p in application_problems(birth, form, documents)}

    assert ("documents.hospital_birth_report", "document_format") in codes
    assert ("documents.parent_identity_proof", "document_too_large") in codes


def test_a_document_that_is_not_the_applicants_upload_is_named(birth):
    form = sample_form(birth, {"place_of_birth": "hospital"})
    documents = {**sample_uploads(birth, form), "hospital_birth_report": None}
    problems = application_problems(birth, form, documents)
    assert [(p["field"], p["code"]) for p in problems] == [
        ("documents.hospital_birth_report", "document_not_uploaded")
    ]


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (1, "not_text"),
        ("a" * 501, "too_long"),
        ("Asha\x00Menon", "control_characters"),
        ("   ", "required"),
    ],
)
def test_text_answers_are_checked(birth, answer, code):
    form = {**sample_form(birth), "mother_name": answer}
    problems = application_problems(birth, form, sample_uploads(birth, form))
    assert [(p["field"], p["code"]) for p in problems] == [("form.mother_name", code)]


def test_malayalam_and_other_scripts_are_answers_like_any_other(birth):
    form = {**sample_form(birth), "mother_name": "ആശ മേനോൻ", "father_name": "محمد"}
    assert application_problems(birth, form, sample_uploads(birth, form)) == []


def test_an_integer_field_keeps_to_its_range():
    definition = {
        "fields": [
            {
                "name": "rooms",
                "type": "integer",
                "required": True,
                "minimum": 1,
                "maximum": 40,
                "label": {"en": "Rooms", "ml": "മുറികൾ"},
                "help": {"en": "", "ml": ""},
            },
        ],
        "documents": [],
    }
    assert application_problems(definition, {"rooms": 0}, {})[0]["code"] == "below_minimum"
    assert application_problems(definition, {"rooms": 41}, {})[0]["code"] == "above_maximum"
    assert application_problems(definition, {"rooms": True}, {})[0]["code"] == "not_integer"
    assert application_problems(definition, {"rooms": "3"}, {})[0]["code"] == "not_integer"
    assert application_problems(definition, {"rooms": 40}, {}) == []


def test_a_form_that_is_not_an_object_is_one_problem(birth):
    assert [p["code"] for p in application_problems(birth, ["x"], {})] == ["not_an_object"]


def test_nothing_is_decided_for_an_invalid_application(birth):
    with pytest.raises(InvalidInput) as raised:
        submit_application("f", birth, KOCHI, CITIZEN, {"sex": "unknown"}, {})
    assert len(raised.value.problems) > 5


# -- fees ---------------------------------------------------------------------


def _with_fees(definition, fees):
    return {**definition, "fees": fees}


def test_the_fee_demand_counts_only_the_items_that_apply(birth):
    fees = [
        {"code": "registration", "label": {"en": "R", "ml": "ര"}, "amount_paise": 1000},
        {
            "code": "abroad",
            "label": {"en": "A", "ml": "അ"},
            "amount_paise": 5000,
            "condition": {"field": "applicant_abroad", "equals": True},
        },
    ]
    at_home = fee_demand(_with_fees(birth, fees), {"applicant_abroad": False})
    abroad = fee_demand(_with_fees(birth, fees), {"applicant_abroad": True})
    assert (at_home["total_paise"], abroad["total_paise"]) == (1000, 6000)
    assert [item["code"] for item in abroad["items"]] == ["registration", "abroad"]


def _filed(definition):
    file_id = str(uuid.uuid4())
    stream = Stream(file_id)
    form = sample_form(definition)
    events = submit_application(
        file_id, definition, KOCHI, CITIZEN, form, sample_uploads(definition, form)
    )
    return stream, stream.add(events, CITIZEN)


def test_a_file_whose_fee_is_unpaid_is_not_decided_until_it_is_paid():
    licence = CATALOGUE.get_service("trade-licence", 1)
    stream, state = _filed(licence)
    assert state.fee_due_paise == licence["fees"][0]["amount_paise"] > 0
    path = [("verify", CLERK)]
    machine = state.machine
    # walk the happy path up to the decision
    while True:
        action = next(
            a
            for a in machine.actions_from(state.state)
            if a.name not in ("return_for_clarification", "reject")
        )
        if machine.is_final(action.to_state):
            break
        actor = (
            CLERK
            if state.waits_on == "clerk"
            else Actor(f"{state.waits_on}-1", (state.waits_on,), KOCHI)
        )
        path.append((action.name, actor))
        state = stream.add(take_action(state, action.name, actor, "ok"), actor)
    decider = Actor(f"{state.waits_on}-1", (state.waits_on,), KOCHI)
    with pytest.raises(ActionNotAllowed, match="fee"):
        take_action(state, action.name, decider, "ok")

    state = stream.add(record_payment(state, "pay-1", "fake", state.fee_due_paise), CITIZEN)
    assert state.fee_due_paise == 0
    assert state.timeline[-1]["action"] == "pay_fee"
    # The provider calls back again: the same payment counts once.
    assert record_payment(state, "pay-1", "fake", licence["fees"][0]["amount_paise"]) == []
    state = stream.add(take_action(state, action.name, decider, "ok"), decider)
    assert state.is_final


def test_money_taken_is_always_recorded_and_an_overpayment_is_owed_back():
    licence = CATALOGUE.get_service("trade-licence", 1)
    stream, state = _filed(licence)
    due = state.fee_due_paise
    state = stream.add(record_payment(state, "pay-1", "fake", due - 100), CITIZEN)
    assert (state.fee_due_paise, state.refund_due_paise) == (100, 0)
    state = stream.add(record_payment(state, "pay-2", "fake", due), CITIZEN)
    assert (state.fee_due_paise, state.refund_due_paise) == (0, due - 100)
    assert state.view()["refund_due_paise"] == due - 100
    assert [entry["role"] for entry in state.timeline[-2:]] == ["payment_provider"] * 2


def test_an_unpaid_file_offers_no_grant_but_can_still_be_refused():
    licence = CATALOGUE.get_service("trade-licence", 1)
    stream, state = _filed(licence)
    machine = state.machine
    granting = {action.name for action in machine.actions.values() if machine.grants(action)}
    while not state.is_final:
        assert not granting & set(state.allowed_actions())
        actor = Actor(f"{state.waits_on}-1", (state.waits_on,), KOCHI)
        offered = state.allowed_actions()
        action = "reject" if "reject" in offered else offered[0]
        state = stream.add(take_action(state, action, actor, "not a trade"), actor)
    assert machine.states[state.state].outcome == "refused"


# -- documents added later -------------------------------------------------------


def test_the_applicant_attaches_a_document_when_a_clarification_asks(birth):
    stream, state = _filed(birth)
    spec = next(doc for doc in birth["documents"] if "condition" not in doc)
    new = upload(spec["formats"][0], 100, "again")
    # While the office holds the file, what it checks must not change under it.
    with pytest.raises(ActionNotAllowed):
        attach_document(state, birth, spec["code"], new, CITIZEN)

    state = stream.add(take_action(state, "return_for_clarification", CLERK, "clearer copy"), CLERK)
    state = stream.add(attach_document(state, birth, spec["code"], new, CITIZEN), CITIZEN)
    assert state.documents[spec["code"]]["sha256"] == new.sha256
    assert state.timeline[-1]["action"] == "attach_document"
    assert state.state == "clarification_requested"

    with pytest.raises(Forbidden):
        attach_document(state, birth, spec["code"], new, CLERK)
    with pytest.raises(InvalidInput) as raised:
        attach_document(state, birth, "love_letter", new, CITIZEN)
    assert raised.value.problems[0]["code"] == "document_unknown"
    with pytest.raises(InvalidInput) as raised:
        attach_document(state, birth, "rdo_order", new, CITIZEN)  # not late: not needed
    assert raised.value.problems[0]["code"] == "document_not_applicable"
    with pytest.raises(InvalidInput):
        attach_document(state, birth, spec["code"], upload("image/gif"), CITIZEN)


# -- versions --------------------------------------------------------------------


def test_a_definition_change_does_not_change_a_file_filed_under_the_old_version(birth):
    stream, state = _filed(birth)
    changed = {
        **birth,
        "workflow": {**birth["workflow"], "initial_state": "verified"},
        "content_hash": "f" * 64,
        "version": 2,
    }
    # A new version's file starts elsewhere ...
    other_stream = Stream(str(uuid.uuid4()))
    other = other_stream.add(submission("g", changed, KOCHI, CITIZEN), CITIZEN)
    assert other.state == "verified"
    # ... while the old file, replayed from its events, keeps its version.
    state = stream.add(take_action(state, "verify", CLERK), CLERK)
    assert (state.definition_version, state.definition_hash) == (1, birth["content_hash"])
    assert state.state == "verified" and state.timeline[0]["to_state"] == "submitted"


@pytest.mark.parametrize(
    ("timing", "late_fee"),
    [
        ("within_21_days", 0),
        ("within_30_days", 200),
        ("within_one_year", 500),
        ("after_one_year", 1000),
    ],
)
def test_a_late_birth_registration_owes_the_late_fee_of_its_period(birth, timing, late_fee):
    form = sample_form(birth, {"registration_timing": timing})
    assert fee_demand(birth, form)["total_paise"] == late_fee
    needed = {spec["code"] for spec in documents_needed(birth, form)}
    assert ("late_registration_affidavit" in needed) == (
        timing in ("within_one_year", "after_one_year")
    )
    assert ("rdo_order" in needed) == (timing == "after_one_year")


def test_direction_overrides_are_refused_but_malayalam_joiners_are_not(birth):
    form = {**sample_form(birth), "mother_name": "Asha\u202eanemoM"}
    problems = application_problems(birth, form, sample_uploads(birth, form))
    assert [p["code"] for p in problems] == ["control_characters"]
    # ZWJ and ZWNJ are part of Malayalam spelling (chillu letters, conjuncts).
    form = {**sample_form(birth), "mother_name": "ആശ\u200dമേനോൻ\u200c"}
    assert application_problems(birth, form, sample_uploads(birth, form)) == []


@pytest.mark.parametrize("invisible", ["\u200b", "\u2060", "\ufeff"])
def test_invisible_characters_are_refused_so_that_names_that_look_alike_are_alike(birth, invisible):
    form = {**sample_form(birth), "mother_name": f"Asha{invisible} Menon"}
    problems = application_problems(birth, form, sample_uploads(birth, form))
    assert [(p["field"], p["code"]) for p in problems] == [
        ("form.mother_name", "control_characters")
    ]


def test_a_whole_number_without_bounds_in_the_form_is_still_one_every_client_reads_exactly():
    trade = Catalogue.load().get_service("trade-licence")
    unbounded = next(
        spec["name"]
        for spec in trade["fields"]
        if spec["type"] == "integer" and "maximum" not in spec and spec.get("required")
    )
    for answer, code in (
        (2**53 - 1, None),
        (2**53, "above_maximum"),
        (-(10**400), "below_minimum"),
    ):
        form = {**sample_form(trade), unbounded: answer}
        codes = [p["code"] for p in application_problems(trade, form, sample_uploads(trade, form))]
        assert codes == ([code] if code else []), answer


KOCHI_CORPORATION = {"code": KOCHI, "type": "corporation", "dissolved_on": None}


def test_the_local_body_must_be_in_the_directory_and_offer_the_service(birth):
    form = sample_form(birth)
    uploads = sample_uploads(birth, form)
    assert (
        application_problems(
            birth, form, uploads, local_body=KOCHI_CORPORATION, local_body_code=KOCHI
        )
        == []
    )
    unknown = application_problems(
        birth, form, uploads, local_body=None, local_body_code="KL-ZZZ-X"
    )
    assert [(p["field"], p["code"]) for p in unknown] == [("local_body", "unknown_local_body")]
    block = {"code": "KL-EKM-BP01", "type": "block_panchayat", "dissolved_on": None}
    elsewhere = application_problems(birth, form, uploads, "ml", block, "KL-EKM-BP01")
    assert [p["code"] for p in elsewhere] == ["not_offered_here"]
    assert "നൽകുന്നില്ല" in elsewhere[0]["message"]
    dissolved = {**KOCHI_CORPORATION, "dissolved_on": "2030-01-01"}
    gone = application_problems(birth, form, uploads, local_body=dissolved, local_body_code=KOCHI)
    assert [p["code"] for p in gone] == ["unknown_local_body"]
