"""The local-body directory: districts -> local bodies -> wards, with stable codes.

The directory ships as two CSV files (data/districts.csv, data/local_bodies.csv)
so that a correction is a reviewed one-line change, not a migration. The loader
upserts them: nothing is ever deleted, because a code (KL-EKM-KOC, and ward
codes like KL-EKM-KOC-W012) is carried by users, tokens and files for ever. A
body that ceases to exist keeps its code and is marked with `dissolved_on`.

Every row is validated before anything is written, and every problem in both
files is reported at once, each naming its file, line and column, so a data
maintainer fixes the whole file in one pass.
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ksmart_common.domain.vocabulary import LOCAL_BODY_CODE, LOCAL_BODY_KINDS
from ksmart_common.errors import InvalidInput

DISTRICT_CODE = re.compile(r"^[A-Z]{3}$")
# Ward codes give the number three digits (KL-EKM-KOC-W012).
MAX_WARDS = 999

DISTRICT_COLUMNS = ("code", "name_en", "name_ml")
BODY_COLUMNS = ("code", "district", "type", "name_en", "name_ml", "wards")

_MALAYALAM = ("\u0d00", "\u0d7f")
# Allowed between Malayalam words: "അമ്പലപ്പുഴ വടക്ക്", "ചിറ്റൂർ-തത്തമംഗലം".
_SEPARATORS = frozenset(" -.")
_ZWJ = "\u200d"

Problem = dict[str, str]
# report(column, message): one problem on the current row.
Report = Callable[[str, str], None]


@dataclass(frozen=True)
class District:
    code: str
    name_en: str
    name_ml: str


@dataclass(frozen=True)
class LocalBody:
    code: str
    district: str
    type: str
    name_en: str
    name_ml: str
    wards: int


@dataclass(frozen=True)
class Directory:
    districts: tuple[District, ...]
    bodies: tuple[LocalBody, ...]


def ward_code(local_body: str, number: int) -> str:
    return f"{local_body}-W{number:03d}"


def read_directory(districts_csv: Path, bodies_csv: Path) -> Directory:
    """Read and validate both files; InvalidInput lists every problem at once,
    each field named "<file>:<line>.<column>" (line 1 is the header)."""
    problems: list[Problem] = []
    districts = _read_districts(districts_csv, problems)
    bodies = _read_bodies(bodies_csv, {district.code for district in districts}, problems)
    if problems:
        raise InvalidInput("the local-body directory has problems", problems)
    return Directory(tuple(districts), tuple(bodies))


def shipped_directory() -> Directory:
    """The directory shipped with the package (data/*.csv)."""
    data = importlib.resources.files("ksmart_identity") / "data"
    with (
        importlib.resources.as_file(data / "districts.csv") as districts_csv,
        importlib.resources.as_file(data / "local_bodies.csv") as bodies_csv,
    ):
        return read_directory(districts_csv, bodies_csv)


def load_directory(engine: sa.Engine, directory: Directory) -> dict[str, int]:
    """Upsert districts, bodies and their wards 1..N in one transaction.

    Returns the number of rows inserted or changed per table: all zeros when
    the database already matches, so loading on every start is harmless. Rows
    the directory doesn't mention are left alone (nothing is deleted, and a
    body's `dissolved_on` or a ward's name set elsewhere is kept). A ward count
    lower than the wards already stored is refused: removing wards would break
    the codes issued for them.
    """
    with engine.begin() as conn:
        _refuse_fewer_wards(conn, directory.bodies)
        return {
            "districts": _upsert_districts(conn, directory.districts),
            "local_bodies": _upsert_bodies(conn, directory.bodies),
            "wards": _insert_wards(conn, directory.bodies),
        }


def get_local_body(engine: sa.Engine, code: str) -> dict[str, Any] | None:
    """{code, district, type, name: {en, ml}, wards, dissolved_on}, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(f"{_SELECT_BODIES} WHERE b.code = :code"), {"code": code}
        ).one_or_none()
    return None if row is None else _body(row)


def list_local_bodies(
    engine: sa.Engine, district: str | None = None, type: str | None = None
) -> list[dict[str, Any]]:
    """Bodies (dissolved ones included, see `dissolved_on`) ordered by code,
    optionally of one district and/or one type."""
    problems = []
    if district is not None and not DISTRICT_CODE.match(district):
        problems.append({"field": "district", "message": "must be a district code like 'EKM'"})
    if type is not None and type not in LOCAL_BODY_KINDS:
        problems.append(
            {"field": "type", "message": f"must be one of {', '.join(LOCAL_BODY_KINDS)}"}
        )
    if problems:
        raise InvalidInput("the local bodies can't be listed", problems)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"{_SELECT_BODIES} "
                "WHERE (CAST(:district AS text) IS NULL OR b.district = :district) "
                "AND (CAST(:type AS text) IS NULL OR b.type = :type) ORDER BY b.code"
            ),
            {"district": district, "type": type},
        )
        return [_body(row) for row in rows]


def list_districts(engine: sa.Engine) -> list[dict[str, Any]]:
    """[{code, name: {en, ml}}] ordered by code."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT code, name_en, name_ml FROM districts ORDER BY code"))
        return [{"code": row.code, "name": {"en": row.name_en, "ml": row.name_ml}} for row in rows]


def ward_exists(engine: sa.Engine, local_body: str, number: int) -> bool:
    """Whether the body has this ward (also true for a dissolved body's wards)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM wards WHERE local_body = :body AND number = :number)"
            ),
            {"body": local_body, "number": number},
        ).scalar_one()


# -- reading and validating ---------------------------------------------------


def _read_districts(path: Path, problems: list[Problem]) -> list[District]:
    districts = []
    first_line: dict[str, int] = {}
    for line, row in _rows(path, DISTRICT_COLUMNS, problems):
        problem = _reporter(problems, path, line)
        code = row["code"]
        if not DISTRICT_CODE.match(code):
            problem("code", "must be three capital letters, like 'EKM'")
        elif code in first_line:
            problem("code", f"{code} is already on line {first_line[code]}")
        else:
            first_line[code] = line
        if not row["name_en"]:
            problem("name_en", "must not be empty")
        _check_malayalam(row["name_ml"], problem)
        districts.append(District(code, row["name_en"], row["name_ml"]))
    return districts


def _read_bodies(path: Path, district_codes: set[str], problems: list[Problem]) -> list[LocalBody]:
    bodies = []
    first_line: dict[str, int] = {}
    first_name: dict[tuple[str, str, str], int] = {}
    for line, row in _rows(path, BODY_COLUMNS, problems):
        problem = _reporter(problems, path, line)
        code, district, type_ = row["code"], row["district"], row["type"]
        shape = LOCAL_BODY_CODE.match(code)
        if not shape:
            problem("code", "must look like KL-<district>-<2 to 6 capitals or digits>")
        elif code in first_line:
            problem("code", f"{code} is already on line {first_line[code]}")
        else:
            first_line[code] = line
        if district not in district_codes:
            problem("district", f"{district!r} is not a district in the districts file")
        elif shape and shape[1] != district:
            problem("district", f"must be {shape[1]}, the district part of the code")
        if type_ not in LOCAL_BODY_KINDS:
            problem("type", f"must be one of {', '.join(LOCAL_BODY_KINDS)}")
        name_key = (district, type_, row["name_en"].casefold())
        if not row["name_en"]:
            problem("name_en", "must not be empty")
        elif name_key in first_name:
            problem("name_en", f"a {type_} of this name is already on line {first_name[name_key]}")
        else:
            first_name[name_key] = line
        _check_malayalam(row["name_ml"], problem)
        wards = _ward_count(row["wards"])
        if wards is None:
            problem("wards", f"must be a whole number from 1 to {MAX_WARDS}")
        bodies.append(LocalBody(code, district, type_, row["name_en"], row["name_ml"], wards or 0))
    return bodies


def _rows(
    path: Path, columns: tuple[str, ...], problems: list[Problem]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row with every column stripped) for each well-formed row.

    A header missing a column makes every row unreadable, so that is reported
    once and the rows are skipped. A BOM (as spreadsheets save) is ignored.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        problems.append({"field": path.name, "message": f"is not UTF-8 ({error.reason})"})
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [column.strip() for column in next(reader, [])]
    missing = [column for column in columns if column not in header]
    unknown = [column for column in header if column not in columns]
    if missing or unknown or len(header) != len(columns):
        problems.append(
            {
                "field": f"{path.name}:1",
                "message": f"the header must be {','.join(columns)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else ""),
            }
        )
        return
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(columns):
            problems.append(
                {
                    "field": f"{path.name}:{reader.line_num}",
                    "message": f"has {len(values)} values, expected {len(columns)}",
                }
            )
            continue
        yield (
            reader.line_num,
            {column: value.strip() for column, value in zip(header, values, strict=True)},
        )


def _reporter(problems: list[Problem], path: Path, line: int) -> Report:
    def problem(column: str, message: str) -> None:
        problems.append({"field": f"{path.name}:{line}.{column}", "message": message})

    return problem


def _check_malayalam(name: str, problem: Report) -> None:
    message = _malayalam_problem(name)
    if message:
        problem("name_ml", message)


def _malayalam_problem(name: str) -> str | None:
    if not name:
        return "must not be empty"
    foreign = sorted(
        {c for c in name if not _MALAYALAM[0] <= c <= _MALAYALAM[1] and c not in _SEPARATORS}
    )
    if foreign:
        found = ", ".join(f"U+{ord(c):04X}" for c in foreign)
        # Old keyboards type a chillu as consonant + virama + ZWJ; one spelling
        # per name keeps names comparable.
        hint = " (write chillus as the single letters ൻ ർ ൽ ൾ ൺ)" if _ZWJ in foreign else ""
        return f"must be in Malayalam script (U+0D00-U+0D7F); found {found}{hint}"
    if not any(unicodedata.category(c).startswith("L") for c in name):
        return "must contain Malayalam letters"
    return None


def _ward_count(value: str) -> int | None:
    # Only ASCII digits: int() would also accept "൩" or "+3".
    if not re.fullmatch(r"[0-9]{1,3}", value):
        return None
    wards = int(value)
    return wards if 1 <= wards <= MAX_WARDS else None


# -- loading and querying -----------------------------------------------------

_SELECT_BODIES = (
    "SELECT b.code, b.district, b.type, b.name_en, b.name_ml, b.dissolved_on, "
    "(SELECT count(*) FROM wards w WHERE w.local_body = b.code) AS wards "
    "FROM local_bodies b"
)


def _body(row: sa.Row) -> dict[str, Any]:
    return {
        "code": row.code,
        "district": row.district,
        "type": row.type,
        "name": {"en": row.name_en, "ml": row.name_ml},
        "wards": row.wards,
        # ISO text: these dicts cross RPC, which carries only JSON types.
        "dissolved_on": row.dissolved_on.isoformat() if row.dissolved_on else None,
    }


def _refuse_fewer_wards(conn: sa.Connection, bodies: tuple[LocalBody, ...]) -> None:
    wanted = {body.code: body.wards for body in bodies}
    stored = conn.execute(
        sa.text(
            "SELECT local_body, max(number) AS wards FROM wards "
            "WHERE local_body = ANY(CAST(:codes AS text[])) GROUP BY local_body "
            "ORDER BY local_body"
        ),
        {"codes": list(wanted)},
    )
    problems = [
        {
            "field": f"{row.local_body}.wards",
            "message": f"is {wanted[row.local_body]}, but ward {row.wards} already exists; "
            "wards are never removed",
        }
        for row in stored
        if row.wards > wanted[row.local_body]
    ]
    if problems:
        raise InvalidInput("the directory can't be loaded", problems)


def _upsert_districts(conn: sa.Connection, districts: tuple[District, ...]) -> int:
    return conn.execute(
        sa.text(
            "INSERT INTO districts (code, name_en, name_ml) "
            "SELECT * FROM unnest(CAST(:codes AS text[]), CAST(:names_en AS text[]), "
            "CAST(:names_ml AS text[])) "
            "ON CONFLICT (code) DO UPDATE SET name_en = EXCLUDED.name_en, "
            "name_ml = EXCLUDED.name_ml "
            "WHERE (districts.name_en, districts.name_ml) "
            "IS DISTINCT FROM (EXCLUDED.name_en, EXCLUDED.name_ml)"
        ),
        {
            "codes": [district.code for district in districts],
            "names_en": [district.name_en for district in districts],
            "names_ml": [district.name_ml for district in districts],
        },
    ).rowcount


def _upsert_bodies(conn: sa.Connection, bodies: tuple[LocalBody, ...]) -> int:
    # The district is not updated: it is part of the code.
    return conn.execute(
        sa.text(
            "INSERT INTO local_bodies (code, district, type, name_en, name_ml) "
            "SELECT * FROM unnest(CAST(:codes AS text[]), CAST(:districts AS text[]), "
            "CAST(:types AS text[]), CAST(:names_en AS text[]), CAST(:names_ml AS text[])) "
            "ON CONFLICT (code) DO UPDATE SET type = EXCLUDED.type, "
            "name_en = EXCLUDED.name_en, name_ml = EXCLUDED.name_ml "
            "WHERE (local_bodies.type, local_bodies.name_en, local_bodies.name_ml) "
            "IS DISTINCT FROM (EXCLUDED.type, EXCLUDED.name_en, EXCLUDED.name_ml)"
        ),
        {
            "codes": [body.code for body in bodies],
            "districts": [body.district for body in bodies],
            "types": [body.type for body in bodies],
            "names_en": [body.name_en for body in bodies],
            "names_ml": [body.name_ml for body in bodies],
        },
    ).rowcount


def _insert_wards(conn: sa.Connection, bodies: tuple[LocalBody, ...]) -> int:
    # A ward's code follows from its body and number, and its names are set
    # elsewhere: an existing ward is left exactly as it is.
    wards = [(body.code, n) for body in bodies for n in range(1, body.wards + 1)]
    return conn.execute(
        sa.text(
            "INSERT INTO wards (local_body, number, code) "
            "SELECT * FROM unnest(CAST(:bodies AS text[]), CAST(:numbers AS integer[]), "
            "CAST(:codes AS text[])) "
            "ON CONFLICT (local_body, number) DO NOTHING"
        ),
        {
            "bodies": [body for body, _ in wards],
            "numbers": [number for _, number in wards],
            "codes": [ward_code(body, number) for body, number in wards],
        },
    ).rowcount
