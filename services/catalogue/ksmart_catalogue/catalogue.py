"""Every version of every service definition, loaded once and kept for ever.

A file filed under a definition records that definition's content hash, and an
auditor may ask for it by that hash years later: so no version is ever dropped,
and a published version's content never changes. `published.json` (beside the
definition folders) records the hash each version was published with; loading
refuses a catalogue in which a published version was edited or removed. A
change to a service is a new file, v<N+1>.json.

A definition's content hash is `content_hash` of the document exactly as its
file holds it, so the definition returned here minus its "content_hash" key
hashes back to that key.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ksmart_catalogue.errors import CatalogueError, problem
from ksmart_catalogue.schema import CATEGORIES, load_definition
from ksmart_common.canonical import content_hash
from ksmart_common.domain.vocabulary import LOCAL_BODY_KINDS
from ksmart_common.errors import InvalidInput, NotFound

DEFINITIONS_DIR = Path(__file__).resolve().parent / "definitions"
LEDGER_FILE = "published.json"
DEFINITION_FILE = re.compile(r"^v([1-9][0-9]*)\.json$")

SUMMARY_KEYS = (
    "code",
    "version",
    "short_code",
    "name",
    "category",
    "applicable_to",
    "sla_days",
)


@dataclass(frozen=True)
class Catalogue:
    # code -> version -> definition (with its "content_hash"); read-only after
    # load, so one instance can serve every worker of a container.
    _versions: Mapping[str, Mapping[int, Mapping[str, Any]]]
    _by_hash: Mapping[str, Mapping[str, Any]]
    # code -> the latest version's searchable text, normalised once
    _search_text: Mapping[str, str]

    @classmethod
    def load(cls, directory: str | Path | None = None) -> Catalogue:
        """Every definitions/<code>/v<N>.json under `directory` (the shipped
        definitions by default); raises CatalogueError listing every problem
        in every file at once."""
        root = Path(directory) if directory is not None else DEFINITIONS_DIR
        if not root.is_dir():
            # A mistyped KSMART_CATALOGUE_DIR must stop the service, not
            # start it with an empty catalogue.
            raise CatalogueError([problem(str(root), "(catalogue)", "is not a folder")])
        problems: list[dict[str, str]] = []
        versions: dict[str, dict[int, dict[str, Any]]] = {}
        for path in sorted(root.glob("*.json")):
            if path.name != LEDGER_FILE:
                problems.append(
                    problem(str(path), "(file)", "definitions live in <code>/v<version>.json")
                )
        for path in sorted(root.glob("*/*.json")):
            definition = _load_one(path, problems)
            if definition is not None:
                stored = {**definition, "content_hash": content_hash(definition)}
                versions.setdefault(definition["code"], {})[definition["version"]] = stored
        if not versions and not problems:
            problems.append(problem(str(root), "(catalogue)", "holds no definitions"))
        problems.extend(_ledger_problems(root, versions))
        if problems:
            raise CatalogueError(problems)
        problems.extend(_short_code_problems(root, versions))
        if problems:
            raise CatalogueError(problems)
        by_hash = {
            definition["content_hash"]: definition
            for by_version in versions.values()
            for definition in by_version.values()
        }
        search_text = {
            code: _searchable(by_version[max(by_version)]) for code, by_version in versions.items()
        }
        return cls(versions, by_hash, search_text)

    def list_services(
        self,
        text: str | None = None,
        category: str | None = None,
        local_body_type: str | None = None,
    ) -> list[dict[str, Any]]:
        """The latest version of each service, in code order; optionally
        only those in a category, offered by a kind of local body, and
        matching every word of `text` (in English or Malayalam, in names,
        descriptions, keywords and codes)."""
        problems = []
        if category is not None and category not in CATEGORIES:
            problems.append({"field": "category", "message": f"one of {', '.join(CATEGORIES)}"})
        if local_body_type is not None and local_body_type not in LOCAL_BODY_KINDS:
            problems.append(
                {"field": "local_body_type", "message": f"one of {', '.join(LOCAL_BODY_KINDS)}"}
            )
        if problems:
            raise InvalidInput("the search cannot be run", problems)
        words = _normalise(text or "").split()
        summaries = []
        for code in sorted(self._versions):
            latest = self._latest(code)
            if category is not None and latest["category"] != category:
                continue
            if local_body_type is not None and local_body_type not in latest["applicable_to"]:
                continue
            if not all(word in self._search_text[code] for word in words):
                continue
            summary = {key: copy.deepcopy(latest[key]) for key in SUMMARY_KEYS}
            summary["fee_paise"] = sum(item["amount_paise"] for item in latest["fees"])
            summaries.append({**summary, "content_hash": latest["content_hash"]})
        return summaries

    def categories(self) -> list[dict[str, Any]]:
        """Every category with its names and how many services it holds."""
        counts: dict[str, int] = {}
        for code in self._versions:
            category = self._latest(code)["category"]
            counts[category] = counts.get(category, 0) + 1
        return [
            {"code": code, "name": dict(name), "services": counts.get(code, 0)}
            for code, name in CATEGORIES.items()
        ]

    def get_service(self, code: str, version: int | None = None) -> dict[str, Any]:
        """The full definition (latest, or the given version) with its
        "content_hash"."""
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise InvalidInput(
                "version must be a whole number",
                [{"field": "version", "message": "must be a whole number"}],
            )
        if code not in self._versions:
            raise NotFound(f"no service {code!r} in the catalogue")
        if version is None:
            return copy.deepcopy(dict(self._latest(code)))
        if version not in self._versions[code]:
            raise NotFound(f"service {code!r} has no version {version}")
        return copy.deepcopy(dict(self._versions[code][version]))

    def get_by_hash(self, definition_hash: str) -> dict[str, Any]:
        """The definition whose content hash this is, whatever its age."""
        definition = None
        if isinstance(definition_hash, str):
            definition = self._by_hash.get(definition_hash)
        if definition is None:
            raise NotFound(f"no definition has content hash {definition_hash!r}")
        return copy.deepcopy(dict(definition))

    def versions(self, code: str) -> list[int]:
        if code not in self._versions:
            raise NotFound(f"no service {code!r} in the catalogue")
        return sorted(self._versions[code])

    def version_count(self) -> int:
        return len(self._by_hash)

    def ledger(self) -> dict[str, str]:
        """What published.json should hold for this catalogue."""
        return {
            _ledger_key(code, version): definition["content_hash"]
            for code, by_version in sorted(self._versions.items())
            for version, definition in sorted(by_version.items())
        }

    def _latest(self, code: str) -> Mapping[str, Any]:
        by_version = self._versions[code]
        return by_version[max(by_version)]


def _load_one(path: Path, problems: list[dict[str, str]]) -> dict[str, Any] | None:
    """One definition file, or None with its problems added to `problems`."""
    file = str(path)
    name = DEFINITION_FILE.match(path.name)
    if name is None:
        problems.append(problem(file, "(file)", "must be named v<version>.json, e.g. v1.json"))
        return None
    try:
        definition = load_definition(path)
    except CatalogueError as error:
        problems.extend(error.problems)
        return None
    # The path is how maintainers find a version; it must not lie about it.
    mismatches = []
    if definition["code"] != path.parent.name:
        mismatches.append(
            problem(
                file, "code", f"{definition['code']!r} does not match folder {path.parent.name!r}"
            )
        )
    if definition["version"] != int(name.group(1)):
        mismatches.append(
            problem(
                file, "version", f"{definition['version']} does not match file name {path.name}"
            )
        )
    problems.extend(mismatches)
    return None if mismatches else definition


def _normalise(text: str) -> str:
    # NFC so that Malayalam typed with different code point sequences for the
    # same letters compares equal; casefold for English.
    return unicodedata.normalize("NFC", text).casefold()


def _searchable(definition: Mapping[str, Any]) -> str:
    parts = [
        definition["code"],
        definition["short_code"],
        *definition["name"].values(),
        *definition["description"].values(),
        *CATEGORIES[definition["category"]].values(),
        *definition.get("keywords", []),
    ]
    return _normalise(" ".join(parts))


def _short_code_problems(
    root: Path, versions: Mapping[str, Mapping[int, Mapping[str, Any]]]
) -> list[dict[str, str]]:
    """A short code names one service for ever: file numbers carry it."""
    problems = []
    owners: dict[str, str] = {}
    for code, by_version in sorted(versions.items()):
        for version, definition in sorted(by_version.items()):
            short_code = definition["short_code"]
            file = str(root / code / f"v{version}.json")
            first = by_version[min(by_version)]["short_code"]
            if short_code != first:
                problems.append(
                    problem(file, "short_code", f"{short_code!r} differs from earlier {first!r}")
                )
            owner = owners.setdefault(short_code, code)
            if owner != code:
                problems.append(
                    problem(file, "short_code", f"{short_code!r} already belongs to {owner!r}")
                )
    return problems


def _ledger_key(code: str, version: int) -> str:
    return f"{code}/v{version}"


def _ledger_problems(
    root: Path, versions: Mapping[str, Mapping[int, Mapping[str, Any]]]
) -> list[dict[str, str]]:
    ledger_path = root / LEDGER_FILE
    if not ledger_path.exists():
        return []
    file = str(ledger_path)
    try:
        ledger = json.loads(ledger_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return [problem(file, "(file)", f"cannot be read as JSON: {error}")]
    if not isinstance(ledger, dict):
        return [problem(file, "(file)", 'must map "<code>/v<version>" to a content hash')]
    problems = []
    for key, published_hash in ledger.items():
        code, _, version = key.rpartition("/v")
        definition = versions.get(code, {}).get(int(version)) if version.isdigit() else None
        if definition is None:
            if not (root / code / f"v{version}.json").exists():
                problems.append(
                    problem(file, key, "this published version is gone; versions are kept for ever")
                )
            # A file that exists but did not load has its problems listed already.
        elif definition["content_hash"] != published_hash:
            problems.append(
                problem(
                    str(root / code / f"v{version}.json"),
                    "(content)",
                    f"was published with content hash {published_hash} but now hashes to "
                    f"{definition['content_hash']}; a published version never changes: "
                    f"put the change in a new version",
                )
            )
    return problems
