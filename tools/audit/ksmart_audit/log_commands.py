"""The transparency log's part of `ksmart-audit`: the options `verify` gains,
and the commands `prove`, `witness` and `witness-keygen`.

    ksmart-audit verify --log-key VKEY [--witness VKEY ...] [--quorum N] [--state PATH]
    ksmart-audit prove --file FILE_ID --log-key VKEY [--witness VKEY ...]
    ksmart-audit witness --name NAME --key-file PEM --log VKEY [--state PATH] [--listen H:P]
    ksmart-audit witness-keygen --name NAME --output PEM
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ksmart_audit.checks import Findings, Problem
from ksmart_audit.log_checks import CheckpointRefused, leaf_hash_of, open_checkpoint
from ksmart_audit.log_client import LogClient
from ksmart_audit.log_verify import (
    LOG_KEY_ENV,
    WITNESSES_ENV,
    LogOptions,
    LogVerification,
    default_state_path,
    log_key_from,
    witnesses_from,
)
from ksmart_audit.report import print_report
from ksmart_audit.source import HttpRefused, HttpSource, stream_of
from ksmart_audit.witness import Witness, WitnessState
from ksmart_audit.witness_server import (
    LOGS_ENV,
    NAME_ENV,
    STATE_ENV,
    WitnessConfigError,
    generate_key,
    load_logs,
    load_signer,
    log_line,
    serve,
)
from ksmart_common.merkle import ProofError, verify_inclusion
from ksmart_common.signed_note import NoteError

PROOF = "inclusion proof"


class LogUsageError(Exception):
    """Raised as the command's usage error (exit status 2)."""


def add_verify_log_options(parser: argparse.ArgumentParser) -> None:
    add_trust_options(parser)
    add_state_options(parser)


def add_trust_options(parser: argparse.ArgumentParser) -> None:
    trust = parser.add_argument_group("the transparency log (checked when --log-key is given)")
    trust.add_argument(
        "--log-key",
        metavar="VKEY",
        help=f"the log's verifier key, pinned from a trusted place (or {LOG_KEY_ENV})",
    )
    trust.add_argument(
        "--witness",
        action="append",
        metavar="VKEY",
        help=f"a witness's verifier key to require a cosignature of; repeat (or {WITNESSES_ENV})",
    )
    trust.add_argument(
        "--quorum",
        type=int,
        metavar="N",
        help="how many of the witnesses must have cosigned (default: all of them)",
    )


def add_state_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        metavar="PATH",
        help="the last checkpoint seen (default ~/.ksmart-audit/<origin>.checkpoint)",
    )
    parser.add_argument(
        "--merge-delay",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long after its recorded time an event may still be missing from a "
        "checkpoint before it counts as dated back (default 300)",
    )


def _trust(args: argparse.Namespace) -> tuple[Any, tuple, int] | None:
    try:
        log_key = log_key_from(args.log_key)
        witnesses = witnesses_from(args.witness)
    except NoteError as error:
        raise LogUsageError(str(error)) from error
    if log_key is None:
        if args.witness or args.quorum is not None:
            raise LogUsageError("--witness and --quorum go with --log-key")
        return None
    quorum = len(witnesses) if args.quorum is None else args.quorum
    if not 0 <= quorum <= len(witnesses):
        raise LogUsageError(f"--quorum {quorum} of {len(witnesses)} witnesses given")
    return log_key, witnesses, quorum


def log_verification(
    args: argparse.Namespace, source: Any, whole_log: bool
) -> tuple[LogVerification | None, list[str]]:
    """The log check `verify` runs beside the chains, or None and why not."""
    trust = _trust(args)
    if trust is None:
        return None, [f"the transparency log was not checked: give --log-key (or {LOG_KEY_ENV})"]
    asked = bool(args.log_key or args.witness or args.state)
    if not isinstance(source, HttpSource) or not whole_log:
        if asked:
            raise LogUsageError(
                "the transparency log is checked over the whole log read through the gateway: "
                "drop --file, --after, --until, --input and --database-url"
            )
        return None, ["the transparency log is checked only over the whole log via the gateway"]
    log_key, witnesses, quorum = trust
    options = LogOptions(
        log_key,
        witnesses,
        quorum,
        Path(args.state) if args.state else default_state_path(log_key.name),
        args.merge_delay,
    )
    log = LogVerification(source, options)
    log.begin()  # before any event is read: the events read then cover it
    return log, []


# -- prove ---------------------------------------------------------------------------


def run_prove(args: argparse.Namespace, open_source: Callable[[argparse.Namespace], Any]) -> int:
    source = open_source(args)
    try:
        if not isinstance(source, HttpSource):
            raise LogUsageError("proofs come from the gateway: give --gateway, not --database-url")
        return _prove(args, source)
    finally:
        source.close()


def _prove(args: argparse.Namespace, source: HttpSource) -> int:
    trust = _trust(args)
    if trust is None:
        raise LogUsageError(f"prove needs the log's pinned key: --log-key (or {LOG_KEY_ENV})")
    stream = stream_of(args.file)
    client = LogClient(source)
    findings = Findings()
    try:
        opened = open_checkpoint(client.checkpoint(), *trust)
    except CheckpointRefused as refused:
        findings.add(refused.problem)
        print_report(f"ksmart-audit prove: {stream}", "no checkpoint to prove against", findings)
        return 1
    checkpoint = opened.checkpoint
    proved = pending = 0
    for event in source.file_events(args.file):
        where = {
            "stream_id": event.get("stream_id"),
            "version": event.get("stream_version"),
            "position": event.get("global_position"),
        }
        try:
            index, hashes = client.event_inclusion(event["global_position"], checkpoint.size)
        except HttpRefused as error:
            if error.status == 422:  # not yet in the tree of that size
                pending += 1
                continue
            raise
        answer = {
            **where,
            "index": index,
            "size": checkpoint.size,
            "hashes": [h.hex() for h in hashes],
        }
        try:
            verify_inclusion(
                index,
                checkpoint.size,
                leaf_hash_of(event.get("hash")),
                hashes,
                checkpoint.root_hash,
            )
            answer["verified"] = True
            proved += 1
        except ProofError as error:
            answer["verified"] = False
            findings.add(
                Problem(
                    PROOF,
                    f"the event is not at leaf {index} of the checkpoint of size "
                    f"{checkpoint.size:,}: {error}",
                    expected=f"root {checkpoint.root_hash.hex()}",
                    found=f"stored hash {event.get('hash')}",
                    **where,
                )
            )
        print(json.dumps(answer), flush=True)
    summary = (
        f"{proved} event(s) proved included in the checkpoint {checkpoint.origin} of size "
        f"{checkpoint.size:,}"
    )
    if pending:
        summary += f"; {pending} newer, not in it yet"
    print_report(f"ksmart-audit prove: {stream}, from {source.describe()}", summary, findings)
    return 1 if findings else 0


# -- the witness ---------------------------------------------------------------------


def run_witness(args: argparse.Namespace) -> int:
    try:
        signer = load_signer(args.name, args.key_file)
        logs = load_logs(args.log or [])
        state_path = args.state or _environment_state()
        host, _, port = args.listen.rpartition(":")
        state = WitnessState(Path(state_path))
    except (WitnessConfigError, ValueError) as error:
        raise LogUsageError(str(error)) from error
    serve(Witness(signer, logs, state, log_event=log_line), host or "127.0.0.1", int(port))
    return 0


def _environment_state() -> str:
    state = os.environ.get(STATE_ENV)
    if not state:
        raise WitnessConfigError(f"where is the witness's state? --state PATH or {STATE_ENV}")
    return state


def run_witness_keygen(args: argparse.Namespace) -> int:
    try:
        vkey = generate_key(args.name, Path(args.output))
    except (WitnessConfigError, NoteError) as error:
        raise LogUsageError(str(error)) from error
    print(vkey)
    print(f"the private key is in {args.output}: keep it secret, and back it up", file=sys.stderr)
    return 0


def add_log_commands(
    commands: Any,
    sources: argparse.ArgumentParser,
    open_source: Callable[[argparse.Namespace], Any],
) -> None:
    prove = commands.add_parser(
        "prove",
        parents=[sources],
        help="print and check the inclusion proof of each of a file's events",
    )
    prove.add_argument("--file", required=True, metavar="FILE_ID")
    add_trust_options(prove)
    prove.set_defaults(run=lambda args: run_prove(args, open_source))
    witness = commands.add_parser(
        "witness", help="run a witness that cosigns the log's consistent checkpoints"
    )
    witness.add_argument("--name", metavar="NAME", help=f"the witness's key name (or {NAME_ENV})")
    witness.add_argument(
        "--key-file", metavar="PEM", help="its Ed25519 private key (or KSMART_WITNESS_KEY)"
    )
    witness.add_argument(
        "--log",
        action="append",
        metavar="VKEY",
        help=f"a log to witness, by its verifier key; repeat (or {LOGS_ENV}, comma-separated)",
    )
    witness.add_argument(
        "--state", metavar="PATH", help=f"its state file, to back up (or {STATE_ENV})"
    )
    witness.add_argument("--listen", default="127.0.0.1:8600", metavar="HOST:PORT")
    witness.set_defaults(run=run_witness)

    keygen = commands.add_parser(
        "witness-keygen", help="make a witness's cosigning key and print its verifier key"
    )
    keygen.add_argument("--name", required=True, metavar="NAME", help="e.g. audit.kerala.gov.in/w1")
    keygen.add_argument("--output", required=True, metavar="PEM", help="where to write the key")
    keygen.set_defaults(run=run_witness_keygen)
