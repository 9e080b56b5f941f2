"""Applying for a service: the form a service's definition (GET
/services/{code}) asks for, built as a page's inputs, and what the citizen
sent read back as the API's application.

Each field of the definition becomes one input named `field-<name>`, each
document one file input named `document-<code>`; the API's problems about
"form.<name>" and "documents.<code>" go beside them. A field or document
whose condition does not hold for the answers given is left out of what is
sent, so an answer typed before the citizen changed their mind is no
problem (with JavaScript off every field is on the page)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ksmart_common.domain.intake import applies
from ksmart_portal.problems import FormField

# A choice of this many or fewer is shown as radios, more as a select.
MOST_RADIOS = 6
YES, NO = "yes", "no"
LOCAL_BODY = "local_body"


def field_id(name: str) -> str:
    return f"field-{name}"


def document_id(code: str) -> str:
    return f"document-{code}"


def uploaded_id(code: str) -> str:
    """The hidden input holding an upload's sha256 (never a token)."""
    return f"uploaded-{code}"


def uploaded_name_id(code: str) -> str:
    return f"uploaded-name-{code}"


@dataclass(frozen=True)
class Input:
    """How one field of a definition is asked on the page."""

    spec: Mapping[str, Any]
    id: str
    widget: str  # text, number, date, tel, email, radios, select, yes_no
    choices: list[tuple[str, Any]] = field(default_factory=list)  # (value, label)

    @property
    def name(self) -> str:
        return str(self.spec["name"])


WIDGETS = {
    "string": "text",
    "integer": "number",
    "date": "date",
    "phone": "tel",
    "email": "email",
    "boolean": "yes_no",
}


def inputs(service: Mapping[str, Any]) -> list[Input]:
    """The page's inputs, in the definition's order."""
    made = []
    for spec in service.get("fields", []):
        kind = spec.get("type", "string")
        if kind == "choice":
            choices = [(str(c["value"]), c["label"]) for c in spec.get("choices", [])]
            widget = "radios" if len(choices) <= MOST_RADIOS else "select"
            made.append(Input(spec, field_id(spec["name"]), widget, choices))
        else:
            made.append(Input(spec, field_id(spec["name"]), WIDGETS.get(kind, "text")))
    return made


def form_value(value: Any) -> str:
    """An answer as a page's input carries it (True: "yes")."""
    if isinstance(value, bool):
        return YES if value else NO
    return "" if value is None else str(value)


def condition_values(rule: Mapping[str, Any]) -> list[str]:
    """The input values for which a condition holds (for the page's script)."""
    values = rule.get("in", [rule.get("equals")])
    return [form_value(value) for value in values]


def typed_answers(service: Mapping[str, Any], sent: Mapping[str, str]) -> dict[str, Any]:
    """The page's answers as the API takes them: whole numbers as numbers,
    yes/no as true/false, blanks left out, and fields that do not apply to
    these answers left out. A number that is not one is sent as typed, so
    the API says what is wrong with it."""
    answers: dict[str, Any] = {}
    for spec in service.get("fields", []):
        text = str(sent.get(field_id(spec["name"]), "")).strip()
        if not text:
            continue
        kind = spec.get("type")
        if kind == "boolean":
            answers[spec["name"]] = {YES: True, NO: False}.get(text, text)
        elif kind == "integer":
            answers[spec["name"]] = int(text) if text.lstrip("-").isdigit() else text
        else:
            answers[spec["name"]] = text
    return {name: value for name, value in answers.items() if _applies(service, name, answers)}


def _applies(service: Mapping[str, Any], name: str, answers: Mapping[str, Any]) -> bool:
    spec = next(s for s in service["fields"] if s["name"] == name)
    return applies(spec, answers)


def documents_that_apply(service: Mapping[str, Any], answers: Mapping[str, Any]) -> list[dict]:
    return [spec for spec in service.get("documents", []) if applies(spec, answers)]


def kept_uploads(service: Mapping[str, Any], sent: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Documents uploaded on an earlier try: code -> {sha256, filename}."""
    kept = {}
    for spec in service.get("documents", []):
        sha256 = str(sent.get(uploaded_id(spec["code"]), ""))
        if len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256):
            kept[spec["code"]] = {
                "sha256": sha256,
                "filename": str(sent.get(uploaded_name_id(spec["code"]), ""))[:100],
            }
    return kept


def problem_fields(service: Mapping[str, Any]) -> dict[str, FormField]:
    """Where each of the API's problems about an application goes."""
    fields = {LOCAL_BODY: FormField(LOCAL_BODY)}
    for spec in service.get("fields", []):
        fields[f"form.{spec['name']}"] = FormField(field_id(spec["name"]))
    for spec in service.get("documents", []):
        fields[f"documents.{spec['code']}"] = FormField(document_id(spec["code"]))
    return fields


def offices(service: Mapping[str, Any], local_bodies: list[dict[str, Any]]) -> list[dict]:
    """The local bodies that offer this service and still exist."""
    kinds = set(service.get("applicable_to", []))
    return [
        body for body in local_bodies if body.get("type") in kinds and not body.get("dissolved_on")
    ]
