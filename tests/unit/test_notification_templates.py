"""The notification templates (English and Malayalam) and their rendering:
every template renders in both languages within the SMS budgets, values are
inserted verbatim, broken templates are refused with every problem named, and
dates and amounts are written as a Kerala office writes them."""

import json
import string
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ksmart_catalogue.catalogue import DEFINITIONS_DIR
from ksmart_common.domain.roles import OFFICIAL_ROLES
from ksmart_notifications import rendering
from ksmart_notifications.rendering import (
    FOOTER,
    ROLE_LABELS,
    SMS_PREFIX,
    MissingParameters,
    TemplateError,
    UnknownTemplate,
    format_date,
    format_rupees,
    load_templates,
    render,
    role_label,
    template,
    template_names,
)

FILE_NUMBER = "KL-EKM-KOC/BR/2026/000123"

# What each template takes, and its flags: (parameters, urgent, statutory, in_app).
EXPECTED = {
    "one_time_code": ({"code", "minutes"}, True, True, False),
    "counter_consent_code": ({"code", "minutes", "office"}, True, True, False),
    "application_received": (
        {"service_name", "file_number", "local_body_name", "due_date"},
        False,
        True,
        True,
    ),
    "application_received_fee_due": (
        {"service_name", "file_number", "local_body_name", "due_date", "amount"},
        False,
        True,
        True,
    ),
    "clarification_requested": (
        {"service_name", "file_number", "remarks", "reply_by"},
        False,
        True,
        True,
    ),
    "fee_demanded": ({"service_name", "file_number", "amount", "remarks"}, False, True, True),
    "file_progress": ({"service_name", "file_number", "state_label"}, False, False, True),
    "application_approved": ({"service_name", "file_number"}, False, True, True),
    "application_refused": ({"service_name", "file_number", "remarks"}, False, True, True),
    "file_closed": ({"service_name", "file_number", "remarks"}, False, True, True),
    "certificate_ready": (
        {"certificate_title", "certificate_number", "file_number"},
        False,
        True,
        True,
    ),
    "payment_received": ({"amount", "file_number", "service_name"}, False, False, True),
    "file_escalated": ({"service_name", "file_number", "to_role"}, False, False, True),
}

SAMPLES = {
    "en": {
        "code": "482913",
        "minutes": "10",
        "office": "Kochi Municipal Corporation",
        "service_name": "Birth registration and certificate",
        "file_number": FILE_NUMBER,
        "local_body_name": "Kochi Municipal Corporation",
        "due_date": "12 December 2026",
        "amount": "₹1,250",
        "remarks": "Please attach the hospital's report of the birth.",
        "reply_by": "19 September 2026",
        "state_label": "Verified, awaiting the Secretary's decision",
        "certificate_title": "Birth certificate",
        "certificate_number": FILE_NUMBER,
        "to_role": "the Section Officer",
    },
    "ml": {
        "code": "482913",
        "minutes": "10",
        "office": "കൊച്ചി മുനിസിപ്പൽ കോർപ്പറേഷൻ",
        "service_name": "ജനന രജിസ്ട്രേഷനും സർട്ടിഫിക്കറ്റും",
        "file_number": FILE_NUMBER,
        "local_body_name": "കൊച്ചി മുനിസിപ്പൽ കോർപ്പറേഷൻ",
        "due_date": "2026 ഡിസംബർ 12",
        "amount": "₹1,250",
        "remarks": "ആശുപത്രിയിൽ നിന്നുള്ള ജനന റിപ്പോർട്ട് ചേർക്കുക.",
        "reply_by": "2026 സെപ്റ്റംബർ 19",
        "state_label": "പരിശോധിച്ചു, സെക്രട്ടറിയുടെ തീരുമാനം കാത്തിരിക്കുന്നു",
        "certificate_title": "ജനന സർട്ടിഫിക്കറ്റ്",
        "certificate_number": FILE_NUMBER,
        "to_role": "സെക്ഷൻ ഓഫീസർ",
    },
}
# Aim (realistic values) and hard limit (the longest values the catalogue has).
SMS_AIM = {"en": 160, "ml": 201}
SMS_LIMIT = {"en": 306, "ml": 268}
# GSM 03.38's basic character set: an English SMS written only in it costs
# 160 characters a segment rather than UCS-2's 70.
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
ZERO_WIDTH_JOINERS = {"\u200c", "\u200d"}


def literal(text: str) -> str:
    """A template text with its placeholders taken out."""
    return "".join(part for part, _, _, _ in string.Formatter().parse(text))


def is_malayalam(char: str) -> bool:
    return "\u0d00" <= char <= "\u0d7f"


def longest_catalogue_values() -> dict[str, dict[str, str]]:
    """The longest service name, state label and certificate title of the
    catalogue, per language: the worst an SMS must carry."""
    longest: dict[str, dict[str, str]] = {"en": {}, "ml": {}}

    def keep(parameter: str, texts: dict[str, str]) -> None:
        for language in ("en", "ml"):
            if len(texts[language]) > len(longest[language].get(parameter, "")):
                longest[language][parameter] = texts[language]

    for path in sorted(Path(DEFINITIONS_DIR).glob("*/v*.json")):
        definition = json.loads(path.read_text(encoding="utf-8"))
        keep("service_name", definition["name"])
        for state in definition["workflow"]["states"].values():
            keep("state_label", state["label"])
        if definition.get("certificate"):
            keep("certificate_title", definition["certificate"]["title"])
    return longest


# -- the shipped templates ----------------------------------------------------


def test_the_templates_are_the_expected_ones():
    assert set(template_names()) == set(EXPECTED)
    assert template_names() == tuple(sorted(EXPECTED))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameters_and_flags(name):
    parameters, urgent, statutory, in_app = EXPECTED[name]
    loaded = template(name)
    assert loaded.name == name
    assert loaded.parameters == parameters
    assert (loaded.urgent, loaded.statutory, loaded.in_app) == (urgent, statutory, in_app)


def test_only_the_codes_are_urgent_and_kept_out_of_the_feed():
    codes = ["counter_consent_code", "one_time_code"]
    assert [name for name in template_names() if template(name).urgent] == codes
    assert [name for name in template_names() if not template(name).in_app] == codes


@pytest.mark.parametrize("language", ["en", "ml"])
def test_a_consent_code_names_the_counter_and_says_to_give_it_only_if_asked(language):
    rendered = render("counter_consent_code", language, SAMPLES[language])
    for text in (rendered.sms, rendered.text):
        assert SAMPLES[language]["office"] in text and "482913" in text
    if language == "en":
        assert "file an application in your name" in rendered.sms
        assert "only if you asked them" in rendered.sms
    else:
        assert "നിങ്ങളുടെ പേരിൽ" in rendered.sms and "ആവശ്യപ്പെട്ടെങ്കിൽ മാത്രം" in rendered.sms


def test_informational_templates_are_the_ones_a_citizen_may_turn_off():
    informational = {name for name in template_names() if not template(name).statutory}
    assert informational == {"file_progress", "payment_received", "file_escalated"}


def test_templates_load_once():
    assert template("file_progress") is template("file_progress")


def test_unknown_template_is_a_clear_key_error():
    with pytest.raises(KeyError) as caught:
        template("no_such_template")
    assert isinstance(caught.value, UnknownTemplate)
    assert str(caught.value) == "no notification template is named 'no_such_template'"
    with pytest.raises(KeyError):
        render("no_such_template", "en", {})


@pytest.mark.parametrize("language", ["en", "ml"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_template_renders(name, language):
    rendered = render(name, language, SAMPLES[language])
    for text in (rendered.subject, rendered.sms, rendered.text):
        assert "{" not in text and "}" not in text
    for line in (rendered.subject, rendered.sms):
        assert line == line.strip() and "\n" not in line
    assert rendered.sms.startswith(SMS_PREFIX[language])
    assert rendered.text.endswith("\n\n" + FOOTER[language])
    assert FOOTER[language] not in rendered.text[: -len(FOOTER[language])]
    assert len(rendered.sms) <= SMS_AIM[language], rendered.sms
    if "file_number" in template(name).parameters:
        for text in (rendered.subject, rendered.sms, rendered.text):
            assert FILE_NUMBER in text


@pytest.mark.parametrize("language", ["en", "ml"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sms_stays_within_its_limit_with_the_longest_catalogue_values(name, language):
    params = {**SAMPLES[language], **longest_catalogue_values()[language]}
    assert len(render(name, language, params).sms) <= SMS_LIMIT[language]


def test_the_footers():
    assert FOOTER["en"] == "— K-Smart, Local Self Government Department, Kerala"
    assert FOOTER["ml"] == "— കെ-സ്മാർട്ട്, തദ്ദേശ സ്വയംഭരണ വകുപ്പ്, കേരളം"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malayalam_is_written_in_malayalam_script(name):
    texts = template(name).texts["ml"]
    for key, text in texts.items():
        # The words are Malayalam; only values (file numbers, amounts) are not.
        words = literal(text)
        letters = [char for char in words if unicodedata.category(char).startswith("L")]
        assert letters and all(is_malayalam(char) for char in letters), (key, text)
        # One spelling: atomic chillus, no joiners, NFC.
        assert not ZERO_WIDTH_JOINERS & set(text), (key, text)
        assert unicodedata.normalize("NFC", text) == text
    rendered = render(name, "ml", SAMPLES["ml"])
    for text in (rendered.subject, rendered.sms, rendered.text):
        # letters and the vowel signs and viramas that join them
        letters = [char for char in text if unicodedata.category(char)[0] in "LM"]
        share = sum(map(is_malayalam, letters)) / len(letters)
        assert share >= 0.6, (share, text)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_english_sms_wording_fits_the_gsm_alphabet(name):
    # The values may still bring other characters (₹ does); the wording must not.
    assert set(literal(template(name).texts["en"]["sms"])) <= GSM_BASIC


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_english_has_no_malayalam_and_no_signature(name):
    for key, text in template(name).texts["en"].items():
        assert not any(is_malayalam(char) for char in text), key
    for language in ("en", "ml"):
        # the renderer signs; a template does not
        assert "—" not in template(name).texts[language]["text"]


def test_refusal_names_the_right_to_service_act():
    texts = template("application_refused").texts
    assert (
        "appellate authority under the Kerala State Right to Service Act, 2012"
        in (texts["en"]["text"])
    )
    assert "2012-ലെ കേരള സംസ്ഥാന സേവനാവകാശ നിയമപ്രകാരം" in texts["ml"]["text"]


# -- rendering ----------------------------------------------------------------


def test_a_missing_parameter_is_named_with_every_other_missing_one():
    with pytest.raises(ValueError) as caught:
        render("application_received_fee_due", "ml", {"file_number": FILE_NUMBER})
    assert isinstance(caught.value, MissingParameters)
    assert caught.value.template_name == "application_received_fee_due"
    assert caught.value.missing == ("amount", "due_date", "local_body_name", "service_name")
    message = str(caught.value)
    assert "application_received_fee_due" in message
    for name in ("amount", "due_date", "local_body_name", "service_name"):
        assert name in message
    assert "file_number" not in message.split(":", 1)[1]


def test_extra_parameters_are_ignored():
    params = {**SAMPLES["en"], "unused": "{nothing}"}
    assert render("application_approved", "en", params) == render(
        "application_approved", "en", SAMPLES["en"]
    )


def test_a_value_with_braces_is_inserted_verbatim():
    remarks = "Attach {file_number} and {0} and {{x}} and {remarks!r} and {a.b[c]} and }{"
    rendered = render("application_refused", "en", {**SAMPLES["en"], "remarks": remarks})
    assert f"Reason: {remarks}\n" in rendered.text
    assert rendered.text.count(FILE_NUMBER) == 1


def test_control_characters_in_values_become_spaces_but_newlines_stay():
    remarks = "\x1b[31mred\tline one\r\nline two\rthree\x00\x7f\x85end"
    rendered = render("file_closed", "en", {**SAMPLES["en"], "remarks": remarks})
    assert "Office's note:  [31mred line one\nline two three   end\n" in rendered.text


def test_values_must_be_texts():
    with pytest.raises(TypeError, match="due_date"):
        render("application_received", "en", {**SAMPLES["en"], "due_date": date(2026, 12, 12)})


@pytest.mark.parametrize(
    ("asked", "given"),
    [("en", "en"), ("ml", "ml"), ("ML", "ml"), ("ml-IN", "ml"), ("en_GB", "en"), ("ta", "en")],
)
def test_language_choice(asked, given):
    rendered = render("application_approved", asked, SAMPLES[given])
    assert rendered.text.endswith(FOOTER[given])


def test_an_unknown_language_falls_back_to_english():
    assert render("file_progress", "fr", SAMPLES["en"]) == render(
        "file_progress", "en", SAMPLES["en"]
    )
    assert render("file_progress", None, SAMPLES["en"]).sms.startswith("K-Smart: ")


def expected_rendering(text: str, values: dict[str, str]) -> str:
    """What a template text becomes, built without str.format."""
    out = []
    for part, field, _, _ in string.Formatter().parse(text):
        out.append(part)
        if field is not None:
            out.append(rendering.clean_value(values[field]))
    return "".join(out)


@given(
    name=st.sampled_from(sorted(EXPECTED)),
    language=st.sampled_from(["en", "ml"]),
    data=st.data(),
)
def test_values_are_never_reinterpreted(name, language, data):
    parameters = sorted(template(name).parameters)
    values = {
        parameter: data.draw(
            st.one_of(
                st.text(),
                st.text(alphabet="{}!:.[]0123456789abcdef_ \n\r\t\x00"),
                st.sampled_from([f"{{{p}}}" for p in parameters] + ["{}", "{{", "}}"]),
            ),
            label=parameter,
        )
        for parameter in parameters
    }
    rendered = render(name, language, values)
    texts = template(name).texts[language]
    assert rendered.subject == expected_rendering(texts["subject"], values)
    assert rendered.sms == expected_rendering(texts["sms"], values)
    assert rendered.text == expected_rendering(texts["text"], values) + "\n\n" + FOOTER[language]


@given(st.text())
def test_clean_values_hold_no_control_character_but_newline(value):
    cleaned = rendering.clean_value(value)
    assert all(char == "\n" or unicodedata.category(char) != "Cc" for char in cleaned)
    assert cleaned.count("\n") == value.count("\n")


# -- broken templates ---------------------------------------------------------


def good_document() -> dict:
    return {
        "urgent": False,
        "statutory": True,
        "in_app": True,
        "en": {
            "subject": "File {file_number}",
            "sms": "K-Smart: File {file_number}.",
            "text": "File {file_number}: {remarks}",
        },
        "ml": {
            "subject": "ഫയൽ നമ്പർ {file_number}",
            "sms": "കെ-സ്മാർട്ട്: ഫയൽ നമ്പർ {file_number}.",
            "text": "ഫയൽ നമ്പർ {file_number}: {remarks}",
        },
    }


def write(folder: Path, name: str, document) -> None:
    text = document if isinstance(document, str) else json.dumps(document, ensure_ascii=False)
    (folder / f"{name}.json").write_text(text, encoding="utf-8")


def test_a_good_folder_loads(tmp_path):
    write(tmp_path, "sample", good_document())
    (tmp_path / "README.txt").write_text("not a template")
    loaded = load_templates(tmp_path)
    assert list(loaded) == ["sample"]
    assert loaded["sample"].parameters == {"file_number", "remarks"}
    assert loaded["sample"].texts["ml"]["sms"] == "കെ-സ്മാർട്ട്: ഫയൽ നമ്പർ {file_number}."


def test_a_broken_folder_is_refused_with_every_problem(tmp_path):
    write(tmp_path, "not_json", "{")
    write(tmp_path, "a_list", [])
    wrong_flags = good_document()
    wrong_flags["urgent"] = "no"
    del wrong_flags["in_app"]
    wrong_flags["priority"] = 1
    write(tmp_path, "wrong_flags", wrong_flags)
    no_malayalam = good_document()
    del no_malayalam["ml"]
    write(tmp_path, "no_malayalam", no_malayalam)
    texts_wrong = good_document()
    del texts_wrong["en"]["sms"]
    texts_wrong["en"]["body"] = "?"
    texts_wrong["ml"]["subject"] = "  "
    write(tmp_path, "texts_wrong", texts_wrong)
    different = good_document()
    different["ml"]["text"] = "ഫയൽ നമ്പർ {file_number}: {reason}"
    different["ml"]["sms"] = "കെ-സ്മാർട്ട്: {amount}"
    write(tmp_path, "different", different)
    fancy = good_document()
    fancy["en"]["text"] = "{file_number:>30} {remarks!r} {file.id} {0} {}"
    fancy["ml"]["text"] = "ഫയൽ {file_number} {remarks"
    write(tmp_path, "fancy", fancy)
    shape = good_document()
    shape["en"]["sms"] = "File {file_number}."
    shape["ml"]["subject"] = "ഫയൽ\n{file_number}"
    write(tmp_path, "shape", shape)
    write(tmp_path, "Bad-Name", good_document())

    with pytest.raises(TemplateError) as caught:
        load_templates(tmp_path)
    problems = caught.value.problems
    expected = [
        "not_json: is not JSON",
        "a_list: must be a JSON object",
        "wrong_flags: unknown key 'priority'",
        "wrong_flags: urgent must be true or false",
        "wrong_flags: in_app is missing",
        "no_malayalam: ml is missing",
        "texts_wrong: en: unknown key 'body'",
        "texts_wrong: en.sms must be a non-empty text",
        "texts_wrong: ml.subject must be a non-empty text",
        "different: ml.text must use the same placeholders as en.text"
        " (has extra ['reason'], lacks ['remarks'])",
        "different: ml.sms uses placeholders its text does not: ['amount']",
        "fancy: en.text: {file_number} may not carry a format spec or conversion",
        "fancy: en.text: {remarks} may not carry a format spec or conversion",
        "fancy: en.text: {file.id} is not a plain {name} placeholder",
        "fancy: en.text: {0} is not a plain {name} placeholder",
        "fancy: en.text: {} is not a plain {name} placeholder",
        "fancy: ml.text: braces do not pair up",
        "shape: en.sms must start with 'K-Smart: '",
        "shape: ml.subject must be one line",
        "Bad-Name: a template's name is lower-case letters",
    ]
    for wanted in expected:
        assert any(problem.startswith(wanted) for problem in problems), (wanted, problems)
    assert len(problems) == len(expected), problems
    assert "not_json" in str(caught.value) and "Bad-Name" in str(caught.value)


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(TemplateError, match="holds no templates"):
        load_templates(tmp_path)
    with pytest.raises(TemplateError, match="is not a folder"):
        load_templates(tmp_path / "missing")


# -- dates, amounts and roles -------------------------------------------------


def test_format_date_takes_the_calendar_date_where_it_is_read():
    # 19:00 UTC on 4 December: already the 5th in Kerala, still the 4th in Dubai.
    moment = datetime(2026, 12, 4, 19, 0, tzinfo=UTC)
    assert format_date(moment, "en") == "5 December 2026"
    assert format_date(moment, "ml") == "2026 ഡിസംബർ 5"
    assert format_date(moment, "en", "Asia/Dubai") == "4 December 2026"
    assert format_date(moment, "ml", "Asia/Dubai") == "2026 ഡിസംബർ 4"
    assert format_date(moment, "en", "Asia/Kolkata") == "5 December 2026"
    # and across a year's end
    new_year = datetime(2026, 12, 31, 19, 0, tzinfo=UTC)
    assert format_date(new_year, "en") == "1 January 2027"
    assert format_date(new_year, "ml", "Asia/Dubai") == "2026 ഡിസംബർ 31"


def test_format_date_month_names():
    english = [format_date(date(2026, month, 1), "en").split()[1] for month in range(1, 13)]
    assert english[0] == "January" and english[11] == "December"
    malayalam = [format_date(date(2026, month, 1), "ml").split()[1] for month in range(1, 13)]
    assert malayalam == (
        "ജനുവരി ഫെബ്രുവരി മാർച്ച് ഏപ്രിൽ മേയ് ജൂൺ ജൂലൈ ഓഗസ്റ്റ് സെപ്റ്റംബർ ഒക്ടോബർ നവംബർ ഡിസംബർ".split()
    )
    assert format_date(date(2026, 3, 9), "xx") == "9 March 2026"


def test_format_date_refuses_a_naive_moment():
    with pytest.raises(ValueError, match="timezone-aware"):
        format_date(datetime(2026, 12, 4, 19, 0), "en")


@pytest.mark.parametrize(
    ("paise", "shown"),
    [
        (0, "₹0"),
        (5, "₹0.05"),
        (99, "₹0.99"),
        (100, "₹1"),
        (1250, "₹12.50"),
        (125000, "₹1,250"),
        (99999900, "₹9,99,999"),
        (12500000, "₹1,25,000"),
        (1000000000, "₹1,00,00,000"),
        (123456789012, "₹1,23,45,67,890.12"),
    ],
)
def test_format_rupees_in_indian_grouping(paise, shown):
    assert format_rupees(paise, "en") == shown
    assert format_rupees(paise, "ml") == shown


@given(st.integers(min_value=0, max_value=10**15))
def test_format_rupees_reads_back(paise):
    shown = format_rupees(paise, "en")
    assert shown.startswith("₹")
    rupees, _, fraction = shown[1:].partition(".")
    groups = rupees.split(",")
    assert len(groups[-1]) == 3 or len(groups) == 1
    assert all(len(group) == 2 for group in groups[1:-1])
    assert 1 <= len(groups[0]) <= (3 if len(groups) == 1 else 2)
    assert int(rupees.replace(",", "")) * 100 + int(fraction or 0) == paise
    assert fraction == "" or len(fraction) == 2 and fraction != "00"


@pytest.mark.parametrize("paise", [-1, True, 12.5, "100"])
def test_format_rupees_refuses_nonsense(paise):
    with pytest.raises((TypeError, ValueError)):
        format_rupees(paise, "en")


def test_every_official_role_has_a_label_in_both_languages():
    assert set(ROLE_LABELS) == set(OFFICIAL_ROLES)
    for role in OFFICIAL_ROLES:
        assert role_label(role, "en").startswith("the ")
        assert all(is_malayalam(c) for c in role_label(role, "ml") if not c.isspace())
    assert role_label("secretary", "en") == "the Secretary"
    assert role_label("secretary", "ml") == "സെക്രട്ടറി"
    assert role_label("secretary", "ta") == "the Secretary"


def test_an_unknown_role_is_named_by_its_name():
    assert role_label("building_inspector", "en") == "building inspector"
    assert role_label("building_inspector", "ml") == "building inspector"
