"""How a service's definition (from GET /services/{code}) reads on a page:
its texts in the page's language, fees in rupees, sizes, file formats, what
kind of answer each field wants and when a field or document applies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ksmart_portal.i18n import N_, current_language, gettext

FORMAT_NAMES = {
    "application/pdf": "PDF",
    "image/jpeg": "JPEG",
    "image/png": "PNG",
}
FIELD_KINDS = {
    "string": N_("Text"),
    "integer": N_("A whole number"),
    "date": N_("A date"),
    "email": N_("An email address"),
    "phone": N_("A phone number with its country code"),
    "boolean": N_("Yes or no"),
    "choice": N_("One of the choices"),
}
LOCAL_BODY_KIND_NAMES = {
    "grama_panchayat": N_("Grama panchayat"),
    "block_panchayat": N_("Block panchayat"),
    "district_panchayat": N_("District panchayat"),
    "municipality": N_("Municipality"),
    "corporation": N_("Corporation"),
}


def local(text: Any) -> str:
    """A catalogue text ({"en": ..., "ml": ...}) in the page's language,
    English where it has no other."""
    if isinstance(text, Mapping):
        return str(text.get(current_language()) or text.get("en") or "")
    return "" if text is None else str(text)


def rupees(paise: int) -> str:
    whole, part = divmod(int(paise), 100)
    return f"₹{whole:,}" if part == 0 else f"₹{whole:,}.{part:02d}"


def megabytes(size_bytes: int) -> str:
    size = size_bytes / (1024 * 1024)
    return gettext("up to %(size)s MB", size=f"{size:g}" if size >= 1 else f"{size:.1f}")


def formats(mime_types: list[str]) -> str:
    return ", ".join(FORMAT_NAMES.get(mime, mime) for mime in mime_types)


def field_kind(kind: str) -> str:
    return gettext(FIELD_KINDS.get(kind, FIELD_KINDS["string"]))


def local_body_kind(kind: str) -> str:
    return gettext(LOCAL_BODY_KIND_NAMES[kind]) if kind in LOCAL_BODY_KIND_NAMES else kind


ONLY_WHEN = N_("Only when “%(field)s” is %(values)s")
ANSWER_ONLY_IF = N_("Answer this only if “%(field)s” is %(values)s.")
ATTACH_ONLY_IF = N_("Attach this only if “%(field)s” is %(values)s.")


def condition(
    rule: Mapping[str, Any] | None, service: Mapping[str, Any], wording: str = ONLY_WHEN
) -> str:
    """ "Only when 'Place of birth' is 'Hospital'", from a definition's rule;
    `wording` says it another way (ANSWER_ONLY_IF, ATTACH_ONLY_IF)."""
    if not rule:
        return ""
    field = next((f for f in service.get("fields", []) if f["name"] == rule.get("field")), {})
    choices = {c["value"]: local(c["label"]) for c in field.get("choices", [])}

    def answer(value: Any) -> str:
        if isinstance(value, bool):
            return gettext("Yes") if value else gettext("No")
        return choices.get(value, str(value))

    label = local(field.get("label")) or str(rule.get("field"))
    if "in" in rule:
        values = gettext(" or ").join(answer(value) for value in rule["in"])
    else:
        values = answer(rule.get("equals"))
    return gettext(wording, field=label, values=values)


def answer_only_if(rule: Mapping[str, Any] | None, service: Mapping[str, Any]) -> str:
    return condition(rule, service, ANSWER_ONLY_IF)


def attach_only_if(rule: Mapping[str, Any] | None, service: Mapping[str, Any]) -> str:
    return condition(rule, service, ATTACH_ONLY_IF)


FILTERS = {
    "local": local,
    "rupees": rupees,
    "megabytes": megabytes,
    "formats": formats,
    "field_kind": field_kind,
    "local_body_kind": local_body_kind,
}
