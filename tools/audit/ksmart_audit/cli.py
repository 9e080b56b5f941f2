"""ksmart-audit: the auditor's tool.

    ksmart-audit export --file FILE_ID                 a file's events
    ksmart-audit export --after POSITION [--until P]   the log after a position
    ksmart-audit verify [--file ID | --after P] [--input EXPORT.jsonl]
    ksmart-audit replay --file FILE_ID [--compare]
    ksmart-audit as-of --file FILE_ID --at 2026-11-29T09:30:00Z
    ksmart-audit verify --log-key VKEY [--witness VKEY ...]  and the transparency log
    ksmart-audit verify --key-root PUBLIC            and each event's signature
    ksmart-audit prove --file FILE_ID --log-key VKEY     a file's inclusion proofs
    ksmart-audit witness / witness-keygen                a witness (docs/operations.md)

Events come from the gateway (--gateway URL, or KSMART_AUDIT_GATEWAY, with an
auditor's token in KSMART_AUDIT_TOKEN or --token-file) or, for operators,
straight from the applications database (--database-url URL, or
KSMART_AUDIT_DATABASE_URL), read-only.

Events and states go to stdout (JSON lines for export, JSON for replay and
as-of); progress and the report go to stderr. Exit status: 0 when everything
verifies, 1 when a difference was found, 2 for a usage or connection error.

Run it as `ksmart-audit` once installed, or `python -m ksmart_audit.cli`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from ksmart_audit.checks import (
    PROJECTION,
    UNAVAILABLE,
    ChainChecker,
    Findings,
    Problem,
    compare_views,
)
from ksmart_audit.event_signature_checks import KEY_ROOT_ENV, signature_verification
from ksmart_audit.log_commands import (
    LogUsageError,
    add_log_commands,
    add_verify_log_options,
    log_verification,
)
from ksmart_audit.report import Progress, print_report
from ksmart_audit.source import (
    DEFAULT_PAGE,
    TOKEN_ENV,
    HttpSource,
    JsonLinesSource,
    SourceError,
    ViewUnavailable,
    stream_of,
)
from ksmart_audit.state_files import StateFileError
from ksmart_common.envelope import Envelope, format_timestamp

if TYPE_CHECKING:
    from ksmart_audit.database import DatabaseSource

GATEWAY_ENV = "KSMART_AUDIT_GATEWAY"
DATABASE_ENV = "KSMART_AUDIT_DATABASE_URL"

VERIFIED, DIFFERENT, USAGE = 0, 1, 2


class UsageError(Exception):
    """The command cannot run as asked (exit status 2)."""


# -- sources ---------------------------------------------------------------------


def open_source(args: argparse.Namespace) -> HttpSource | DatabaseSource:
    gateway, database = args.gateway, args.database_url
    if gateway and database:
        raise UsageError("give --gateway or --database-url, not both")
    if not gateway and not database:
        gateway, database = os.environ.get(GATEWAY_ENV), os.environ.get(DATABASE_ENV)
        if gateway and database:
            raise UsageError(
                f"both {GATEWAY_ENV} and {DATABASE_ENV} are set: choose with --gateway "
                "or --database-url"
            )
    if gateway:
        token = None if args.token_file else os.environ.get(TOKEN_ENV)
        return HttpSource(
            gateway, token=token, token_file=args.token_file, page_size=args.page_size
        )
    if database:
        return open_database(database, args.page_size)
    raise UsageError(
        f"where from? --gateway URL (with {TOKEN_ENV} or --token-file), or "
        f"--database-url URL (or set {GATEWAY_ENV} / {DATABASE_ENV})"
    )


def open_database(url: str, page_size: int) -> DatabaseSource:
    """The database source, imported only now: it alone needs SQLAlchemy and
    psycopg2, which an auditor's install (through the gateway) lacks."""
    try:
        from ksmart_audit.database import DatabaseSource
    except ImportError as error:
        raise UsageError(
            f"--database-url needs the kernel's database drivers ({error.name} is missing): "
            "install ksmart-common[io], or read through the gateway with --gateway"
        ) from error
    return DatabaseSource(url, batch_size=page_size)


def write_line(out: IO[bytes], document: Any) -> None:
    out.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    out.write(b"\n")


def write_json(document: Any) -> None:
    out = sys.stdout.buffer
    out.write(json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n")
    out.flush()


def parse_moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise UsageError(f"--at {text!r} is not an ISO 8601 timestamp") from error
    if moment.tzinfo is None:
        raise UsageError(
            f"--at {text!r} has no time zone: write it as 2026-11-29T09:30:00Z or "
            "2026-11-29T15:00:00+05:30"
        )
    return moment.astimezone(UTC)


def range_text(after: int, until: int | None) -> str:
    text = f"the log after position {after:,}"
    return text + (f" up to {until:,}" if until is not None else "")


# -- export ----------------------------------------------------------------------


def run_export(args: argparse.Namespace) -> int:
    if args.until is not None and args.after is None:
        raise UsageError("--until goes with --after")
    source = open_source(args)
    try:
        if args.file:
            what = stream_of(args.file)
            documents: Iterable[dict[str, Any]] = source.file_events(args.file)
            progress = Progress(f"export {what}", enabled=not args.quiet)
        else:
            what = range_text(args.after, args.until)
            until = args.until if args.until is not None else source.end_position
            documents = source.log(args.after, args.until)
            progress = Progress("export", enabled=not args.quiet, after=args.after, until=until)
        out, close = _output(args.output)
        count, first, last = 0, None, None
        try:
            for document in documents:
                write_line(out, document)
                count += 1
                position = document.get("global_position")
                first = position if first is None else first
                last = position
                progress.update(count, position)
            out.flush()
        finally:
            if close:
                out.close()
        progress.finish()
        positions = f", global positions {first:,} to {last:,}" if count else ""
        print(
            f"exported {count:,} events of {what} from {source.describe()}{positions}",
            file=sys.stderr,
        )
        return VERIFIED
    finally:
        source.close()


def _output(path: str | None) -> tuple[IO[bytes], bool]:
    if path in (None, "-"):
        return sys.stdout.buffer, False
    try:
        return open(path, "wb"), True
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error}") from error


# -- verify ----------------------------------------------------------------------


def run_verify(args: argparse.Namespace) -> int:
    if args.until is not None and args.after is None:
        raise UsageError("--until goes with --after")
    if args.input:
        if args.log_key or args.witness or args.state or args.key_root:
            raise UsageError(
                "the transparency log and the events' signatures are checked over the gateway,"
                " not an --input"
            )
        return _verify_input(args)
    source = open_source(args)
    try:
        whole_log = not args.file and not args.after and args.until is None
        log, notes = log_verification(args, source, whole_log)
        try:
            signatures, signature_notes = signature_verification(
                args.key_root, source, whole_log=whole_log
            )
        except ValueError as error:
            raise UsageError(str(error)) from error
        if args.file:
            stream = stream_of(args.file)
            checker = ChainChecker(stream_id=stream)
            documents: Iterable[dict[str, Any]] = source.file_events(args.file)
            progress = Progress(f"verify {stream}", enabled=not args.quiet)
            what = stream
        else:
            after = args.after or 0
            until = args.until if args.until is not None else source.end_position
            checker = ChainChecker(after=after)
            documents = source.log(after, args.until)
            progress = Progress("verify", enabled=not args.quiet, after=after, until=until)
            what = range_text(after, args.until)
        if log is not None:
            documents = log.follow(documents)
        count = 0
        for document in documents:
            count += 1
            event = checker.check_document(document)
            if event is not None:
                progress.update(count, event.envelope.global_position)
                if signatures is not None:
                    signatures.check(event)
        progress.finish()
        findings = checker.finish()
        if log is not None:
            findings.merge(log.finish())
            notes = log.notes()
        if signatures is not None:
            findings.merge(signatures.finish())
            signature_notes = signatures.notes()
        print_report(
            f"ksmart-audit verify: {what}, from {source.describe()}",
            checker.summary(),
            findings,
            notes=[*notes, *signature_notes],
        )
        return DIFFERENT if findings else VERIFIED
    finally:
        source.close()


def _verify_input(args: argparse.Namespace) -> int:
    if args.until is not None:
        raise UsageError("--until selects from a source; an --input export is read whole")
    stream = stream_of(args.file) if args.file else None
    checker = ChainChecker(stream_id=stream, after=args.after)
    source = JsonLinesSource(args.input)
    progress = Progress(
        "verify", enabled=not args.quiet, after=None if stream else (args.after or 0)
    )
    count = 0
    for number, entry in source.entries():
        count += 1
        if isinstance(entry, str):
            checker.invalid(entry)
            continue
        event = checker.check_document(entry, f"line {number}")
        if event is not None:
            progress.update(count, event.envelope.global_position)
    progress.finish()
    if stream and not checker.events:
        checker.add(Problem(UNAVAILABLE, "the input holds no event of the stream", stream))
    findings = checker.finish()
    if stream:
        what = stream
    elif args.after is not None:
        what = range_text(args.after, None)
    elif checker.whole_log or not checker.heads:
        what = "an export of the log"
    else:
        what = f"an export of {next(iter(checker.heads))}"
    print_report(
        f"ksmart-audit verify: {what}, from {source.describe()}", checker.summary(), findings
    )
    return DIFFERENT if findings else VERIFIED


# -- replay and as-of ------------------------------------------------------------


def read_file(
    source: HttpSource | DatabaseSource, file_id: str, checker: ChainChecker
) -> list[Envelope]:
    """One file's events, each checked on the way (one file fits in memory),
    as their stored text says: what was hashed is what is replayed."""
    envelopes = []
    for document in source.file_events(file_id):
        event = checker.check_document(document)
        if event is not None:
            envelopes.append(event.envelope)
    return envelopes


def project(envelopes: list[Envelope]) -> tuple[Any, Problem | None]:
    """The file's state through THE projector, ksmart_common.domain.file.replay,
    event by event so that an event it refuses can be named."""
    from ksmart_common.domain import file as files

    state = None
    for envelope in envelopes:
        try:
            state = files.replay([envelope], state)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            stopped = f"v{state.version}" if state is not None else "nothing"
            return state, Problem(
                PROJECTION,
                f"the projector cannot apply this event ({type(error).__name__}: {error}); "
                f"the replay stops at {stopped}",
                envelope.stream_id,
                envelope.stream_version,
                envelope.global_position,
            )
    return state, None


def run_replay(args: argparse.Namespace) -> int:
    stream = stream_of(args.file)
    source = open_source(args)
    try:
        checker = ChainChecker(stream_id=stream)
        envelopes = read_file(source, args.file, checker)
        state, refused = project(envelopes)
        findings = checker.finish()
        if refused:
            findings.add(refused)
        view = state.view() if state is not None else None
        write_json(
            {
                "file_id": args.file,
                "stream_id": stream,
                "events_replayed": state.version if state is not None else 0,
                "state": view,
            }
        )
        notes = []
        if args.compare:
            notes.extend(_compare(source, args.file, stream, view, findings))
        summary = checker.summary()
        if state is not None:
            summary += f"; replayed to {state.state!r} at version {state.version}"
        title = f"ksmart-audit replay{' --compare' if args.compare else ''}: {stream}, from "
        print_report(title + source.describe(), summary, findings, notes=notes)
        return DIFFERENT if findings else VERIFIED
    finally:
        source.close()


def _compare(
    source: HttpSource | DatabaseSource,
    file_id: str,
    stream: str,
    view: dict[str, Any] | None,
    findings: Findings,
) -> list[str]:
    try:
        shown = source.file_view(file_id)
    except ViewUnavailable as error:
        findings.add(Problem(UNAVAILABLE, f"the platform does not show the file: {error}", stream))
        return []
    if view is None:
        findings.add(
            Problem(UNAVAILABLE, "the platform shows a file the events do not replay to", stream)
        )
        return []
    problems, not_shown = compare_views(view, shown, stream)
    for problem in problems:
        findings.add(problem)
    notes = [f"compared field by field with the file as {source.describe()} shows it"]
    if not_shown:
        notes.append(f"not compared, as the platform does not show them: {', '.join(not_shown)}")
    return notes


def run_as_of(args: argparse.Namespace) -> int:
    stream = stream_of(args.file)
    at = parse_moment(args.at)
    source = open_source(args)
    try:
        checker = ChainChecker(stream_id=stream)
        envelopes = read_file(source, args.file, checker)
        applied = [envelope for envelope in envelopes if envelope.recorded_at <= at]
        state, refused = project(applied)
        findings = checker.finish()
        if refused:
            findings.add(refused)
        last = applied[-1] if applied else None
        write_json(
            {
                "file_id": args.file,
                "stream_id": stream,
                "as_of": format_timestamp(at),
                "events_applied": len(applied),
                "events_in_file": len(envelopes),
                "last_event": None
                if last is None
                else {
                    "version": last.stream_version,
                    "global_position": last.global_position,
                    "event_type": last.event_type,
                    "recorded_at": format_timestamp(last.recorded_at),
                },
                "state": state.view() if state is not None else None,
            }
        )
        summary = (
            f"{len(applied)} of {len(envelopes)} events recorded at or before "
            f"{format_timestamp(at)}: "
        )
        summary += (
            f"the file was {state.state!r} at version {state.version}"
            if state is not None
            else "the file did not exist yet"
        )
        notes = [f"the chain check covers all {checker.summary()}"]
        print_report(
            f"ksmart-audit as-of: {stream}, from {source.describe()}",
            summary,
            findings,
            notes=notes,
        )
        return DIFFERENT if findings else VERIFIED
    finally:
        source.close()


# -- the command -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    sources = argparse.ArgumentParser(add_help=False)
    where = sources.add_argument_group("where the events come from")
    where.add_argument(
        "--gateway",
        metavar="URL",
        help=f"the gateway's base URL, as an auditor (or {GATEWAY_ENV}); the token is "
        f"read from {TOKEN_ENV} or --token-file",
    )
    where.add_argument("--token-file", metavar="PATH", help="a file holding the auditor's token")
    where.add_argument(
        "--database-url",
        metavar="URL",
        help=f"the applications database, read-only, for operators (or {DATABASE_ENV})",
    )
    where.add_argument(
        "--page-size",
        type=_positive,
        default=DEFAULT_PAGE,
        metavar="N",
        help=f"events per page (default {DEFAULT_PAGE}; the gateway serves at most 1000)",
    )
    where.add_argument("--quiet", action="store_true", help="no progress lines")

    parser = argparse.ArgumentParser(
        prog="ksmart-audit",
        description="\n\n".join(__doc__.split("\n\n")[:4]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    export = commands.add_parser("export", parents=[sources], help="events as JSON lines on stdout")
    chosen = export.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--file", metavar="FILE_ID", help="one file's events")
    chosen.add_argument("--after", type=_position, metavar="POSITION", help="the log after it")
    export.add_argument("--until", type=_position, metavar="POSITION", help="up to it (inclusive)")
    export.add_argument("--output", metavar="PATH", help="write here instead of stdout")
    export.set_defaults(run=run_export)

    verify = commands.add_parser(
        "verify",
        parents=[sources],
        help="hash chains, versions and global positions (default: the whole log)",
    )
    chosen = verify.add_mutually_exclusive_group()
    chosen.add_argument("--file", metavar="FILE_ID", help="one file's chain")
    chosen.add_argument("--after", type=_position, metavar="POSITION", help="the log after it")
    verify.add_argument("--until", type=_position, metavar="POSITION", help="up to it (inclusive)")
    verify.add_argument(
        "--input",
        metavar="EXPORT.jsonl",
        help="verify an export instead of reading a source ('-': stdin)",
    )
    add_verify_log_options(verify)
    verify.add_argument(
        "--key-root",
        metavar="PUBLIC",
        help="the deployment's key root (KSMART_KEY_ROOT_PUBLIC), pinned from a trusted place: "
        f"each event's signature is checked against the event keys it endorses (or {KEY_ROOT_ENV})",
    )
    verify.set_defaults(run=run_verify)

    replay = commands.add_parser(
        "replay", parents=[sources], help="a file's state through the platform's projector"
    )
    replay.add_argument("--file", required=True, metavar="FILE_ID")
    replay.add_argument(
        "--compare", action="store_true", help="and compare it with what the platform shows"
    )
    replay.set_defaults(run=run_replay)

    as_of = commands.add_parser(
        "as-of", parents=[sources], help="a file's state and timeline at a moment"
    )
    as_of.add_argument("--file", required=True, metavar="FILE_ID")
    as_of.add_argument(
        "--at", required=True, metavar="TIMESTAMP", help="ISO 8601 with a zone: 2026-11-29T09:30Z"
    )
    as_of.set_defaults(run=run_as_of)

    add_log_commands(commands, sources, open_source)
    return parser


def _position(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a position") from error
    if value < 0:
        raise argparse.ArgumentTypeError("positions are 0 or more")
    return value


def _positive(text: str) -> int:
    value = _position(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, SourceError, LogUsageError, StateFileError) as error:
        print(f"ksmart-audit {args.command}: {error}", file=sys.stderr)
        return USAGE
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more can be written.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return USAGE
    except KeyboardInterrupt:
        print(f"ksmart-audit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
