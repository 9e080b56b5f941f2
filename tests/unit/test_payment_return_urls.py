"""Where a payment provider may send a citizen back: only to an allowed
origin (ksmart_gateway.return_urls), so paying is never an open redirect."""

import pytest

from ksmart_gateway.return_urls import allowed_origins, origin_of, return_url_problem

ORIGINS = allowed_origins("https://ksmart.example.org, http://127.0.0.1:8080")


def test_the_setting_lists_origins_normalised():
    assert allowed_origins(" HTTPS://KSmart.Example.org:443/ ,http://[::1]:8080,") == {
        "https://ksmart.example.org",
        "http://[::1]:8080",
    }
    assert allowed_origins("") == frozenset()


def test_every_entry_that_is_not_an_origin_is_named_at_once():
    with pytest.raises(ValueError) as refused:
        allowed_origins("https://ok.example, ftp://x.example, https://x.example/path, portal")
    message = str(refused.value)
    assert "ftp://x.example" in message and "https://x.example/path" in message
    assert "portal" in message and "https://ok.example," not in message


@pytest.mark.parametrize(
    "url",
    [
        "https://ksmart.example.org/files/f-1/payment",
        "https://KSMART.example.org:443/files/f-1/payment?x=1",
        "http://127.0.0.1:8080/files/f-1/payment",
    ],
)
def test_a_url_on_an_allowed_origin_may_be_returned_to(url):
    assert return_url_problem(url, ORIGINS) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/files/f-1/payment",
        "http://ksmart.example.org/files/f-1/payment",  # not https: another origin
        "https://ksmart.example.org:8443/",
        "https://ksmart.example.org.evil.example/",
        "http://127.0.0.1:8081/",
    ],
)
def test_another_origin_is_refused(url):
    assert "allows" in return_url_problem(url, ORIGINS)


@pytest.mark.parametrize(
    "url",
    [
        "/files/f-1/payment",
        "//evil.example/files",
        "javascript:alert(1)",
        "data:text/html,hi",
        "https://ksmart.example.org@evil.example/",
        "https://user@ksmart.example.org/",
        "https://ksmart.example.org:notaport/",
        "https:///nohost",
    ],
)
def test_what_is_not_an_absolute_http_url_without_credentials_is_refused(url):
    assert "absolute http or https URL" in return_url_problem(url, ORIGINS)


@pytest.mark.parametrize(
    "url", ["https://ksmart.example.org/a b", "https://ksmart.example.org/\r\nX: y"]
)
def test_spaces_and_control_characters_are_refused(url):
    assert "spaces or control characters" in return_url_problem(url, ORIGINS)


def test_a_very_long_url_is_refused():
    assert "at most" in return_url_problem("https://ksmart.example.org/" + "a" * 2000, ORIGINS)


def test_with_no_origins_allowed_nothing_may_be_returned_to():
    assert return_url_problem("https://ksmart.example.org/", frozenset()) is not None


def test_an_origin_is_scheme_host_and_port_without_the_default_port():
    assert origin_of("https://Example.org:443/x") == "https://example.org"
    assert origin_of("http://example.org:8080/x") == "http://example.org:8080"
    assert origin_of("ftp://example.org/") is None
