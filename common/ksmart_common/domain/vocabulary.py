"""The platform's vocabulary, named once: the languages it speaks, the kinds
of local body, what a local body's code looks like, and how a file is
numbered. Services, the gateway's schemas and the tools read these; none
writes its own list. (The databases' CHECK constraints repeat the languages
and the code's shape in SQL, written when their tables were made.)
"""

from __future__ import annotations

import re

# English and Malayalam; English where a preference or a header names
# neither.
LANGUAGES = ("en", "ml")
DEFAULT_LANGUAGE = "en"

# Kerala's 1,200 local bodies are of these five kinds.
LOCAL_BODY_KINDS = (
    "grama_panchayat",
    "block_panchayat",
    "district_panchayat",
    "municipality",
    "corporation",
)

# A local body's code: the state, its district's three capitals, and two to
# six capitals or digits: KL-EKM-KOC is Kochi Corporation in Ernakulam. The
# group is the district. Written so that it reads the same as a JSON Schema
# (ECMA 262) pattern in the OpenAPI document as in Python.
LOCAL_BODY_CODE_PATTERN = r"^KL-([A-Z]{3})-[A-Z0-9]{2,6}$"
LOCAL_BODY_CODE_EXAMPLE = "KL-EKM-KOC"
LOCAL_BODY_CODE = re.compile(LOCAL_BODY_CODE_PATTERN)

# A service's short code, which its files' numbers carry: BR is birth
# registration.
SERVICE_SHORT_CODE_PATTERN = r"^[A-Z]{2,4}$"

# Files are numbered per local body, service and year, in a series the event
# store counts: KL-EKM-KOC/BR/2026/000123 is the 123rd birth registration
# that Kochi Corporation received in 2026. The count is written with at
# least FILE_NUMBER_DIGITS digits, more once a series passes 999999.
FILE_NUMBER_DIGITS = 6
FILE_NUMBER = re.compile(
    "^"
    + LOCAL_BODY_CODE_PATTERN.strip("^$")
    + "/"
    + SERVICE_SHORT_CODE_PATTERN.strip("^$")
    + rf"/[0-9]{{4}}/[0-9]{{{FILE_NUMBER_DIGITS},}}$"
)


def file_number_series(local_body: str, short_code: str, year: int) -> str:
    """The series a file is numbered in; the store appends the number."""
    return f"{local_body}/{short_code}/{year}"


def is_file_number(text: str) -> bool:
    """Whether `text` has the shape of a file's number (not whether such a
    file exists)."""
    return FILE_NUMBER.fullmatch(text) is not None


def district_of(local_body: str) -> str | None:
    """The district a local body's code names, or None if it is not one."""
    shape = LOCAL_BODY_CODE.match(local_body)
    return shape.group(1) if shape else None
