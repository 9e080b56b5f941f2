"""The shape of a catalogue definition, and the one function that reads a
definition file: `load_definition(path)`.

The schema validates; it does not transform. `load_definition` returns the
document exactly as the file holds it (no defaults filled in), because that
document is what `content_hash` identifies for ever: an auditor who hashes the
file, or the definition carried by a file's first event, gets the same hash,
and a later change to this schema's defaults can never change an old hash.

Unknown keys are errors, so a misspelt key ("requried") is caught rather than
silently ignored. The format grows by adding keys here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ksmart_catalogue.errors import CatalogueError, problem
from ksmart_common.domain.documents import DOCUMENT_FORMATS, MAX_DOCUMENT_BYTES
from ksmart_common.domain.roles import OFFICIAL_ROLES
from ksmart_common.domain.vocabulary import LOCAL_BODY_KINDS, SERVICE_SHORT_CODE_PATTERN
from ksmart_common.domain.workflow import APPLICANT, OUTCOMES, DefinitionError, Workflow

# A state waits on an official's role (named once, in ksmart_common.domain.roles)
# or on the citizen who filed the file.
WAITING_ROLES = (*OFFICIAL_ROLES, APPLICANT)


# The categories the catalogue is browsed by, with their names; a service
# belongs to exactly one.
CATEGORIES: dict[str, dict[str, str]] = {
    "civil-registration": {"en": "Civil registration", "ml": "സിവിൽ രജിസ്ട്രേഷൻ"},
    "trade-licences": {
        "en": "Trade and business licences",
        "ml": "വ്യാപാര, വ്യവസായ ലൈസൻസുകൾ",
    },
    "building-permits": {"en": "Building permits", "ml": "കെട്ടിട നിർമ്മാണ അനുമതികൾ"},
    "property-tax": {"en": "Property tax", "ml": "വസ്തു നികുതി"},
    "social-security-pensions": {
        "en": "Social security pensions",
        "ml": "സാമൂഹ്യ സുരക്ഷാ പെൻഷനുകൾ",
    },
    "certificates": {"en": "Certificates", "ml": "സർട്ടിഫിക്കറ്റുകൾ"},
    "grievances": {"en": "Grievances", "ml": "പരാതികൾ"},
    "public-health": {
        "en": "Public health and sanitation",
        "ml": "പൊതുജനാരോഗ്യവും ശുചിത്വവും",
    },
}

FIELD_TYPES = ("string", "date", "integer", "phone", "email", "choice", "boolean")
# The longest answer a string field may allow (intake's default is shorter).
MAX_TEXT_LENGTH = 5_000
# Only the answers to these can switch a document or a field on or off: a
# condition on free text would be a condition on spelling.
CONDITION_FIELD_TYPES = ("choice", "boolean")

SERVICE_CODE = validate.Regexp(
    r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$", error="must be lower-case words joined by '-'"
)
NAME = validate.Regexp(
    r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$", error="must be lower-case words joined by '_'"
)
# Two to four capitals, unique in the catalogue: the service's part of a file
# number (KL-EKM-KOC/BR/2026/000123).
SHORT_CODE = validate.Regexp(SERVICE_SHORT_CODE_PATTERN, error="must be 2 to 4 capital letters")
EVENT_TYPE = validate.Regexp(r"^[A-Z][A-Za-z0-9]+$", error="must be an UpperCamelCase name")
MALAYALAM = re.compile(r"[\u0D00-\u0D7F]")


def _in_malayalam(text: str) -> None:
    if not MALAYALAM.search(text):
        raise ValidationError("must be written in Malayalam script")


def _unique(values: list[Any]) -> None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValidationError(f"{value!r} is listed twice")
        seen.add(value)


def _compiles(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValidationError(f"not a valid regular expression: {error}") from error


class StrictBoolean(fields.Field):
    """true or false only: marshmallow's Boolean also takes 1, "yes", "on"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("must be true or false")
        return value


class Scalar(fields.Field):
    """A value a condition compares an answer with: text, a whole number or a
    boolean (never a float, whose text form is not canonical)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str | int | bool):
            raise ValidationError("must be text, a whole number, true or false")
        return value


class NamedMapping(fields.Field):
    """An object whose keys are names and whose values follow one schema.

    marshmallow's Dict would report a bad value under an extra "value" key
    (workflow.states.verified.value.sla_days); this reports it where it is
    (workflow.states.verified.sla_days).
    """

    def __init__(self, values: type[Schema], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.values_schema = values

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ValidationError("must be an object of names")
        errors: dict[str, Any] = {}
        loaded: dict[str, Any] = {}
        for key, item in value.items():
            try:
                NAME(key)
                loaded[key] = self.values_schema().load(item)
            except ValidationError as error:
                errors[key] = error.messages
        if errors:
            raise ValidationError(errors)
        if not loaded:
            raise ValidationError("must name at least one")
        return loaded


class LocalisedTextSchema(Schema):
    en = fields.String(required=True, validate=validate.Length(min=1))
    ml = fields.String(required=True, validate=[validate.Length(min=1), _in_malayalam])


def localised(**kwargs: Any) -> fields.Nested:
    return fields.Nested(LocalisedTextSchema, **kwargs)


class ConditionSchema(Schema):
    """When a field or a document applies: the answer to `field` equals a
    value, or is one of a list of values."""

    field = fields.String(required=True, validate=NAME)
    equals = Scalar()
    in_ = fields.List(Scalar(), data_key="in", validate=[validate.Length(min=1), _unique])

    @validates_schema
    def exactly_one_test(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("equals" in data) == ("in_" in data):
            raise ValidationError("give exactly one of 'equals' and 'in'")


class ChoiceSchema(Schema):
    value = fields.String(required=True, validate=NAME)
    label = localised(required=True)


class FieldSchema(Schema):
    name = fields.String(required=True, validate=NAME)
    type = fields.String(required=True, validate=validate.OneOf(FIELD_TYPES))
    required = StrictBoolean(required=True)
    pattern = fields.String(validate=[validate.Length(min=1), _compiles])
    # An answer that fits the pattern, shown to the applicant ("e.g. 682001")
    # and checked against the pattern here, so a pattern nobody can satisfy
    # is caught when the definition loads.
    example = fields.String(validate=validate.Length(min=1))
    max_length = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_TEXT_LENGTH))
    minimum = fields.Integer(strict=True)
    maximum = fields.Integer(strict=True)
    choices = fields.List(fields.Nested(ChoiceSchema), validate=validate.Length(min=2))
    condition = fields.Nested(ConditionSchema)
    label = localised(required=True)
    help = localised(required=True)

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def options_fit_the_type(self, data: dict[str, Any], original_data: Any, **kwargs: Any) -> None:
        # Presence is read from the original: a key whose value was invalid
        # is missing from `data` and already reported.
        if not isinstance(original_data, Mapping):
            return
        errors: dict[str, list[str]] = {}
        field_type = data.get("type")
        if field_type == "choice" and "choices" not in original_data:
            errors["choices"] = ["a choice field must list its choices"]
        if field_type not in (None, "choice") and "choices" in original_data:
            errors["choices"] = ["only a choice field has choices"]
        for key in ("pattern", "max_length", "example"):
            if field_type not in (None, "string") and key in original_data:
                errors[key] = [f"only a string field has a {key}"]
        if "pattern" in data and field_type == "string":
            example = data.get("example")
            if example is None:
                errors["example"] = ["a field with a pattern needs an example that fits it"]
            elif not re.fullmatch(data["pattern"], example):
                errors["example"] = [f"{example!r} does not fit the pattern"]
        for key in ("minimum", "maximum"):
            if field_type not in (None, "integer") and key in original_data:
                errors[key] = [f"only an integer field has a {key}"]
        if data.get("minimum", 0) > data.get("maximum", data.get("minimum", 0)):
            errors["maximum"] = ["must not be below the minimum"]
        try:
            values = [choice.get("value") for choice in data.get("choices", [])]
            _unique([value for value in values if value is not None])
        except ValidationError as error:
            errors.setdefault("choices", []).extend(error.messages)
        if errors:
            raise ValidationError(errors)


class DocumentSchema(Schema):
    code = fields.String(required=True, validate=NAME)
    label = localised(required=True)
    help = localised()
    required = StrictBoolean(required=True)
    formats = fields.List(
        fields.String(validate=validate.OneOf(DOCUMENT_FORMATS)),
        required=True,
        validate=[validate.Length(min=1), _unique],
    )
    max_bytes = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_DOCUMENT_BYTES)
    )
    condition = fields.Nested(ConditionSchema)


class FeeSchema(Schema):
    """One item of the fee demanded when a file is submitted; the demand is
    the sum of the items whose condition holds."""

    code = fields.String(required=True, validate=NAME)
    label = localised(required=True)
    amount_paise = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    condition = fields.Nested(ConditionSchema)


class OfficeSchema(Schema):
    """A section of the local body's office that handles the service."""

    code = fields.String(required=True, validate=NAME)
    name = localised(required=True)


class CertificateSchema(Schema):
    """What an approved file yields, if anything: a certificate or licence
    the platform issues and signs."""

    title = localised(required=True)
    valid_for_days = fields.Integer(strict=True, validate=validate.Range(min=1))


class EscalationSchema(Schema):
    """What happens when a state's time runs out: the file goes up to
    another role (`to`), or an action is taken on the office's behalf
    (`action`, e.g. a deemed renewal). Without one, the platform sends an
    overdue file to the secretary."""

    to = fields.String(validate=validate.OneOf(OFFICIAL_ROLES))
    action = fields.String(validate=NAME)

    @validates_schema
    def exactly_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("to" in data) == ("action" in data):
            raise ValidationError("give exactly one of 'to' and 'action'")


class StateSchema(Schema):
    label = localised(required=True)
    escalation = fields.Nested(EscalationSchema)
    waits_on = fields.String(validate=validate.OneOf(WAITING_ROLES))
    sla_days = fields.Integer(strict=True, validate=validate.Range(min=1))
    final = StrictBoolean()
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def final_or_waiting(self, data: dict[str, Any], original_data: Any, **kwargs: Any) -> None:
        if not isinstance(original_data, Mapping):
            return
        errors: dict[str, list[str]] = {}
        for key in ("waits_on", "sla_days"):
            if original_data.get("final") is True and key in original_data:
                errors[key] = ["a final state waits on nobody"]
            if original_data.get("final") is not True and key not in original_data:
                errors[key] = ["a state that is not final needs it"]
        if original_data.get("final") is True and "outcome" not in original_data:
            errors["outcome"] = [f"a final state says how the file ends: {', '.join(OUTCOMES)}"]
        if original_data.get("final") is not True and "outcome" in original_data:
            errors["outcome"] = ["only a final state has an outcome"]
        if "escalation" in original_data and (
            original_data.get("final") is True or original_data.get("waits_on") == APPLICANT
        ):
            errors["escalation"] = ["only a state waiting on an official escalates"]
        if errors:
            raise ValidationError(errors)


class ActionSchema(Schema):
    name = fields.String(required=True, validate=NAME)
    label = localised(required=True)
    from_ = fields.List(
        fields.String(validate=NAME),
        data_key="from",
        required=True,
        validate=[validate.Length(min=1), _unique],
    )
    to = fields.String(required=True, validate=NAME)
    event = fields.String(required=True, validate=EVENT_TYPE)
    requires_remarks = StrictBoolean(required=True)


class WorkflowSchema(Schema):
    """The section ksmart_common.domain.workflow reads; that module checks
    the machine itself (reachability, exits); this checks each part's shape."""

    initial_state = fields.String(required=True, validate=NAME)
    states = NamedMapping(StateSchema, required=True)
    actions = fields.List(
        fields.Nested(ActionSchema), required=True, validate=validate.Length(min=1)
    )

    @validates_schema(skip_on_field_errors=False)
    def actions_are_unambiguous(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Items that failed their own schema arrive here partly loaded, so
        # every key is read with .get; their problems are reported already.
        errors: dict[int, dict[str, list[str]]] = {}
        names: set[str] = set()
        # Replaying a file must find, from its state and the stored event's
        # type, the one action that was taken; two actions out of one state
        # with the same event would make that a guess.
        exits: dict[tuple[str, str], str] = {}
        for index, action in enumerate(data.get("actions", [])):
            name, event = action.get("name"), action.get("event")
            if name in names:
                errors.setdefault(index, {}).setdefault("name", []).append(
                    f"action {name!r} is defined twice"
                )
            if name is not None:
                names.add(name)
            for state in action.get("from_", []) if name and event else []:
                other = exits.setdefault((state, event), name)
                if other != name:
                    errors.setdefault(index, {}).setdefault("event", []).append(
                        f"{other!r} already emits {event} from state {state!r}"
                    )
        if errors:
            raise ValidationError({"actions": errors})


class DefinitionSchema(Schema):
    code = fields.String(required=True, validate=[validate.Length(max=64), SERVICE_CODE])
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    name = localised(required=True)
    short_code = fields.String(required=True, validate=SHORT_CODE)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    description = localised(required=True)
    who_may_apply = localised(required=True)
    keywords = fields.List(fields.String(validate=validate.Length(min=1, max=64)), validate=_unique)
    applicable_to = fields.List(
        fields.String(validate=validate.OneOf(LOCAL_BODY_KINDS)),
        required=True,
        validate=[validate.Length(min=1), _unique],
    )
    sla_days = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    fees = fields.List(fields.Nested(FeeSchema), required=True)
    offices = fields.List(
        fields.Nested(OfficeSchema), required=True, validate=validate.Length(min=1)
    )
    fields_ = fields.List(
        fields.Nested(FieldSchema),
        data_key="fields",
        required=True,
        validate=validate.Length(min=1),
    )
    documents = fields.List(fields.Nested(DocumentSchema), required=True)
    certificate = fields.Nested(CertificateSchema)
    workflow = fields.Nested(WorkflowSchema, required=True)

    @validates_schema(skip_on_field_errors=False)
    def names_and_conditions_agree(self, data: dict[str, Any], **kwargs: Any) -> None:
        form_fields = data.get("fields_", [])
        documents = data.get("documents", [])
        errors: dict[str, dict[int, dict[str, Any]]] = {}

        def report(section: str, index: int, key: str, message: str) -> None:
            errors.setdefault(section, {}).setdefault(index, {}).setdefault(key, []).append(message)

        by_name: dict[str, dict[str, Any]] = {}
        for index, form_field in enumerate(form_fields):
            name = form_field.get("name")
            if name in by_name:
                report("fields", index, "name", f"field {name!r} is defined twice")
            if name is not None:
                by_name.setdefault(name, form_field)
        fees = data.get("fees", [])
        for section, items, noun in (("documents", documents, "document"), ("fees", fees, "fee")):
            codes: set[str] = set()
            for index, item in enumerate(items):
                code = item.get("code")
                if code in codes:
                    report(section, index, "code", f"{noun} {code!r} is listed twice")
                if code is not None:
                    codes.add(code)

        for section, items in (("fields", form_fields), ("documents", documents), ("fees", fees)):
            for index, item in enumerate(items):
                condition = item.get("condition")
                if condition is None:
                    continue
                for message in _condition_problems(condition, item, by_name):
                    report(section, index, "condition", message)
        if errors:
            raise ValidationError(errors)


def _condition_problems(
    condition: dict[str, Any], owner: dict[str, Any], by_name: Mapping[str, dict[str, Any]]
) -> list[str]:
    if "field" not in condition or not ({"equals", "in_"} & set(condition)):
        return []  # reported by ConditionSchema already
    target = by_name.get(condition["field"])
    if target is None:
        return [f"names no field {condition['field']!r}"]
    if target is owner:
        return ["a field cannot depend on itself"]
    # One level only: whether a field applies never hangs on a chain (or a
    # loop) of other conditions, so a form can always be evaluated in one pass.
    if "condition" in target:
        return [f"field {condition['field']!r} has a condition of its own"]
    if "type" not in target or (target["type"] == "choice" and "choices" not in target):
        return []  # the field itself is broken, and reported; don't pile on
    if target["type"] not in CONDITION_FIELD_TYPES:
        return [f"field {condition['field']!r} is not a choice or boolean field"]
    values = [condition["equals"]] if "equals" in condition else condition["in_"]
    if target["type"] == "boolean":
        allowed: list[Any] = [True, False]
    else:
        allowed = [choice["value"] for choice in target.get("choices", [])]
    return [
        f"{value!r} is not an answer field {condition['field']!r} can have"
        for value in values
        # Type-aware: 1 == True in Python, but 1 is not a boolean answer.
        if not any(value == option and type(value) is type(option) for option in allowed)
    ]


_definition_schema = DefinitionSchema()


def flatten_messages(messages: Any, path: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested messages as (field.path, message) pairs."""
    if isinstance(messages, Mapping):
        pairs: list[tuple[str, str]] = []
        for key, value in messages.items():
            # "_schema" is a problem with the object itself, not a key of it.
            child = path if key == "_schema" else f"{path}.{key}" if path else str(key)
            pairs.extend(flatten_messages(value, child))
        return pairs
    if isinstance(messages, list | tuple):
        return [pair for message in messages for pair in flatten_messages(message, path)]
    return [(path or "(definition)", str(messages))]


def definition_problems(document: Any, file: str) -> list[dict[str, str]]:
    """Every problem of one parsed definition, schema and workflow machine."""
    if not isinstance(document, Mapping):
        return [problem(file, "(definition)", "must be a JSON object")]
    messages = _definition_schema.validate(document)
    problems = [problem(file, field, message) for field, message in flatten_messages(messages)]
    # The machine can only be built from a well-formed workflow section.
    if "workflow" not in messages:
        try:
            Workflow.from_definition(document["workflow"])
        except DefinitionError as error:
            # The workflow module joins its problems with "; "; every name in
            # them passed the NAME pattern above, so splitting is exact.
            problems.extend(
                problem(file, "workflow", message) for message in str(error).split("; ")
            )
    return problems


def load_definition(path: str | Path) -> dict[str, Any]:
    """The definition in `path`, exactly as stored; raises CatalogueError
    naming the file and every problem in it at once."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        document = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        unreadable = problem(file, "(file)", f"cannot be read as JSON: {error}")
        raise CatalogueError([unreadable]) from error
    problems = definition_problems(document, file)
    if problems:
        raise CatalogueError(problems)
    return document


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of two equal keys without a word; in a definition
    # that silently drops half of what its author wrote.
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"key {key!r} appears twice in one object")
        document[key] = value
    return document
