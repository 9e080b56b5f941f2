"""The identity service's settings from the environment."""

import pytest

from ksmart_common.key_environment import pem_from_environment
from ksmart_identity import config


def test_access_tokens_live_fifteen_minutes_unless_configured(monkeypatch):
    monkeypatch.delenv(config.ACCESS_TOKEN_TTL_ENV, raising=False)
    assert config.access_token_ttl_seconds() == 900
    monkeypatch.setenv(config.ACCESS_TOKEN_TTL_ENV, "300")
    assert config.access_token_ttl_seconds() == 300


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_a_nonsensical_lifetime_is_a_startup_error(monkeypatch, value):
    monkeypatch.setenv(config.ACCESS_TOKEN_TTL_ENV, value)
    with pytest.raises(ValueError):
        config.access_token_ttl_seconds()


def test_a_signing_key_may_be_given_on_one_line_with_escaped_newlines():
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
    one_line = pem.replace("\n", "\\n")
    assert (
        pem_from_environment(config.SIGNING_KEY_ENV, {config.SIGNING_KEY_ENV: one_line})
        == pem.strip()
    )
    assert (
        pem_from_environment(config.SIGNING_KEY_ENV, {config.SIGNING_KEY_ENV: pem}) == pem.strip()
    )


@pytest.mark.parametrize("value", [None, "", " \n"])
def test_no_signing_key_means_stored_keys(value):
    environ = {} if value is None else {config.SIGNING_KEY_ENV: value}
    assert pem_from_environment(config.SIGNING_KEY_ENV, environ) is None
