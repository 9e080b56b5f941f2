"""What a citizen's list of files and a file tracked by its number say of a
projected row, and which texts can be a file's number: no database."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from ksmart_common.domain.vocabulary import file_number_series, is_file_number
from ksmart_workflow.projection import (
    applicant_summary,
    decode_cursor,
    encode_cursor,
    public_progress,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FILE_ID = "6f1c1e7e-0d5a-4a43-9a55-3f1f5b1b2c01"


def _row(**changes):
    row = {
        "file_id": FILE_ID,
        "file_number": "KL-EKM-KOC/BR/2026/000123",
        "service_code": "birth-certificate",
        "local_body": "KL-EKM-KOC",
        "applicant_id": "a-citizen",
        "assigned_to": "an-official",
        "state": "submitted",
        "waits_on": "clerk",
        "version": 1,
        "state_due_at": NOW + timedelta(days=3),
        "file_due_at": NOW + timedelta(days=7),
        "escalated": False,
        "projected": {
            "submitted_at": "2026-03-01T10:00:00.000000Z",
            "updated_at": "2026-03-01T11:00:00.000000Z",
            "applicant_id": "a-citizen",
            "form": {"child_name": "Someone"},
            "timeline": [{"remarks": "a remark"}],
        },
    }
    return SimpleNamespace(**{**row, **changes})


def test_a_citizen_sees_where_a_file_stands_and_whether_it_waits_on_them():
    listed = applicant_summary(_row())
    assert listed == {
        "file_id": FILE_ID,
        "file_number": "KL-EKM-KOC/BR/2026/000123",
        "service_code": "birth-certificate",
        "local_body": "KL-EKM-KOC",
        "state": "submitted",
        "waits_on": "clerk",
        "needs_applicant": False,
        "state_due_at": "2026-03-04T12:00:00.000000Z",
        "submitted_at": "2026-03-01T10:00:00.000000Z",
        "updated_at": "2026-03-01T11:00:00.000000Z",
        "version": 1,
        "filed_by": None,
    }
    counter = {"actor_id": "a-clerk", "role": "clerk", "office": {}, "consent_id": "c"}
    filed = _row(projected={**_row().projected, "filed_by": counter})
    assert applicant_summary(filed)["filed_by"] == counter
    returned = applicant_summary(
        _row(state="clarification_requested", waits_on="applicant", state_due_at=None)
    )
    assert returned["needs_applicant"] is True and returned["state_due_at"] is None
    decided = applicant_summary(_row(state="approved", waits_on=None, state_due_at=None))
    assert decided["needs_applicant"] is False


def test_tracking_shows_progress_and_nothing_about_a_person():
    tracked = public_progress(_row(), NOW)
    assert tracked == {
        "file_number": "KL-EKM-KOC/BR/2026/000123",
        "service_code": "birth-certificate",
        "local_body": "KL-EKM-KOC",
        "state": "submitted",
        "waits_on": "clerk",
        "state_due_at": "2026-03-04T12:00:00.000000Z",
        "overdue": False,
        "updated_at": "2026-03-01T11:00:00.000000Z",
    }
    text = repr(tracked)
    for personal in ("a-citizen", "an-official", "Someone", "a remark", FILE_ID):
        assert personal not in text


def test_a_file_past_its_states_time_is_overdue_and_one_without_a_time_is_not():
    assert public_progress(_row(state_due_at=NOW - timedelta(seconds=1)), NOW)["overdue"]
    assert not public_progress(_row(state_due_at=NOW), NOW)["overdue"]
    assert not public_progress(_row(state_due_at=None, waits_on="applicant"), NOW)["overdue"]


def test_a_cursor_holds_the_last_files_time_and_id():
    submitted = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(submitted, FILE_ID)) == (submitted, FILE_ID)
    with pytest.raises(ValueError):
        decode_cursor("not-a-cursor")


@pytest.mark.parametrize(
    ("text", "is_number"),
    [
        (f"{file_number_series('KL-EKM-KOC', 'BR', 2026)}/000123", True),
        ("KL-TVM-TVM/TL/2027/000001", True),
        ("KL-EKM-KOC/BR/2026/1234567", True),  # a series past 999999
        ("KL-EKM-KOC/BR/2026/00123", False),  # fewer than six digits
        ("KL-EKM-KOC/BR/26/000123", False),
        ("KL-EKM-KOC/birth/2026/000123", False),
        ("kl-ekm-koc/br/2026/000123", False),
        ("KL-EKM-KOC/BR/2026/000123/more", False),
        ("KL-EKM-KOC/BR/2026/000123\n", False),
        ("", False),
    ],
)
def test_which_texts_have_the_shape_of_a_file_number(text, is_number):
    assert is_file_number(text) is is_number
