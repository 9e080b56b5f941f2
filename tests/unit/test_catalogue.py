"""The service catalogue: shipped definitions, the definition schema, content
hashes, versions kept for ever, and the nameko service around them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from nameko.containers import ServiceContainer
from nameko.testing.services import worker_factory
from nameko.testing.utils import get_extension

from ksmart_catalogue.catalogue import DEFINITIONS_DIR, LEDGER_FILE, SUMMARY_KEYS, Catalogue
from ksmart_catalogue.dependencies import CatalogueProvider
from ksmart_catalogue.errors import CatalogueError
from ksmart_catalogue.schema import CATEGORIES, WAITING_ROLES, load_definition
from ksmart_catalogue.service import CatalogueService
from ksmart_common.canonical import content_hash
from ksmart_common.domain.workflow import APPLICANT, Workflow
from ksmart_common.errors import InvalidInput, NotFound

SHIPPED_FILES = sorted(DEFINITIONS_DIR.glob("*/v*.json"))
SHIPPED_CODES = {path.parent.name for path in SHIPPED_FILES}


def shipped(code: str, version: int = 1) -> dict[str, Any]:
    return json.loads((DEFINITIONS_DIR / code / f"v{version}.json").read_text(encoding="utf-8"))


def write_definition(
    root: Path, definition: dict[str, Any], folder: str | None = None, name: str | None = None
) -> Path:
    """Write where the catalogue expects it, unless told another folder or name."""
    path = root / (folder or definition["code"]) / (name or f"v{definition['version']}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(definition, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def lines_of(error: CatalogueError) -> list[str]:
    return str(error).splitlines()


# --- the shipped definitions -------------------------------------------------


def test_at_least_forty_services_are_shipped_across_every_category():
    catalogue = Catalogue.load()
    services = catalogue.list_services()
    assert len(services) >= 40
    assert {service["category"] for service in services} == set(CATEGORIES)
    for category in CATEGORIES:
        in_category = [s for s in services if s["category"] == category]
        assert len(in_category) >= 3, f"{category} has {len(in_category)} services"


def test_short_codes_are_unique_in_the_catalogue():
    short_codes = [service["short_code"] for service in Catalogue.load().list_services()]
    assert len(short_codes) == len(set(short_codes))


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_shipped_definition_loads_with_a_consistent_workflow(path):
    definition = load_definition(path)
    machine = Workflow.from_definition(definition["workflow"])

    reachable = _reachable(machine, machine.initial_state)
    assert reachable == set(machine.states), "every state can be reached"
    for state in machine.states.values():
        if state.final:
            assert state.waits_on is None and state.sla_days is None
            continue
        assert machine.actions_from(state.name), f"{state.name} has a way out"
        assert state.waits_on in WAITING_ROLES
        assert state.sla_days >= 1
        # No trap: from every open state some decision can still be reached.
        assert any(machine.is_final(name) for name in _reachable(machine, state.name))
    for name, spec in definition["workflow"]["states"].items():
        assert spec["label"]["en"] and spec["label"]["ml"], name
    # Every role a workflow names is one the platform knows.
    assert {state.waits_on for state in machine.states.values() if not state.final} <= set(
        WAITING_ROLES
    )
    # A refusal always says why.
    for action in ("return_for_clarification", "reject"):
        if action in machine.actions:
            assert machine.actions[action].requires_remarks
    # The office's per-state limits add up to no more than the service's
    # time limit, whichever way the file goes (the applicant's time to answer
    # a clarification is not the office's).
    assert (
        _longest_office_days(machine, machine.initial_state, frozenset())
        <= (definition["sla_days"])
    )


def test_a_building_permit_is_inspected_on_site_by_the_overseer():
    machine = Workflow.from_definition(shipped("building-permit")["workflow"])
    assert machine.actions["verify"].to_state == "site_inspection"
    assert machine.waits_on("site_inspection") == "overseer"
    inspection = machine.actions["record_site_inspection"]
    assert (inspection.from_states, inspection.to_state) == (("site_inspection",), "verified")


def test_a_document_can_depend_on_an_answer():
    documents = {doc["code"]: doc for doc in shipped("birth-certificate")["documents"]}
    assert documents["applicant_passport"]["condition"] == {
        "field": "applicant_abroad",
        "equals": True,
    }
    assert documents["rdo_order"]["condition"]["equals"] == "after_one_year"


def test_the_shipped_catalogue_records_every_published_version():
    catalogue = Catalogue.load()
    ledger = json.loads((DEFINITIONS_DIR / LEDGER_FILE).read_text(encoding="utf-8"))
    assert ledger == catalogue.ledger(), (
        f"{LEDGER_FILE} must record every shipped version; it should read "
        f"{json.dumps(catalogue.ledger(), indent=2)}"
    )


# --- problems are reported with the file name, all at once --------------------


def test_a_broken_definition_names_the_file_and_every_problem_at_once(tmp_path):
    broken = shipped("trade-licence")
    broken["sla_days"] = "thirty"
    broken["name"]["ml"] = "Trade licence"  # not Malayalam
    broken["applicable_to"].append("village")
    broken["colour"] = "green"
    broken["fields"][1]["type"] = "dropdown"
    broken["fields"][2]["required"] = "yes"
    broken["documents"][2]["condition"] = {"field": "no_such_field", "equals": "x"}
    broken["workflow"]["states"]["verified"]["waits_on"] = "mayor"
    broken["workflow"]["states"]["approved"]["sla_days"] = 3
    path = write_definition(tmp_path, broken)

    with pytest.raises(CatalogueError) as raised:
        load_definition(path)

    lines = lines_of(raised.value)
    assert all(line.startswith(f"{path}: ") for line in lines)
    fields_named = {line.removeprefix(f"{path}: ").split(": ")[0] for line in lines}
    assert fields_named == {
        "sla_days",
        "name.ml",
        "applicable_to.3",
        "colour",
        "fields.1.type",
        "fields.2.required",
        "documents.2.condition",
        "workflow.states.verified.waits_on",
        "workflow.states.approved.sla_days",
    }
    assert f"{path}: documents.2.condition: names no field 'no_such_field'" in lines
    assert {problem["file"] for problem in raised.value.problems} == {str(path)}


def test_a_workflow_that_contradicts_itself_is_reported_with_the_file_name(tmp_path):
    broken = shipped("residence-certificate")
    workflow = broken["workflow"]
    workflow["states"]["on_hold"] = {
        "label": {"en": "On hold", "ml": "തടഞ്ഞുവച്ചു"},
        "waits_on": "section_officer",
        "sla_days": 5,
    }
    workflow["actions"] = [a for a in workflow["actions"] if a["name"] != "resubmit"]
    path = write_definition(tmp_path, broken)

    with pytest.raises(CatalogueError) as raised:
        load_definition(path)

    assert lines_of(raised.value) == [
        f"{path}: workflow: state 'clarification_requested' has no action out of it",
        f"{path}: workflow: state 'on_hold' has no action out of it",
        f"{path}: workflow: state 'on_hold' cannot be reached",
    ]


def test_ambiguous_actions_are_refused(tmp_path):
    broken = shipped("residence-certificate")
    actions = broken["workflow"]["actions"]
    actions.append({**copy.deepcopy(actions[0]), "name": "verify_again"})
    actions.append(copy.deepcopy(actions[1]))
    path = write_definition(tmp_path, broken)

    with pytest.raises(CatalogueError) as raised:
        load_definition(path)

    assert lines_of(raised.value) == [
        f"{path}: workflow.actions.5.event: 'verify' already emits FileVerified "
        "from state 'submitted'",
        f"{path}: workflow.actions.6.name: action 'return_for_clarification' is defined twice",
    ]


def test_conditions_must_name_a_choice_or_boolean_answer(tmp_path):
    broken = shipped("birth-certificate")
    documents = broken["documents"]
    documents[0]["condition"] = {"field": "mother_name", "equals": "x"}
    documents[1]["condition"] = {"field": "place_of_birth", "in": ["hospital", "moon"]}
    documents[2]["condition"] = {"field": "applicant_abroad", "equals": 1}
    documents[3]["condition"] = {"field": "applicant_abroad", "equals": True, "in": [True]}
    path = write_definition(tmp_path, broken)

    with pytest.raises(CatalogueError) as raised:
        load_definition(path)

    assert set(lines_of(raised.value)) == {
        f"{path}: documents.3.condition: give exactly one of 'equals' and 'in'",
        f"{path}: documents.0.condition: field 'mother_name' is not a choice or boolean field",
        f"{path}: documents.1.condition: 'moon' is not an answer field 'place_of_birth' can have",
        f"{path}: documents.2.condition: 1 is not an answer field 'applicant_abroad' can have",
    }


def test_unreadable_json_and_repeated_keys_name_the_file(tmp_path):
    folder = tmp_path / "trade-licence"
    folder.mkdir()
    truncated = folder / "v1.json"
    truncated.write_text('{"code": "trade-licence", ', encoding="utf-8")
    repeated = folder / "v2.json"
    repeated.write_text('{"code": "trade-licence", "code": "x"}', encoding="utf-8")

    for path, reason in ((truncated, "Expecting"), (repeated, "key 'code' appears twice")):
        with pytest.raises(CatalogueError) as raised:
            load_definition(path)
        assert str(raised.value).startswith(f"{path}: (file): cannot be read as JSON")
        assert reason in str(raised.value)


def test_the_catalogue_reports_every_broken_file_in_one_error(tmp_path):
    wrong_folder = write_definition(tmp_path, shipped("trade-licence"), folder="trade-licences")
    wrong_version = write_definition(tmp_path, shipped("birth-certificate"), name="v2.json")
    badly_named = write_definition(tmp_path, shipped("building-permit"), name="version1.json")
    broken = shipped("residence-certificate")
    broken["fees"] = [{**broken["fees"][0], "amount_paise": -5}]
    broken_path = write_definition(tmp_path, broken)

    with pytest.raises(CatalogueError) as raised:
        Catalogue.load(tmp_path)

    assert set(lines_of(raised.value)) == {
        f"{wrong_folder}: code: 'trade-licence' does not match folder 'trade-licences'",
        f"{wrong_version}: version: 1 does not match file name v2.json",
        f"{badly_named}: (file): must be named v<version>.json, e.g. v1.json",
        f"{broken_path}: fees.0.amount_paise: Must be greater than or equal to 1.",
    }


def test_an_empty_or_missing_catalogue_is_refused(tmp_path):
    with pytest.raises(CatalogueError, match="holds no definitions"):
        Catalogue.load(tmp_path)
    with pytest.raises(CatalogueError, match="is not a folder"):
        Catalogue.load(tmp_path / "mistyped")


# --- content hashes ------------------------------------------------------------


def test_the_content_hash_is_the_hash_of_the_stored_definition():
    catalogue = Catalogue.load()
    for summary in catalogue.list_services():
        definition = catalogue.get_service(summary["code"])
        claimed = definition.pop("content_hash")
        assert claimed == summary["content_hash"] == content_hash(definition)
        assert definition == shipped(summary["code"])


def test_content_hashes_are_stable_and_differ_when_content_differs(tmp_path):
    original = shipped("residence-certificate")
    first = Catalogue.load().get_service("residence-certificate")["content_hash"]
    assert Catalogue.load().get_service("residence-certificate")["content_hash"] == first

    # Key order and white space are not content: canonical JSON ignores them.
    reordered = dict(reversed(list(copy.deepcopy(original).items())))
    same_folder = tmp_path / "same"
    path = same_folder / "residence-certificate" / "v1.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(reordered, indent=7, ensure_ascii=True), encoding="utf-8")
    assert Catalogue.load(same_folder).get_service("residence-certificate")["content_hash"] == first

    edited = copy.deepcopy(original)
    edited["workflow"]["states"]["submitted"]["sla_days"] += 1
    changed_folder = tmp_path / "changed"
    write_definition(changed_folder, edited)
    changed = Catalogue.load(changed_folder).get_service("residence-certificate")
    assert changed["content_hash"] != first


# --- versions are kept for ever -----------------------------------------------


@pytest.fixture
def two_versions(tmp_path) -> Path:
    first = shipped("trade-licence")
    second = copy.deepcopy(first)
    second["version"] = 2
    second["fees"][0]["amount_paise"] = 30000
    write_definition(tmp_path, first)
    write_definition(tmp_path, second)
    write_definition(tmp_path, shipped("birth-certificate"))
    return tmp_path


def test_an_old_version_stays_retrievable_by_its_hash(two_versions):
    catalogue = Catalogue.load(two_versions)
    old = catalogue.get_service("trade-licence", 1)

    latest = catalogue.get_service("trade-licence")
    assert (latest["version"], latest["fees"][0]["amount_paise"]) == (2, 30000)
    assert catalogue.versions("trade-licence") == [1, 2]
    assert [(s["code"], s["version"]) for s in catalogue.list_services()] == [
        ("birth-certificate", 1),
        ("trade-licence", 2),
    ]
    assert catalogue.get_by_hash(old["content_hash"]) == old
    assert old["fees"][0]["amount_paise"] == 25000
    assert old["content_hash"] != latest["content_hash"]


def test_a_published_version_can_be_neither_changed_nor_removed(two_versions):
    (two_versions / LEDGER_FILE).write_text(
        json.dumps(Catalogue.load(two_versions).ledger()), encoding="utf-8"
    )
    first = two_versions / "trade-licence" / "v1.json"
    edited = json.loads(first.read_text(encoding="utf-8"))
    edited["fees"][0]["amount_paise"] = 1
    first.write_text(json.dumps(edited), encoding="utf-8")
    (two_versions / "birth-certificate" / "v1.json").unlink()

    with pytest.raises(CatalogueError) as raised:
        Catalogue.load(two_versions)

    lines = lines_of(raised.value)
    assert len(lines) == 2
    assert lines[0].startswith(f"{two_versions / LEDGER_FILE}: birth-certificate/v1: ")
    assert "kept for ever" in lines[0]
    assert lines[1].startswith(f"{first}: (content): was published with content hash ")
    assert "never changes" in lines[1]


def test_results_are_copies_a_caller_cannot_corrupt():
    catalogue = Catalogue.load()
    catalogue.get_service("trade-licence")["fields"].clear()
    catalogue.list_services()[0]["name"]["en"] = "changed"
    assert catalogue.get_service("trade-licence")["fields"]
    assert catalogue.list_services()[0]["name"]["en"] != "changed"


def test_unknown_codes_versions_and_hashes_are_not_found():
    catalogue = Catalogue.load()
    with pytest.raises(NotFound, match="no service 'dog-licence'"):
        catalogue.get_service("dog-licence")
    with pytest.raises(NotFound, match="no version 9"):
        catalogue.get_service("trade-licence", 9)
    with pytest.raises(NotFound):
        catalogue.get_by_hash("0" * 64)
    with pytest.raises(InvalidInput):
        catalogue.get_service("trade-licence", "1")


# --- the nameko service ---------------------------------------------------------


def test_the_rpc_methods_answer_from_the_catalogue():
    service = worker_factory(CatalogueService, catalogue=Catalogue.load())

    summaries = service.list_services()
    assert {summary["code"] for summary in summaries} == SHIPPED_CODES
    assert set(summaries[0]) == {*SUMMARY_KEYS, "fee_paise", "content_hash"}
    permit = service.get_service("building-permit", version=1)
    assert service.get_definition(permit["content_hash"]) == permit
    assert service.health() == {
        "status": "ok",
        "service": "catalogue",
        "services": len(SHIPPED_CODES),
        "versions": len(SHIPPED_FILES),
    }
    with pytest.raises(NotFound):
        service.get_definition("not-a-hash")


def test_the_container_loads_the_catalogue_once_from_its_configured_folder(two_versions):
    container = ServiceContainer(CatalogueService, container_config(two_versions))
    provider = get_extension(container, CatalogueProvider)
    provider.setup()

    loaded = provider.get_dependency(worker_ctx=None)
    assert provider.get_dependency(worker_ctx=None) is loaded
    assert loaded.versions("trade-licence") == [1, 2]


def test_a_broken_catalogue_stops_the_container_from_starting(tmp_path):
    container = ServiceContainer(CatalogueService, container_config(tmp_path))
    with pytest.raises(CatalogueError):
        get_extension(container, CatalogueProvider).setup()


def _reachable(machine: Workflow, start: str) -> set[str]:
    seen: set[str] = set()
    frontier = [start]
    while frontier:
        state = frontier.pop()
        if state not in seen:
            seen.add(state)
            frontier.extend(action.to_state for action in machine.actions_from(state))
    return seen


def _longest_office_days(machine: Workflow, state: str, seen: frozenset[str]) -> int:
    """The most days the office's states can add up to on a path without
    repeats from `state`, not passing through the applicant's turn."""
    if machine.is_final(state) or machine.waits_on(state) == APPLICANT:
        return 0
    days = machine.states[state].sla_days
    onward = [
        _longest_office_days(machine, action.to_state, seen | {state})
        for action in machine.actions_from(state)
        if action.to_state not in seen | {state}
    ]
    return days + max(onward, default=0)


def container_config(catalogue_dir: Path) -> dict[str, str]:
    # The container is built and its provider set up, never started: no
    # broker is contacted, but nameko's RPC consumer reads the URI on binding.
    return {"AMQP_URI": "memory://", "CATALOGUE_DIR": str(catalogue_dir)}


# --- search ------------------------------------------------------------------


def test_services_are_found_by_words_in_either_language_category_and_body_type():
    catalogue = Catalogue.load()
    assert [s["code"] for s in catalogue.list_services("birth certificate")][:1] == [
        "birth-certificate"
    ]
    assert "birth-certificate" in {s["code"] for s in catalogue.list_services("ജനന")}
    assert "trade-licence" in {s["code"] for s in catalogue.list_services("TRADE")}
    registrations = catalogue.list_services(category="civil-registration")
    assert registrations and {s["category"] for s in registrations} == {"civil-registration"}
    in_corporations = catalogue.list_services(local_body_type="corporation")
    assert all("corporation" in s["applicable_to"] for s in in_corporations)
    assert catalogue.list_services("no such service anywhere") == []


def test_a_search_with_unknown_filters_names_each_problem():
    with pytest.raises(InvalidInput) as raised:
        Catalogue.load().list_services(category="astrology", local_body_type="kingdom")
    assert {p["field"] for p in raised.value.problems} == {"category", "local_body_type"}


def test_categories_count_their_services():
    categories = {c["code"]: c for c in Catalogue.load().categories()}
    assert set(categories) == set(CATEGORIES)
    assert sum(c["services"] for c in categories.values()) == len(Catalogue.load().list_services())
    assert categories["civil-registration"]["name"]["ml"]


def test_a_short_code_belongs_to_one_service_for_ever(tmp_path):
    write_definition(tmp_path, shipped("birth-certificate"))
    thief = shipped("trade-licence")
    thief["short_code"] = "BR"
    path = write_definition(tmp_path, thief)
    with pytest.raises(CatalogueError) as raised:
        Catalogue.load(tmp_path)
    assert lines_of(raised.value) == [
        f"{path}: short_code: 'BR' already belongs to 'birth-certificate'"
    ]


def test_an_escalation_rule_is_a_role_or_an_action_of_an_officials_state(tmp_path):
    broken = shipped("birth-certificate")
    states = broken["workflow"]["states"]
    states["submitted"]["escalation"] = {"to": "secretary", "action": "verify"}
    states["clarification_requested"]["escalation"] = {"to": "secretary"}
    path = write_definition(tmp_path, broken)
    with pytest.raises(CatalogueError) as raised:
        Catalogue.load(tmp_path)
    assert set(lines_of(raised.value)) == {
        f"{path}: workflow.states.submitted.escalation: give exactly one of 'to' and 'action'",
        f"{path}: workflow.states.clarification_requested.escalation: "
        "only a state waiting on an official escalates",
    }
