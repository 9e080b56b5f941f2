"""A complete, valid application for any definition, built from the
definition itself: what the README's walk-through, the tests and the
benchmarks file, so none of them hard-codes one service's form.

Answers come from each field's `example` where it has one (every patterned
field must), else from a plain sample of its type; choice and boolean
answers are taken first so that conditional fields and documents are
included exactly when they apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ksmart_common.domain.intake import applies

SAMPLE_ANSWERS: dict[str, Any] = {
    "string": "Asha Menon",
    "date": "2026-01-15",
    "phone": "+971501234567",
    "email": "asha.menon@example.org",
    "boolean": False,
}


def sample_form(
    definition: Mapping[str, Any], answers: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Answers to every field that applies; `answers` overrides any of them."""
    answers = dict(answers or {})
    form: dict[str, Any] = {}
    # Conditions only ever name unconditional choice and boolean fields, so
    # answering those first settles which other fields apply.
    for spec in definition["fields"]:
        if "condition" not in spec and spec["type"] in ("choice", "boolean"):
            form[spec["name"]] = answers.get(spec["name"], _sample(spec))
    for spec in definition["fields"]:
        if spec["name"] in form or not applies(spec, form):
            continue
        form[spec["name"]] = answers.get(spec["name"], _sample(spec))
    return form


def documents_needed(definition: Mapping[str, Any], form: Mapping[str, Any]) -> list[dict]:
    """The required documents that apply to this form."""
    return [spec for spec in definition["documents"] if spec["required"] and applies(spec, form)]


def _sample(spec: Mapping[str, Any]) -> Any:
    if "example" in spec:
        return spec["example"]
    if spec["type"] == "choice":
        return spec["choices"][0]["value"]
    if spec["type"] == "integer":
        return max(spec.get("minimum", 1), min(spec.get("maximum", 1), 1))
    return SAMPLE_ANSWERS[spec["type"]]
