"""The pages' text in English and Malayalam: gettext catalogues, one per
language, each kept as several .po files in translations/<lang>/LC_MESSAGES/
(messages.po for the citizen's and the public pages, one more for each
kind of staff's pages) so that each part of the portal keeps its own text.
They are merged and compiled in memory when the portal starts, so a fresh
clone needs no build step and no compiled file can fall behind its source."""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import g

from ksmart_common.domain.vocabulary import DEFAULT_LANGUAGE, LANGUAGES

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
# Each language's own name for itself, shown in the switch as it is written.
LANGUAGE_NAMES = {"en": "English", "ml": "മലയാളം"}


def catalogue_paths(language: str) -> list[Path]:
    return sorted((TRANSLATIONS_DIR / language / "LC_MESSAGES").glob("*.po"))


def read_catalogue(language: str) -> Catalog:
    """A language's .po files as one catalogue; a message kept in two files
    is a mistake, refused here rather than one silently winning."""
    merged = Catalog(locale=language)
    for path in catalogue_paths(language):
        with path.open("rb") as source:
            part = read_po(source, locale=language)
        for message in part:
            if not message.id:
                continue
            if message.id in merged:
                raise ValueError(f"{path.name}: {message.id!r} is in another catalogue file too")
            merged[message.id] = message
    return merged


def load_catalogues() -> dict[str, Translations]:
    catalogues = {}
    for language in LANGUAGES:
        catalogue = read_catalogue(language)
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
