"""The operator's identity commands, run as an operator runs them: the
first administrator, the directory from files, signing-key rotation, and the
demo users `make run` seeds and prints."""

import re

import pytest
import sqlalchemy as sa

from ksmart_common import ed25519
from ksmart_common.errors import ServiceUnavailable, TooManyRequests
from ksmart_common.key_anchor import ROOT_PUBLIC_KEY_ENV
from ksmart_identity.keys import TOKEN_KEYS, active_signing_key, jwks
from ksmart_identity.users import (
    DEMO_USERS,
    MAX_FAILED_SIGN_INS,
    authenticate,
    create_user,
    seed_demo_users,
)
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


def test_a_rotated_key_is_endorsed_by_the_operator_and_published_beside_the_old_one(
    identity, tmp_path, monkeypatch, capsys
):
    # The operator's root, on their own machine; the platform knows its public half.
    root_file = tmp_path / "root.pem"
    root_file.write_text(ed25519.private_key_to_pem(ed25519.generate_private_key()))
    assert admin.main(["key-root-public", "--root-key", str(root_file)]) == 0
    monkeypatch.setenv(ROOT_PUBLIC_KEY_ENV, capsys.readouterr().out.strip())
    with pytest.raises(ServiceUnavailable):
        active_signing_key(identity)  # the first key, made and awaiting endorsement
    (old,) = [key["kid"] for key in TOKEN_KEYS.live_keys(identity)]
    assert admin.main(["endorse-keys", "token", old, "--root-key", str(root_file)]) == 0
    assert [key["kid"] for key in jwks(identity)["keys"]] == [old]

    assert admin.main(["rotate-signing-key"]) == 0
    new = re.search(r"new signing key (\w+)", capsys.readouterr().out).group(1)
    assert [key["kid"] for key in jwks(identity)["keys"]] == [old]  # not endorsed yet
    assert (
        admin.main(["endorse-keys", "token", new, "nosuchkid", "--root-key", str(root_file)]) == 1
    )
    assert "no live token key nosuchkid" in capsys.readouterr().err
    assert [key["kid"] for key in jwks(identity)["keys"]] == [new, old]  # the new key signs

    assert admin.main(["retire-signing-key", old]) == 0
    assert [key["kid"] for key in jwks(identity)["keys"]] == [new]


def _printed_demo_password(credentials, capsys) -> str:
    """What `make run` shows a newcomer: `ksmart-admin demo-users`."""
    capsys.readouterr()
    assert admin.main(["demo-users", "--credentials-file", str(credentials)]) == 0
    return re.search(r"each with the password (\S+)", capsys.readouterr().out).group(1)


def test_the_printed_demo_password_signs_in_even_when_the_users_were_seeded_before(
    identity, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("KSMART_DEMO_PASSWORD", raising=False)
    # Another clone on this machine (or this one before `make clean`) seeded
    # the demo users with a password no file here remembers; a newcomer then
    # tried a stale one until the administrator's account locked.
    seed_demo_users(identity, "another checkout's password")
    for _ in range(MAX_FAILED_SIGN_INS):
        authenticate(identity, "admin", "a stale password")
    with pytest.raises(TooManyRequests):
        authenticate(identity, "admin", "another checkout's password")

    credentials = tmp_path / "var" / "run" / "demo-password"  # `make run`'s
    admin.seed_demo(credentials)
    password = _printed_demo_password(credentials, capsys)
    assert password != "another checkout's password"
    for demo in DEMO_USERS:
        assert authenticate(identity, demo.username, password), demo.username
    assert authenticate(identity, "citizen", "another checkout's password") is None
    assert credentials.stat().st_mode & 0o777 == 0o600

    # The next `make run` from this checkout keeps the password it wrote.
    admin.seed_demo(credentials)
    assert _printed_demo_password(credentials, capsys) == password
    assert authenticate(identity, "auditor", password)


def test_an_account_that_is_not_the_demos_keeps_its_password_and_is_named(
    identity, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("KSMART_DEMO_PASSWORD", "the demo password")
    create_user(identity, "auditor", "A real auditor", "auditor", ["auditor"], None, "her own")
    admin.seed_demo(tmp_path / "demo-password")
    assert "auditor: an account that is not the demo's" in capsys.readouterr().err
    assert authenticate(identity, "auditor", "her own")
    assert authenticate(identity, "clerk.kochi", "the demo password")


def test_no_demo_password_is_made_up_when_none_was_written(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KSMART_DEMO_PASSWORD", raising=False)
    assert admin.main(["demo-users", "--credentials-file", str(tmp_path / "missing")]) == 1
    assert "password" not in capsys.readouterr().out
