"""Reading the access token out of the Authorization header, and the Principal."""

import pytest

from ksmart_common.errors import Unauthenticated
from ksmart_gateway.auth import Principal, bearer_token

TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER  {TOKEN}", f"  Bearer {TOKEN}  "]
)
def test_the_token_is_read_from_a_bearer_header(header):
    assert bearer_token(header) == TOKEN


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_is_unauthenticated(header):
    with pytest.raises(Unauthenticated, match="header is required"):
        bearer_token(header)


@pytest.mark.parametrize(
    "header",
    [
        TOKEN,
        "Bearer",
        "Bearer ",
        f"Basic {TOKEN}",
        f"Token {TOKEN}",
        f"Bearer {TOKEN} extra",
        f"Bearer {TOKEN},{TOKEN}",
        "Bearer ചെക്ക്",
    ],
)
def test_a_malformed_header_is_unauthenticated(header):
    with pytest.raises(Unauthenticated, match="must be 'Bearer <token>'"):
        bearer_token(header)


def test_a_principal_knows_its_roles_and_is_immutable():
    principal = Principal("u-1", "secretary.kochi", ("clerk", "secretary"), "KL-EKM-KOC")
    assert principal.has_role("secretary") and principal.has_role("clerk")
    assert not principal.has_role("auditor")
    with pytest.raises(AttributeError):
        principal.roles = ("administrator",)
