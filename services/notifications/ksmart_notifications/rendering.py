"""The messages a citizen receives, in English and Malayalam, and their rendering.

Each message is one file, templates/<name>.json: whether it is urgent (sent
even in the citizen's quiet hours), statutory (a notice the law requires, which
the citizen cannot turn off) and shown in the in-app feed, and per language a
`subject` (email subject, in-app title), an `sms` and a `text` (email body,
in-app text). Placeholders are `{name}`; a parameter's value is always inserted
as given, never read as a template itself, so a citizen's or an office's text
containing braces cannot change a message.

The templates are loaded and checked once; a broken one stops the service at
start-up with every problem of every file, rather than failing one message at
a time later.
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

from ksmart_common.domain.vocabulary import DEFAULT_LANGUAGE, LANGUAGES

TEMPLATES_DIR: Traversable = resources.files("ksmart_notifications") / "templates"
TEXT_KEYS = ("subject", "sms", "text")
FLAG_KEYS = ("urgent", "statutory", "in_app")
# Every SMS names the sender first: an SMS has no other "from" a reader trusts.
SMS_PREFIX = {"en": "K-Smart: ", "ml": "കെ-സ്മാർട്ട്: "}
# The renderer signs the email and in-app text; templates carry no signature.
FOOTER = {
    "en": "— K-Smart, Local Self Government Department, Kerala",
    "ml": "— കെ-സ്മാർട്ട്, തദ്ദേശ സ്വയംഭരണ വകുപ്പ്, കേരളം",
}
MONTHS = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "ml": (
        "ജനുവരി",
        "ഫെബ്രുവരി",
        "മാർച്ച്",
        "ഏപ്രിൽ",
        "മേയ്",
        "ജൂൺ",
        "ജൂലൈ",
        "ഓഗസ്റ്റ്",
        "സെപ്റ്റംബർ",
        "ഒക്ടോബർ",
        "നവംബർ",
        "ഡിസംബർ",
    ),
}
# The officials of ksmart_common.domain.roles.OFFICIAL_ROLES as a message names them
# ("sent up to the Secretary for a decision").
ROLE_LABELS: dict[str, dict[str, str]] = {
    "clerk": {"en": "the Clerk", "ml": "ക്ലർക്ക്"},
    "overseer": {"en": "the Overseer", "ml": "ഓവർസിയർ"},
    "assistant_engineer": {"en": "the Assistant Engineer", "ml": "അസിസ്റ്റന്റ് എഞ്ചിനീയർ"},
    "health_inspector": {"en": "the Health Inspector", "ml": "ഹെൽത്ത് ഇൻസ്പെക്ടർ"},
    "revenue_inspector": {"en": "the Revenue Inspector", "ml": "റവന്യൂ ഇൻസ്പെക്ടർ"},
    "section_officer": {"en": "the Section Officer", "ml": "സെക്ഷൻ ഓഫീസർ"},
    "secretary": {"en": "the Secretary", "ml": "സെക്രട്ടറി"},
}

_TEMPLATE_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Unicode's control characters (category Cc). A value may break a line with
# "\n"; any other control character (a tab, a carriage return, an escape
# sequence) becomes a space so it cannot disturb an SMS or a mail body.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
Report = Callable[[str], None]


class TemplateError(Exception):
    """One or more templates are broken; `problems` names each problem."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "broken notification templates:\n" + "\n".join(f"  {p}" for p in self.problems)
        )


class UnknownTemplate(KeyError):
    """No template has this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"no notification template is named {self.name!r}"


class MissingParameters(ValueError):
    """A render was not given every parameter its template uses."""

    def __init__(self, template_name: str, missing: Iterable[str]) -> None:
        self.template_name = template_name
        self.missing = tuple(sorted(missing))
        super().__init__(
            f"template {template_name!r} needs parameters it was not given: "
            + ", ".join(self.missing)
        )


@dataclass(frozen=True)
class Template:
    name: str
    urgent: bool
    statutory: bool
    in_app: bool
    # language -> {"subject", "sms", "text"}
    texts: Mapping[str, Mapping[str, str]]

    @property
    def parameters(self) -> frozenset[str]:
        """The names every language's `text` uses (sms and subject use a subset)."""
        return placeholders(self.texts[DEFAULT_LANGUAGE]["text"])


@dataclass(frozen=True)
class Rendered:
    subject: str
    sms: str
    text: str  # ends with the footer


# -- loading -------------------------------------------------------------------


def placeholders(text: str) -> frozenset[str]:
    """The `{name}` placeholders of a valid template text."""
    return frozenset(field for _, field, _, _ in string.Formatter().parse(text) if field)


def load_templates(directory: Traversable | Path | None = None) -> dict[str, Template]:
    """Every templates/<name>.json under `directory` (the shipped ones by
    default), checked; raises TemplateError naming every problem at once."""
    root = directory if directory is not None else TEMPLATES_DIR
    problems: list[str] = []
    loaded: dict[str, Template] = {}
    if not root.is_dir():
        raise TemplateError([f"{root}: is not a folder"])
    files = sorted(
        (entry for entry in root.iterdir() if entry.is_file() and entry.name.endswith(".json")),
        key=lambda entry: entry.name,
    )
    if not files:
        problems.append(f"{root}: holds no templates")
    for entry in files:
        name = entry.name.removesuffix(".json")
        template = _load_one(name, entry, problems)
        if template is not None:
            loaded[name] = template
    if problems:
        raise TemplateError(problems)
    return loaded


def _load_one(name: str, entry: Traversable, problems: list[str]) -> Template | None:
    before = len(problems)

    def problem(message: str) -> None:
        problems.append(f"{name}: {message}")

    if not _TEMPLATE_NAME.fullmatch(name):
        problem("a template's name is lower-case letters, digits and underscores")
    try:
        document = json.loads(entry.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        problem(f"is not UTF-8 ({error.reason})")
        return None
    except json.JSONDecodeError as error:
        problem(f"is not JSON ({error.msg} at line {error.lineno})")
        return None
    if not isinstance(document, dict):
        problem("must be a JSON object")
        return None
    for key in sorted(set(document) - {*FLAG_KEYS, *LANGUAGES}):
        problem(f"unknown key {key!r}")
    for key in FLAG_KEYS:
        if key not in document:
            problem(f"{key} is missing")
        elif not isinstance(document[key], bool):
            problem(f"{key} must be true or false")
    for language in LANGUAGES:
        _check_language(document.get(language), language, problem)
    if len(problems) == before:
        _check_same_parameters(document, problem)
    if len(problems) > before:
        return None
    texts = {
        language: MappingProxyType({key: document[language][key] for key in TEXT_KEYS})
        for language in LANGUAGES
    }
    return Template(
        name=name,
        urgent=document["urgent"],
        statutory=document["statutory"],
        in_app=document["in_app"],
        texts=MappingProxyType(texts),
    )


def _check_language(variant: object, language: str, problem: Report) -> None:
    if variant is None:
        problem(f"{language} is missing")
        return
    if not isinstance(variant, dict):
        problem(f"{language} must be an object with {', '.join(TEXT_KEYS)}")
        return
    for key in sorted(set(variant) - set(TEXT_KEYS)):
        problem(f"{language}: unknown key {key!r}")
    for key in TEXT_KEYS:
        value = variant.get(key)
        where = f"{language}.{key}"
        if not isinstance(value, str) or not value.strip():
            problem(f"{where} must be a non-empty text")
            continue
        for message in _placeholder_problems(value):
            problem(f"{where}: {message}")
        if key in ("subject", "sms") and "\n" in value:
            problem(f"{where} must be one line")
        if key == "sms" and not value.startswith(SMS_PREFIX[language]):
            problem(f"{where} must start with {SMS_PREFIX[language]!r}")


def _placeholder_problems(text: str) -> list[str]:
    """Only plain `{name}` placeholders: no format spec, conversion, index
    or attribute, which would let a template reach into a value."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as error:
        return [f"braces do not pair up ({error}); write a literal brace as {{{{ or }}}}"]
    found = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier():
            found.append(f"{{{field}}} is not a plain {{name}} placeholder")
        elif spec or conversion:
            found.append(f"{{{field}}} may not carry a format spec or conversion")
    return found


def _check_same_parameters(document: Mapping[str, Mapping[str, str]], problem: Report) -> None:
    texts = {language: placeholders(document[language]["text"]) for language in LANGUAGES}
    reference = texts[DEFAULT_LANGUAGE]
    for language in LANGUAGES:
        if texts[language] != reference:
            extra = sorted(texts[language] - reference)
            lacking = sorted(reference - texts[language])
            problem(
                f"{language}.text must use the same placeholders as {DEFAULT_LANGUAGE}.text"
                f" (has extra {extra}, lacks {lacking})"
            )
        for key in ("subject", "sms"):
            stray = sorted(placeholders(document[language][key]) - texts[language])
            if stray:
                problem(f"{language}.{key} uses placeholders its text does not: {stray}")


@functools.cache
def _templates() -> Mapping[str, Template]:
    return MappingProxyType(load_templates())


def template(name: str) -> Template:
    """The template called `name`; UnknownTemplate (a KeyError) if none is."""
    try:
        return _templates()[name]
    except KeyError:
        raise UnknownTemplate(name) from None


def template_names() -> tuple[str, ...]:
    return tuple(sorted(_templates()))


# -- rendering -----------------------------------------------------------------


def language_of(language: str | None) -> str:
    """One of LANGUAGES: "ml", "ML" and "ml-IN" are Malayalam; anything
    unknown is DEFAULT_LANGUAGE."""
    if isinstance(language, str):
        primary = language.strip().replace("_", "-").split("-", 1)[0].lower()
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


def render(name: str, language: str, params: Mapping[str, str]) -> Rendered:
    """Template `name` in `language` (DEFAULT_LANGUAGE if unknown) with `params`.

    Raises MissingParameters (a ValueError) naming every parameter the
    template uses and `params` lacks; extra parameters are ignored. Values are
    inserted verbatim: "{x}" in a value stays "{x}"."""
    chosen = template(name)
    language = language_of(language)
    texts = chosen.texts[language]
    needed = placeholders(texts["text"])
    missing = needed - params.keys()
    if missing:
        raise MissingParameters(name, missing)
    not_text = sorted(key for key in needed if not isinstance(params[key], str))
    if not_text:
        raise TypeError(f"template {name!r}: parameters must be texts: {', '.join(not_text)}")
    values = {key: clean_value(params[key]) for key in needed}
    # format_map fills each {name} with its value once; it never parses the
    # value, so braces in it are kept as they are.
    return Rendered(
        subject=texts["subject"].format_map(values),
        sms=texts["sms"].format_map(values),
        text=texts["text"].format_map(values) + "\n\n" + FOOTER[language],
    )


def clean_value(value: str) -> str:
    """`value` with every control character but "\\n" replaced by a space
    (a Windows line end "\\r\\n" counts as one "\\n")."""
    return _CONTROL.sub(" ", value.replace("\r\n", "\n"))


# -- values in the citizen's language ------------------------------------------


def format_date(moment: datetime | date, language: str, zone: str = "Asia/Kolkata") -> str:
    """The calendar date of `moment` in time zone `zone`: "5 December 2026",
    or "2026 ഡിസംബർ 5" in Malayalam. A datetime must be timezone-aware; a
    plain date is taken as it is."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("format_date needs a timezone-aware datetime")
        day = moment.astimezone(ZoneInfo(zone)).date()
    elif isinstance(moment, date):
        day = moment
    else:
        raise TypeError(f"format_date needs a datetime, not {type(moment).__name__}")
    language = language_of(language)
    month = MONTHS[language][day.month - 1]
    if language == "ml":
        return f"{day.year} {month} {day.day}"
    return f"{day.day} {month} {day.year}"


def format_rupees(paise: int, language: str) -> str:
    """An amount in Indian digit grouping: "₹1,25,000", "₹12.50", "₹0".
    Paise are shown only when there are some. The same in both languages
    (Kerala writes amounts with Western Arabic digits)."""
    if isinstance(paise, bool) or not isinstance(paise, int):
        raise TypeError(f"an amount is a whole number of paise, not {paise!r}")
    if paise < 0:
        raise ValueError(f"an amount to show a citizen cannot be negative: {paise}")
    rupees, rest = divmod(paise, 100)
    text = "₹" + _indian_grouping(rupees)
    return f"{text}.{rest:02d}" if rest else text


def _indian_grouping(number: int) -> str:
    # The last three digits, then groups of two: 1,23,45,678.
    digits = str(number)
    head, tail = digits[:-3], digits[-3:]
    groups = []
    while head:
        groups.insert(0, head[-2:])
        head = head[:-2]
    return ",".join([*groups, tail])


def role_label(role: str, language: str) -> str:
    """How a message names an official's role; an unknown role by its name
    with spaces for underscores."""
    labels = ROLE_LABELS.get(role)
    if labels is None:
        return role.replace("_", " ")
    return labels[language_of(language)]
