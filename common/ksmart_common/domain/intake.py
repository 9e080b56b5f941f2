"""Checking an application against the definition it is filed under: every
problem at once, in the applicant's language.

The platform's promise is that a citizen learns every requirement of an
application in one answer, never one rejection at a time. So nothing here
stops at the first problem: `application_problems` walks every field and
every document of the definition and returns the whole list (empty when all
is well). It is pure: the definition, the answers and what is known of the
uploaded documents in, problems out.

A problem is `{"field", "code", "message"}`: `field` is where it is
("form.date_of_birth", "documents.ration_card"), `code` a stable name a
client can act on ("required", "pattern", ...), `message` the sentence for
the person, in the requested language, led by the field's own label.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from ksmart_common.domain.documents import DOCUMENT_TYPES
from ksmart_common.domain.vocabulary import DEFAULT_LANGUAGE, LANGUAGES

# A string answer longer than this is refused unless the field says otherwise.
DEFAULT_MAX_LENGTH = 500

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

MESSAGES: dict[str, dict[str, str]] = {
    "required": {"en": "is required", "ml": "നിർബന്ധമായും നൽകണം"},
    "unknown_field": {
        "en": "is not a question of this form",
        "ml": "ഈ ഫോമിലെ ചോദ്യമല്ല",
    },
    "not_applicable": {
        "en": "does not apply given your other answers; leave it out",
        "ml": "നിങ്ങളുടെ മറ്റ് ഉത്തരങ്ങൾ അനുസരിച്ച് ഇത് ബാധകമല്ല; ഒഴിവാക്കുക",
    },
    "not_text": {"en": "must be text", "ml": "എഴുത്തായി നൽകണം"},
    "control_characters": {
        "en": "must not contain control, direction-changing or unassigned characters",
        "ml": "നിയന്ത്രണ അക്ഷരങ്ങളോ ദിശ മാറ്റുന്ന അക്ഷരങ്ങളോ പാടില്ല",
    },
    "too_long": {
        "en": "must be at most {max_length} characters",
        "ml": "പരമാവധി {max_length} അക്ഷരങ്ങൾ",
    },
    "pattern": {
        "en": "is not in the expected form ({help})",
        "ml": "പ്രതീക്ഷിച്ച രൂപത്തിലല്ല ({help})",
    },
    "not_date": {
        "en": "must be a date written as YYYY-MM-DD",
        "ml": "YYYY-MM-DD എന്ന രൂപത്തിലുള്ള തീയതി ആയിരിക്കണം",
    },
    "not_integer": {"en": "must be a whole number", "ml": "പൂർണ്ണസംഖ്യ ആയിരിക്കണം"},
    "below_minimum": {
        "en": "must be at least {minimum}",
        "ml": "കുറഞ്ഞത് {minimum} ആയിരിക്കണം",
    },
    "above_maximum": {
        "en": "must be at most {maximum}",
        "ml": "പരമാവധി {maximum} ആയിരിക്കണം",
    },
    "not_phone": {
        "en": (
            "must be a phone number with its country code, such as +919847012345 or +971501234567"
        ),
        "ml": "രാജ്യ കോഡ് ഉൾപ്പെടെയുള്ള ഫോൺ നമ്പർ ആയിരിക്കണം, ഉദാ: +919847012345 അല്ലെങ്കിൽ +971501234567",
    },
    "not_email": {
        "en": "must be an email address",
        "ml": "ഇമെയിൽ വിലാസം ആയിരിക്കണം",
    },
    "not_choice": {
        "en": "must be one of: {choices}",
        "ml": "ഇവയിൽ ഒന്നായിരിക്കണം: {choices}",
    },
    "not_boolean": {"en": "must be true or false", "ml": "true അല്ലെങ്കിൽ false ആയിരിക്കണം"},
    "document_missing": {
        "en": "is missing: upload it and attach it",
        "ml": "ചേർത്തിട്ടില്ല: അപ്‌ലോഡ് ചെയ്ത് ചേർക്കുക",
    },
    "document_unknown": {
        "en": "is not a document this service asks for",
        "ml": "ഈ സേവനത്തിന് ആവശ്യമുള്ള രേഖയല്ല",
    },
    "document_not_applicable": {
        "en": "is not needed given your answers; leave it out",
        "ml": "നിങ്ങളുടെ ഉത്തരങ്ങൾ അനുസരിച്ച് ഈ രേഖ ആവശ്യമില്ല; ഒഴിവാക്കുക",
    },
    "document_not_uploaded": {
        "en": "refers to no document you uploaded",
        "ml": "നിങ്ങൾ അപ്‌ലോഡ് ചെയ്ത ഒരു രേഖയുമല്ല",
    },
    "document_format": {
        "en": "must be {formats}; the uploaded file is {actual}",
        "ml": "{formats} ആയിരിക്കണം; അപ്‌ലോഡ് ചെയ്ത ഫയൽ {actual} ആണ്",
    },
    "document_too_large": {
        "en": "must be at most {limit}; the uploaded file is {actual}",
        "ml": "പരമാവധി {limit}; അപ്‌ലോഡ് ചെയ്ത ഫയൽ {actual} ആണ്",
    },
    "unknown_local_body": {
        "en": "{body} is not a local body of the directory",
        "ml": "{body} ഡയറക്ടറിയിലുള്ള ഒരു തദ്ദേശ സ്ഥാപനമല്ല",
    },
    "not_offered_here": {
        "en": "this service is not offered by a {kind}; it is offered by: {kinds}",
        "ml": "ഈ സേവനം {kind} നൽകുന്നില്ല; ഇവ നൽകുന്നു: {kinds}",
    },
    "not_an_object": {
        "en": "must be an object of answers",
        "ml": "ഉത്തരങ്ങളുടെ ഒരു ഒബ്ജക്റ്റ് ആയിരിക്കണം",
    },
}


@dataclass(frozen=True)
class Upload:
    """What the platform knows of an uploaded document: measured on its
    content when it was stored, never taken from the uploader's word."""

    sha256: str
    media_type: str
    size_bytes: int
    filename: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "media_type": self.media_type,
            "size_bytes": self.size_bytes,
            "filename": self.filename,
        }


def language(requested: str | None) -> str:
    """The language to answer in: `en` or `ml`, English unless asked otherwise.

    Takes a bare code or an Accept-Language header ("ml-IN,ml;q=0.9,en;q=0.8"):
    the first listed language we speak wins."""
    for part in (requested or "").split(","):
        code = part.split(";")[0].strip().lower().split("-")[0]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def message(code: str, lang: str, label: Mapping[str, str] | None = None, **values: Any) -> str:
    text = MESSAGES[code][lang].format(**values)
    return f"{label[lang]}: {text}" if label else text


def applies(spec: Mapping[str, Any], form: Mapping[str, Any]) -> bool:
    """Whether a field, document or fee applies to this form: it has no
    condition, or the form's answer to the condition's field matches it."""
    condition = spec.get("condition")
    if not condition:
        return True
    answer = form.get(condition["field"])
    if "equals" in condition:
        return _same(answer, condition["equals"])
    return any(_same(answer, value) for value in condition.get("in", ()))


def _same(answer: Any, value: Any) -> bool:
    # Type-aware: 1 == True in Python, but 1 is not the answer "yes".
    return answer == value and type(answer) is type(value)


def application_problems(
    definition: Mapping[str, Any],
    form: Any,
    documents: Mapping[str, Upload | None],
    lang: str = DEFAULT_LANGUAGE,
    local_body: Mapping[str, Any] | None = None,
    local_body_code: str | None = None,
) -> list[dict[str, str]]:
    """Every problem of an application, in `lang`; [] when it may be filed.

    documents: document code -> the upload it names, or None when the named
    upload does not exist or is not the applicant's.
    local_body: the directory's entry for the body applied to (None when
    the directory has no `local_body_code`); both None: not checked."""
    problems: list[dict[str, str]] = []
    if local_body_code is not None:
        problems.extend(_local_body_problems(definition, local_body, local_body_code, lang))
    if not isinstance(form, Mapping):
        return [*problems, _problem("form", "not_an_object", message("not_an_object", lang))]
    specs = {spec["name"]: spec for spec in definition["fields"]}
    for name in form:
        if name not in specs:
            problems.append(
                _problem(
                    f"form.{name}", "unknown_field", f"{name}: {message('unknown_field', lang)}"
                )
            )
    for spec in definition["fields"]:
        problems.extend(_field_problems(spec, form, lang))
    problems.extend(document_problems(definition, form, documents, lang))
    return problems


def _local_body_problems(
    definition: Mapping[str, Any],
    local_body: Mapping[str, Any] | None,
    code: str,
    lang: str,
) -> list[dict[str, str]]:
    if local_body is None or local_body.get("dissolved_on"):
        return [
            _problem(
                "local_body", "unknown_local_body", message("unknown_local_body", lang, body=code)
            )
        ]
    offered_by = definition["applicable_to"]
    if local_body["type"] in offered_by:
        return []
    kinds = ", ".join(kind.replace("_", " ") for kind in offered_by)
    kind = local_body["type"].replace("_", " ")
    return [
        _problem(
            "local_body",
            "not_offered_here",
            message("not_offered_here", lang, kind=kind, kinds=kinds),
        )
    ]


def _field_problems(spec: Mapping[str, Any], form: Mapping[str, Any], lang: str) -> list[dict]:
    name, label = spec["name"], spec["label"]
    where = f"form.{name}"
    answer = form.get(name)
    answered = answer is not None and not (isinstance(answer, str) and not answer.strip())
    if not applies(spec, form):
        if answered:
            return [_problem(where, "not_applicable", message("not_applicable", lang, label))]
        return []
    if not answered:
        if spec["required"]:
            return [_problem(where, "required", message("required", lang, label))]
        return []
    code, values = _answer_problem(spec, answer, lang)
    if code is None:
        return []
    return [_problem(where, code, message(code, lang, label, **values))]


def _answer_problem(
    spec: Mapping[str, Any], answer: Any, lang: str
) -> tuple[str | None, dict[str, Any]]:
    """The first thing wrong with one answer (a code and its values), if any:
    one answer gets one problem, the one to fix first."""
    field_type = spec["type"]
    if field_type == "boolean":
        return (None, {}) if isinstance(answer, bool) else ("not_boolean", {})
    if field_type == "integer":
        if isinstance(answer, bool) or not isinstance(answer, int):
            return "not_integer", {}
        minimum = spec.get("minimum", -MAX_SAFE_INTEGER)
        maximum = spec.get("maximum", MAX_SAFE_INTEGER)
        if answer < minimum:
            return "below_minimum", {"minimum": minimum}
        if answer > maximum:
            return "above_maximum", {"maximum": maximum}
        return None, {}
    if not isinstance(answer, str):
        return "not_text", {}
    if any(_unprintable(char) for char in answer):
        return "control_characters", {}
    max_length = spec.get("max_length", DEFAULT_MAX_LENGTH)
    if len(answer) > max_length:
        return "too_long", {"max_length": max_length}
    if field_type == "string" and "pattern" in spec and not re.fullmatch(spec["pattern"], answer):
        return "pattern", {"help": spec["help"][lang]}
    if field_type == "date" and not _is_date(answer):
        return "not_date", {}
    if field_type == "phone" and not E164.match(answer):
        return "not_phone", {}
    if field_type == "email" and not EMAIL.match(answer):
        return "not_email", {}
    if field_type == "choice":
        values = [choice["value"] for choice in spec["choices"]]
        if answer not in values:
            labels = ", ".join(
                f"{choice['value']} ({choice['label'][lang]})" for choice in spec["choices"]
            )
            return "not_choice", {"choices": labels}
    return None, {}


# Bidirectional overrides and isolates can make text read differently from
# what is stored, and invisible characters (zero-width space, word joiner,
# byte-order mark) make two names that look the same differ. Zero-width
# joiner and non-joiner are not refused: Malayalam spelling uses them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
INVISIBLE = frozenset("\u200b\u2060\ufeff")
# Where a form sets no bounds, a whole number must still be one that every
# client reads exactly (JSON numbers are doubles in most languages).
MAX_SAFE_INTEGER = 2**53 - 1


def _unprintable(char: str) -> bool:
    # Cc control, Cs lone surrogate, Co private use, Cn unassigned
    return (
        unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn")
        or char in BIDI_CONTROLS
        or char in INVISIBLE
    )


def _is_date(text: str) -> bool:
    if not ISO_DATE.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def document_problems(
    definition: Mapping[str, Any],
    form: Mapping[str, Any],
    documents: Mapping[str, Upload | None],
    lang: str = DEFAULT_LANGUAGE,
) -> list[dict[str, str]]:
    """Every problem of the documents attached to an application."""
    problems = []
    specs = {spec["code"]: spec for spec in definition["documents"]}
    for code in documents:
        if code not in specs:
            problems.append(
                _problem(
                    f"documents.{code}",
                    "document_unknown",
                    f"{code}: {message('document_unknown', lang)}",
                )
            )
    for spec in definition["documents"]:
        code, label = spec["code"], spec["label"]
        where = f"documents.{code}"
        attached = code in documents
        if not applies(spec, form):
            if attached:
                problems.append(
                    _problem(
                        where,
                        "document_not_applicable",
                        message("document_not_applicable", lang, label),
                    )
                )
            continue
        if not attached:
            if spec["required"]:
                problems.append(
                    _problem(where, "document_missing", message("document_missing", lang, label))
                )
            continue
        problems.extend(upload_problems(spec, documents[code], lang))
    return problems


def upload_problems(spec: Mapping[str, Any], upload: Upload | None, lang: str) -> list[dict]:
    """What is wrong with one upload as the document `spec` describes, if anything."""
    where, label = f"documents.{spec['code']}", spec["label"]
    if upload is None:
        return [
            _problem(where, "document_not_uploaded", message("document_not_uploaded", lang, label))
        ]
    problems = []
    if upload.media_type not in spec["formats"]:
        formats = " / ".join(_format_name(media) for media in spec["formats"])
        actual = _format_name(upload.media_type)
        problems.append(
            _problem(
                where,
                "document_format",
                message("document_format", lang, label, formats=formats, actual=actual),
            )
        )
    if upload.size_bytes > spec["max_bytes"]:
        problems.append(
            _problem(
                where,
                "document_too_large",
                message(
                    "document_too_large",
                    lang,
                    label,
                    limit=_size(spec["max_bytes"]),
                    actual=_size(upload.size_bytes),
                ),
            )
        )
    return problems


def _format_name(media_type: str) -> str:
    kind = DOCUMENT_TYPES.get(media_type)
    return kind.name if kind else media_type


def _size(size_bytes: int) -> str:
    if size_bytes >= 1024 * 1024:
        return f"{size_bytes / (1024 * 1024):.1f} MB"
    return f"{max(1, round(size_bytes / 1024))} KB"


def _problem(field: str, code: str, text: str) -> dict[str, str]:
    return {"field": field, "code": code, "message": text}


# -- the fee ------------------------------------------------------------------


def fee_demand(definition: Mapping[str, Any], form: Mapping[str, Any]) -> dict[str, Any]:
    """The fee an application owes when it is filed: the definition's fee
    items whose condition holds, and their total."""
    items = [
        {"code": item["code"], "label": item["label"], "amount_paise": item["amount_paise"]}
        for item in definition.get("fees", [])
        if applies(item, form)
    ]
    return {"items": items, "total_paise": sum(item["amount_paise"] for item in items)}
