"""Who is calling, as rate limits count callers: the key, and how far
X-Forwarded-For is believed."""

import pytest

from ksmart_gateway.client_address import client_address, rate_limit_key, trusted_proxies

# An ingress controller's pods: no fixed address, one pod network.
PODS = trusted_proxies("10.244.0.0/16, 192.0.2.7")


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),  # same subscriber
        ("not an address", "not an address"),
    ],
)
def test_an_ipv6_subscriber_is_one_client_however_many_addresses_it_uses(address, key):
    assert rate_limit_key(address) == key


@pytest.mark.parametrize(
    ("remote", "forwarded", "caller"),
    [
        # Any pod of the controller, or the one fixed balancer, is believed.
        ("10.244.3.17", "203.0.113.9", "203.0.113.9"),
        ("10.244.0.2", "203.0.113.9", "203.0.113.9"),
        ("192.0.2.7", "203.0.113.9", "203.0.113.9"),
        ("::ffff:10.244.3.17", "203.0.113.9", "203.0.113.9"),
        # A caller's own claims, left of what our proxies wrote, are not.
        ("10.244.3.17", "198.51.100.1, 203.0.113.9", "203.0.113.9"),
        ("10.244.3.17", "1.2.3.4, 5.6.7.8,203.0.113.9", "203.0.113.9"),
        # Proxies in a chain are skipped: the balancer, then a controller pod.
        ("10.244.3.17", "203.0.113.9, 192.0.2.7", "203.0.113.9"),
        # A caller outside the trusted networks speaks for itself only.
        ("198.51.100.1", "203.0.113.9", "198.51.100.1"),
        # No header: the proxy is the caller.
        ("10.244.3.17", None, "10.244.3.17"),
        # Only proxies in the header: the leftmost, as far as it goes.
        ("10.244.3.17", "10.244.9.9", "10.244.9.9"),
        # What a trusted proxy wrote is taken as written, even if it is no address.
        ("10.244.3.17", "unknown", "unknown"),
        ("10.244.3.17", "2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        (None, None, "unknown"),
    ],
)
def test_x_forwarded_for_is_believed_as_far_as_trusted_proxies_wrote_it(remote, forwarded, caller):
    assert client_address(remote, forwarded, PODS) == caller


def test_without_trusted_proxies_the_header_is_ignored():
    assert client_address("127.0.0.1", "203.0.113.9", trusted_proxies("")) == "127.0.0.1"


def test_a_setting_that_is_not_understood_names_every_bad_entry():
    with pytest.raises(ValueError, match="not understood: ingress, 10.0.0.0/33"):
        trusted_proxies("10.0.0.1, ingress, 10.0.0.0/33")
