"""The workflow state machine, read from a catalogue definition.

A definition's "workflow" section names its states and actions:

    {"initial_state": "submitted",
     "states": {"submitted": {"waits_on": "clerk", "sla_days": 3},
                "approved": {"final": true, "outcome": "granted"}, ...},
     "actions": [{"name": "verify", "from": ["submitted"], "to": "verified",
                  "event": "FileVerified", "requires_remarks": false}, ...]}

Who may act is decided by the state: a non-final state "waits on" one role,
and only a holder of that role may take the state's actions. The role
APPLICANT means the citizen who filed the application, and nobody else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

APPLICANT = "applicant"

# How a final state ends a file: what was asked for was granted (approved,
# issued, resolved), refused, or the file was closed without either. Only a
# grant waits for the fee; a refusal or a closing never does, so an unpaid
# file can always be ended.
GRANTED, REFUSED, CLOSED = "granted", "refused", "closed"
OUTCOMES = (GRANTED, REFUSED, CLOSED)


class DefinitionError(ValueError):
    """A workflow definition that contradicts itself."""


@dataclass(frozen=True)
class Action:
    name: str
    from_states: tuple[str, ...]
    to_state: str
    event_type: str
    requires_remarks: bool = False


@dataclass(frozen=True)
class State:
    name: str
    waits_on: str | None
    sla_days: int | None
    final: bool
    # None only in workflows pinned before outcomes existed
    outcome: str | None = None
    # {"to": role} or {"action": name}: what an overrun of the state's time
    # limit does; None: the platform's default (the secretary).
    escalation: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Workflow:
    initial_state: str
    states: Mapping[str, State]
    actions: Mapping[str, Action]

    @classmethod
    def from_definition(cls, workflow: Mapping[str, Any]) -> Workflow:
        states = {
            name: State(
                name=name,
                waits_on=spec.get("waits_on"),
                sla_days=spec.get("sla_days"),
                final=bool(spec.get("final", False)),
                outcome=spec.get("outcome"),
                escalation=spec.get("escalation"),
            )
            for name, spec in workflow["states"].items()
        }
        actions = {
            spec["name"]: Action(
                name=spec["name"],
                from_states=tuple(spec["from"]),
                to_state=spec["to"],
                event_type=spec["event"],
                requires_remarks=bool(spec.get("requires_remarks", False)),
            )
            for spec in workflow["actions"]
        }
        machine = cls(workflow["initial_state"], states, actions)
        problems = machine.problems()
        if problems:
            raise DefinitionError("; ".join(problems))
        return machine

    def problems(self) -> list[str]:
        """Every inconsistency at once: unknown states, dead ends, orphans."""
        problems = []
        if self.initial_state not in self.states:
            problems.append(f"initial state {self.initial_state!r} is not a state")
        for state in self.states.values():
            if state.final and state.waits_on:
                problems.append(f"final state {state.name!r} cannot wait on a role")
            if not state.final and not state.waits_on:
                problems.append(f"state {state.name!r} must wait on a role or be final")
            if state.outcome is not None and (not state.final or state.outcome not in OUTCOMES):
                problems.append(
                    f"state {state.name!r}: only a final state has an outcome, one of "
                    + ", ".join(OUTCOMES)
                )
            action_name = (state.escalation or {}).get("action")
            if action_name is not None and (
                action_name not in self.actions
                or state.name not in self.actions[action_name].from_states
            ):
                problems.append(
                    f"state {state.name!r} escalates by {action_name!r}, not an action out of it"
                )
            if not state.final and not self.actions_from(state.name):
                problems.append(f"state {state.name!r} has no action out of it")
        for action in self.actions.values():
            for name in (*action.from_states, action.to_state):
                if name not in self.states:
                    problems.append(f"action {action.name!r} names unknown state {name!r}")
        reachable = self._reachable()
        for name in self.states:
            if name not in reachable:
                problems.append(f"state {name!r} cannot be reached")
        return problems

    def _reachable(self) -> set[str]:
        seen, frontier = set(), [self.initial_state]
        while frontier:
            current = frontier.pop()
            if current in seen:
                continue
            seen.add(current)
            frontier.extend(action.to_state for action in self.actions_from(current))
        return seen

    def actions_from(self, state: str) -> list[Action]:
        return [action for action in self.actions.values() if state in action.from_states]

    def waits_on(self, state: str) -> str | None:
        return self.states[state].waits_on

    def is_final(self, state: str) -> bool:
        return self.states[state].final

    def grants(self, action: Action) -> bool:
        """Whether the action ends the file by granting what was asked."""
        return self.states[action.to_state].outcome == GRANTED
