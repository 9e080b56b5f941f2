"""The pages' text in English and Malayalam: gettext catalogues, one per
language (translations/<lang>/LC_MESSAGES/messages.po). The catalogues are
compiled in memory when the portal starts, so a fresh clone needs no build
step and no compiled file can fall behind its source."""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import g

from ksmart_common.domain.vocabulary import DEFAULT_LANGUAGE, LANGUAGES

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
# Each language's own name for itself, shown in the switch as it is written.
LANGUAGE_NAMES = {"en": "English", "ml": "മലയാളം"}


def catalogue_path(language: str) -> Path:
    return TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po"


def load_catalogues() -> dict[str, Translations]:
    catalogues = {}
    for language in LANGUAGES:
        with catalogue_path(language).open("rb") as source:
            catalogue = read_po(source, locale=language)
        compiled = io.BytesIO()
        write_mo(compiled, catalogue)
        compiled.seek(0)
        catalogues[language] = Translations(compiled)
    return catalogues


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "translate later"
    """Marks a message for the catalogues; gettext translates it when shown."""
    return message


def gettext(message: str, **variables: object) -> str:
    translations = getattr(g, "translations", None)
    text = translations.gettext(message) if translations is not None else message
    return text % variables if variables else text


def ngettext(singular: str, plural: str, number: int, **variables: object) -> str:
    translations = getattr(g, "translations", None)
    if translations is not None:
        text = translations.ngettext(singular, plural, number)
    else:
        text = singular if number == 1 else plural
    return text % {"num": number, **variables}


def current_language() -> str:
    return getattr(g, "language", DEFAULT_LANGUAGE)
