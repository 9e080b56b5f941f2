"""The OpenAPI document lists every query parameter each endpoint reads.

An endpoint names its query schema once, in its declaration (`query=` on
@api): ksmart_gateway.api loads the query by it and hands the method the
values as `query`, and the document is generated from the same
declaration. These tests hold the two ends together: for every endpoint,
the parameters the document lists are the ones the endpoint reads, and
nothing in the gateway reads the query, or loads a schema, another way.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from functools import cache
from pathlib import Path

import pytest
from marshmallow import Schema, ValidationError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

import ksmart_gateway
from ksmart_common.errors import InvalidInput
from ksmart_gateway import schemas
from ksmart_gateway.openapi import PATH_PARAMETER, endpoints, openapi_document
from ksmart_gateway.service import GatewayService

ENDPOINTS = endpoints(GatewayService)
EACH_ENDPOINT = [
    pytest.param(name, endpoint, id=f"{endpoint.method} {endpoint.url}")
    for name, endpoint in ENDPOINTS
]
# The one module that reads a request's query and body by their schemas.
LOADER = "api.py"


@cache
def _document() -> dict:
    return openapi_document(GatewayService)


def _documented_query_parameters(endpoint) -> set[str]:
    path = PATH_PARAMETER.sub(r"{\2}", endpoint.url)
    operation = _document()["paths"][path][endpoint.method.lower()]
    return {
        parameter["name"]
        for parameter in operation.get("parameters", ())
        if parameter["in"] == "query"
    }


def _parameter_names(schema: type[Schema]) -> set[str]:
    return {field.data_key or name for name, field in schema().fields.items()}


def _method_source(name: str) -> ast.AST:
    method = getattr(GatewayService, name)
    written = getattr(method, "__wrapped__", method)  # as written, under @api
    return ast.parse(textwrap.dedent(inspect.getsource(written)))


def _read_in_the_body(name: str) -> set[str]:
    """What the method's own code reads of the query: the fields of a schema
    it loads the query with itself, and what it takes from request.args."""
    read = set()
    for node in ast.walk(_method_source(name)):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "read_query"
            and isinstance(node.args[1], ast.Attribute)
        ):
            read |= _parameter_names(getattr(schemas, node.args[1].attr))
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "args"
            and getattr(node.value, "id", None) == "request"
        ):
            read.add("request.args")
    return read


@pytest.mark.parametrize(("name", "endpoint"), EACH_ENDPOINT)
def test_the_document_lists_every_query_parameter_the_endpoint_reads(name, endpoint):
    reads = _read_in_the_body(name)
    if endpoint.query_schema is not None:
        reads |= _parameter_names(endpoint.query_schema)
    assert _documented_query_parameters(endpoint) == reads


@pytest.mark.parametrize(("name", "endpoint"), EACH_ENDPOINT)
def test_an_endpoint_takes_its_query_and_body_as_declared(name, endpoint):
    """A method takes `query` and `body` exactly when its declaration names
    their schemas: the values come from the declaration, never from a
    schema named again in the method."""
    method = getattr(GatewayService, name)
    taken = inspect.signature(getattr(method, "__wrapped__", method)).parameters
    assert ("query" in taken) == (endpoint.query_schema is not None)
    assert ("body" in taken) == (endpoint.body_schema is not None)


def test_only_the_declaration_reads_the_query_or_loads_a_schema():
    package = Path(ksmart_gateway.__file__).parent
    elsewhere = re.compile(r"\brequest\.args\b|\bread_query\(|\bread_json\(")
    found = [
        f"{module.name}:{number}: {line.strip()}"
        for module in sorted(package.glob("*.py"))
        if module.name != LOADER
        for number, line in enumerate(module.read_text().splitlines(), start=1)
        if elsewhere.search(line)
    ]
    assert found == []


# -- the declared query reaches the method --------------------------------------


class FakeCatalogue:
    def __init__(self):
        self.searches = []

    def list_services(self, words, category, local_body_type):
        self.searches.append((words, category, local_body_type))
        return []


class FakeGateway:
    def __init__(self):
        self.catalogue = FakeCatalogue()


def _request(query_string: str) -> Request:
    return Request(EnvironBuilder(path="/api/v1/services", query_string=query_string).get_environ())


def test_the_loaded_query_is_handed_to_the_method():
    gateway = FakeGateway()
    answer = GatewayService.list_services(
        gateway, _request("q=birth&category=civil&local_body_type=municipality"), None
    )
    assert answer.body == {"services": []}
    assert gateway.catalogue.searches == [("birth", "civil", "municipality")]


def test_a_query_the_declaration_does_not_allow_is_refused_whole():
    gateway = FakeGateway()
    with pytest.raises(ValidationError) as refused:
        GatewayService.list_services(gateway, _request("q=&colour=red"), None)
    assert set(refused.value.messages) == {"q", "colour"}  # every problem at once
    assert gateway.catalogue.searches == []


def test_a_nul_in_the_query_is_refused_by_name():
    with pytest.raises(InvalidInput) as refused:
        GatewayService.list_services(FakeGateway(), _request("category=civil%00"), None)
    assert [problem["field"] for problem in refused.value.problems] == ["category"]
