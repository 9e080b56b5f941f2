"""The applications service's short cache of catalogue definitions."""

from ksmart_applications.dependencies import DefinitionCache


def test_the_definition_cache_asks_the_catalogue_once_a_minute():
    asked = []
    cache = DefinitionCache(ttl_seconds=60)
    fetch = lambda code: asked.append(code) or {"code": code}  # noqa: E731
    assert cache.get("birth-certificate", fetch) == {"code": "birth-certificate"}
    cache.get("birth-certificate", fetch)
    cache.get("trade-licence", fetch)
    assert asked == ["birth-certificate", "trade-licence"]
    expired = DefinitionCache(ttl_seconds=0)
    expired.get("x", fetch)
    expired.get("x", fetch)
    assert asked.count("x") == 2
