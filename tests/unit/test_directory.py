"""The local-body directory's shipped data and its validation, without a database."""

from collections import Counter

import pytest

from ksmart_common.errors import InvalidInput
from ksmart_identity.directory import LOCAL_BODY_CODE, read_directory, shipped_directory, ward_code

DISTRICTS = ("TVM", "KLM", "PTA", "ALP", "KTM", "IDK", "EKM")
DISTRICTS += ("TSR", "PKD", "MLP", "KKD", "WYD", "KNR", "KSD")

# Municipalities per district (87 in all).
MUNICIPALITIES = {
    "TVM": 4,
    "KLM": 4,
    "PTA": 4,
    "ALP": 6,
    "KTM": 6,
    "IDK": 2,
    "EKM": 13,
    "TSR": 7,
    "PKD": 7,
    "MLP": 12,
    "KKD": 7,
    "WYD": 3,
    "KNR": 9,
    "KSD": 3,
}
CORPORATIONS = {"TVM", "KLM", "EKM", "TSR", "KKD", "KNR"}


@pytest.fixture(scope="module")
def shipped():
    return shipped_directory()


def test_the_shipped_directory_has_every_district_and_urban_body(shipped):
    assert sorted(district.code for district in shipped.districts) == sorted(DISTRICTS)
    types = Counter(body.type for body in shipped.bodies)
    assert types["corporation"] == 6
    assert types["municipality"] == 87
    assert types["district_panchayat"] == 14
    assert types["grama_panchayat"] >= 40
    assert types["block_panchayat"] >= 10


def test_urban_bodies_and_district_panchayats_sit_in_their_districts(shipped):
    def districts_of(type_):
        return Counter(body.district for body in shipped.bodies if body.type == type_)

    assert districts_of("municipality") == MUNICIPALITIES
    assert set(districts_of("corporation")) == CORPORATIONS
    assert districts_of("district_panchayat") == dict.fromkeys(DISTRICTS, 1)


def test_the_panchayat_sample_is_spread_over_the_districts(shipped):
    for type_ in ("grama_panchayat", "block_panchayat"):
        assert {body.district for body in shipped.bodies if body.type == type_} == set(DISTRICTS)


def test_the_codes_other_data_already_uses_are_kept(shipped):
    bodies = {body.code: body for body in shipped.bodies}
    kochi, tvm = bodies["KL-EKM-KOC"], bodies["KL-TVM-TVC"]
    assert (kochi.district, kochi.type, kochi.name_en) == ("EKM", "corporation", "Kochi")
    assert (tvm.district, tvm.type, tvm.name_en) == ("TVM", "corporation", "Thiruvananthapuram")


def test_every_shipped_code_has_the_stable_shape(shipped):
    for body in shipped.bodies:
        assert LOCAL_BODY_CODE.match(body.code), body.code
        assert body.code.split("-")[1] == body.district


def test_a_ward_code_has_a_three_digit_number():
    assert ward_code("KL-EKM-KOC", 12) == "KL-EKM-KOC-W012"
    assert ward_code("KL-EKM-KOC", 100) == "KL-EKM-KOC-W100"


DISTRICTS_CSV = """\
code,name_en,name_ml
EKM,Ernakulam,എറണാകുളം
EKM,Ernakulam again,എറണാകുളം
tv,,Thiruvananthapuram
"""

BODIES_CSV = """\
code,district,type,name_en,name_ml,wards
KL-EKM-KOC,EKM,corporation,Kochi,കൊച്ചി,74
KL-EKM-KOC,EKM,municipality,Kochi Again,കൊച്ചി,10
KL-EKM-K,EKM,village,,,0
KL-TSR-TSC,EKM,corporation,Thrissur,തൃശ്ശൂർ,-3
KL-XYZ-ABC,XYZ,municipality,Nowhere,എവിടെ\u200d,൩
KL-EKM-ALV,EKM,municipality,Aluva,ആലുവ,26,extra
KL-EKM-KOX,EKM,corporation,KOCHI,൧൨൩,1000

KL-EKM-MRD,EKM,municipality,Maradu,മരട്,33
"""


def _write(tmp_path, districts_text, bodies_text):
    districts, bodies = tmp_path / "districts.csv", tmp_path / "local_bodies.csv"
    districts.write_text(districts_text, encoding="utf-8")
    bodies.write_text(bodies_text, encoding="utf-8")
    return districts, bodies


def test_a_broken_directory_reports_every_problem_at_once(tmp_path):
    with pytest.raises(InvalidInput) as refused:
        read_directory(*_write(tmp_path, DISTRICTS_CSV, BODIES_CSV))
    problems = refused.value.problems
    assert [problem["field"] for problem in problems] == [
        "districts.csv:3.code",
        "districts.csv:4.code",
        "districts.csv:4.name_en",
        "districts.csv:4.name_ml",
        "local_bodies.csv:3.code",
        "local_bodies.csv:4.code",
        "local_bodies.csv:4.type",
        "local_bodies.csv:4.name_en",
        "local_bodies.csv:4.name_ml",
        "local_bodies.csv:4.wards",
        "local_bodies.csv:5.district",
        "local_bodies.csv:5.wards",
        "local_bodies.csv:6.district",
        "local_bodies.csv:6.name_ml",
        "local_bodies.csv:6.wards",
        "local_bodies.csv:7",
        "local_bodies.csv:8.name_en",
        "local_bodies.csv:8.name_ml",
        "local_bodies.csv:8.wards",
    ]
    messages = {problem["field"]: problem["message"] for problem in problems}
    assert messages["districts.csv:3.code"] == "EKM is already on line 2"
    assert messages["local_bodies.csv:3.code"] == "KL-EKM-KOC is already on line 2"
    assert messages["local_bodies.csv:5.district"] == "must be TSR, the district part of the code"
    assert "'XYZ' is not a district" in messages["local_bodies.csv:6.district"]
    assert "U+200D" in messages["local_bodies.csv:6.name_ml"]
    assert (
        messages["local_bodies.csv:8.name_en"] == "a corporation of this name is already on line 2"
    )
    assert messages["local_bodies.csv:8.name_ml"] == "must contain Malayalam letters"


def test_a_wrong_header_is_reported_once_per_file(tmp_path):
    with pytest.raises(InvalidInput) as refused:
        read_directory(
            *_write(
                tmp_path,
                "code,name_en,name_ml\nEKM,Ernakulam,എറണാകുളം\n",
                "code,district,kind,name_en,name_ml,wards\nKL-EKM-KOC,EKM,corporation,K,കൊ,1\n",
            )
        )
    assert refused.value.problems == [
        {
            "field": "local_bodies.csv:1",
            "message": "the header must be code,district,type,name_en,name_ml,wards; "
            "missing type; unknown kind",
        }
    ]


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted(tmp_path):
    districts, bodies = tmp_path / "d.csv", tmp_path / "b.csv"
    districts.write_bytes("\ufeffcode,name_en,name_ml\r\nEKM,Ernakulam,എറണാകുളം\r\n".encode())
    bodies.write_bytes(
        "\ufeffcode,district,type,name_en,name_ml,wards\r\n"
        "KL-EKM-KOC,EKM,corporation,Kochi,കൊച്ചി,74\r\n".encode()
    )
    directory = read_directory(districts, bodies)
    assert [(body.code, body.wards) for body in directory.bodies] == [("KL-EKM-KOC", 74)]


def test_a_file_that_is_not_utf8_is_reported(tmp_path):
    districts, bodies = _write(tmp_path, DISTRICTS_CSV.split("EKM,Ernakulam again")[0], "")
    bodies.write_bytes(b"code,district,type,name_en,name_ml,wards\n" + b"\xff\n")
    with pytest.raises(InvalidInput) as refused:
        read_directory(districts, bodies)
    assert [problem["field"] for problem in refused.value.problems] == ["local_bodies.csv"]
