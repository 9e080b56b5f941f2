"""The key rate limits count a client by."""

import pytest

from ksmart_gateway.service import rate_limit_key


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
