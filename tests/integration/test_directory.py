"""The local-body directory loaded into a real PostgreSQL, connected as the
identity service's own least-privileged role (the fixture has migrated it)."""

import dataclasses

import pytest
import sqlalchemy as sa

from ksmart_common.errors import InvalidInput
from ksmart_identity.directory import (
    get_local_body,
    list_districts,
    list_local_bodies,
    load_directory,
    shipped_directory,
    ward_exists,
)

INSUFFICIENT_PRIVILEGE = "42501"


@pytest.fixture(scope="module")
def shipped():
    return shipped_directory()


@pytest.fixture
def engine(identity_db):
    engine = sa.create_engine(identity_db.service_url)
    yield engine
    engine.dispose()


@pytest.fixture
def loaded(engine, shipped):
    return load_directory(engine, shipped)


def _with_body(directory, code, **changes):
    bodies = tuple(
        dataclasses.replace(body, **changes) if body.code == code else body
        for body in directory.bodies
    )
    return dataclasses.replace(directory, bodies=bodies)


def _count(engine, table):
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_loading_writes_the_whole_directory(engine, shipped, loaded):
    assert loaded == {
        "districts": 14,
        "local_bodies": len(shipped.bodies),
        "wards": sum(body.wards for body in shipped.bodies),
    }
    assert _count(engine, "wards") == loaded["wards"]


def test_loading_again_changes_nothing(engine, shipped, loaded):
    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT xmin::text, code FROM local_bodies")).all()
    assert load_directory(engine, shipped) == {"districts": 0, "local_bodies": 0, "wards": 0}
    with engine.connect() as conn:
        after = conn.execute(sa.text("SELECT xmin::text, code FROM local_bodies")).all()
    # Same row versions: not even a no-op update was written.
    assert sorted(after) == sorted(before)


def test_a_body_reads_back_as_loaded(engine, loaded):
    assert get_local_body(engine, "KL-EKM-KOC") == {
        "code": "KL-EKM-KOC",
        "district": "EKM",
        "type": "corporation",
        "name": {"en": "Kochi", "ml": "കൊച്ചി"},
        "wards": 74,
        "dissolved_on": None,
    }
    assert get_local_body(engine, "KL-TVM-TVC")["type"] == "corporation"
    assert get_local_body(engine, "KL-EKM-NOPE") is None


def test_bodies_are_listed_by_district_and_type(engine, shipped, loaded):
    assert len(list_local_bodies(engine)) == len(shipped.bodies)
    ernakulam = list_local_bodies(engine, district="EKM", type="municipality")
    assert len(ernakulam) == 13
    assert [body["code"] for body in ernakulam] == sorted(body["code"] for body in ernakulam)
    assert {body["district"] for body in ernakulam} == {"EKM"}
    assert [body["code"] for body in list_local_bodies(engine, type="corporation")] == [
        "KL-EKM-KOC",
        "KL-KKD-KKC",
        "KL-KLM-KLC",
        "KL-KNR-KNC",
        "KL-TSR-TSC",
        "KL-TVM-TVC",
    ]


def test_listing_refuses_an_unknown_type_or_a_malformed_district(engine, loaded):
    with pytest.raises(InvalidInput) as refused:
        list_local_bodies(engine, district="Ernakulam", type="village")
    assert [problem["field"] for problem in refused.value.problems] == ["district", "type"]


def test_districts_are_listed(engine, loaded):
    districts = list_districts(engine)
    assert len(districts) == 14
    assert {"code": "EKM", "name": {"en": "Ernakulam", "ml": "എറണാകുളം"}} in districts


def test_wards_run_from_one_to_the_body_s_count(engine, loaded):
    assert ward_exists(engine, "KL-EKM-KOC", 1)
    assert ward_exists(engine, "KL-EKM-KOC", 74)
    assert not ward_exists(engine, "KL-EKM-KOC", 75)
    assert not ward_exists(engine, "KL-EKM-KOC", 0)
    assert not ward_exists(engine, "KL-EKM-NOPE", 1)
    with engine.connect() as conn:
        code = conn.execute(
            sa.text("SELECT code FROM wards WHERE local_body = 'KL-EKM-KOC' AND number = 12")
        ).scalar_one()
    assert code == "KL-EKM-KOC-W012"


def test_a_corrected_name_or_new_wards_are_applied_and_nothing_else(engine, shipped, loaded):
    corrected = _with_body(shipped, "KL-EKM-KOC", name_en="Cochin", wards=76)
    assert load_directory(engine, corrected) == {"districts": 0, "local_bodies": 1, "wards": 2}
    kochi = get_local_body(engine, "KL-EKM-KOC")
    assert (kochi["name"]["en"], kochi["wards"]) == ("Cochin", 76)


def test_fewer_wards_than_stored_are_refused_and_nothing_is_written(engine, shipped, loaded):
    shrunk = _with_body(shipped, "KL-EKM-KOC", name_en="Cochin", wards=70)
    with pytest.raises(InvalidInput) as refused:
        load_directory(engine, shrunk)
    assert [problem["field"] for problem in refused.value.problems] == ["KL-EKM-KOC.wards"]
    assert get_local_body(engine, "KL-EKM-KOC")["name"]["en"] == "Kochi"


def test_a_dissolution_and_a_ward_s_name_survive_a_reload(engine, shipped, loaded):
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE local_bodies SET dissolved_on = '2025-11-01' WHERE code = 'KL-EKM-ELR'")
        )
        conn.execute(
            sa.text("UPDATE wards SET name_en = 'Fort Kochi' WHERE code = 'KL-EKM-KOC-W001'")
        )
    assert load_directory(engine, shipped) == {"districts": 0, "local_bodies": 0, "wards": 0}
    assert get_local_body(engine, "KL-EKM-ELR")["dissolved_on"] == "2025-11-01"
    with engine.connect() as conn:
        name = conn.execute(
            sa.text("SELECT name_en FROM wards WHERE code = 'KL-EKM-KOC-W001'")
        ).scalar_one()
    assert name == "Fort Kochi"


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM local_bodies",
        "DELETE FROM wards",
        "DELETE FROM districts",
        "TRUNCATE local_bodies CASCADE",
        "UPDATE local_bodies SET code = 'KL-EKM-KOX' WHERE code = 'KL-EKM-KOC'",
        "UPDATE wards SET number = 99 WHERE code = 'KL-EKM-KOC-W001'",
        "UPDATE districts SET code = 'XXX' WHERE code = 'EKM'",
    ],
)
def test_the_identity_role_can_never_remove_or_recode_an_entry(engine, loaded, statement):
    with pytest.raises(sa.exc.ProgrammingError) as refused, engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert refused.value.orig.pgcode == INSUFFICIENT_PRIVILEGE
    assert get_local_body(engine, "KL-EKM-KOC")["wards"] == 74
