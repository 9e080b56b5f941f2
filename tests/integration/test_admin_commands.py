"""The operator's identity commands, run as an operator runs them: the
first administrator, the directory from files, and signing-key rotation."""

import pytest
import sqlalchemy as sa

from ksmart_identity.keys import jwks
from ksmart_identity.users import authenticate
from ksmart_ops import admin


@pytest.fixture
def identity(identity_db, monkeypatch):
    monkeypatch.setenv("KSMART_IDENTITY_DATABASE_URL", identity_db.service_url)
    engine = sa.create_engine(identity_db.service_url)
    yield engine
    engine.dispose()


def test_the_first_administrator_is_created_with_a_password_from_the_environment(
    identity, monkeypatch, capsys
):
    monkeypatch.setenv("KSMART_ADMIN_PASSWORD", "short")
    assert admin.main(["create-administrator", "root.admin"]) == 1
    assert "at least 12 characters" in capsys.readouterr().err

    monkeypatch.setenv("KSMART_ADMIN_PASSWORD", "a long and secret password")
    assert admin.main(["create-administrator", "root.admin"]) == 0
    user = authenticate(identity, "root.admin", "a long and secret password")
    assert user["kind"] == "administrator" and user["roles"] == ["administrator"]
    # Never twice under one name.
    assert admin.main(["create-administrator", "root.admin"]) == 1


def test_the_directory_loads_from_an_operators_files(identity, tmp_path, capsys):
    districts = tmp_path / "districts.csv"
    bodies = tmp_path / "local_bodies.csv"
    districts.write_text("code,name_en,name_ml\nEKM,Ernakulam,എറണാകുളം\n", encoding="utf-8")
    bodies.write_text(
        "code,district,type,name_en,name_ml,wards\nKL-EKM-KOC,EKM,corporation,Kochi,കൊച്ചി,76\n",
        encoding="utf-8",
    )
    assert (
        admin.main(["load-directory", "--districts", str(districts), "--local-bodies", str(bodies)])
        == 0
    )
    with identity.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM wards")).scalar_one() == 76


def test_a_rotated_key_is_published_beside_the_old_one_until_retired(identity, capsys):
    before = {key["kid"] for key in jwks(identity)["keys"]}
    assert admin.main(["rotate-signing-key"]) == 0
    after = [key["kid"] for key in jwks(identity)["keys"]]
    assert set(after) > before and after[0] not in before  # the new key signs
    (old,) = before
    assert admin.main(["retire-signing-key", old]) == 0
    assert old not in {key["kid"] for key in jwks(identity)["keys"]}
