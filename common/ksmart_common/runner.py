"""Run one K-Smart service (or several) in a nameko container.

    python -m ksmart_common.runner applications workflow

Configuration comes from the environment (ksmart_common.config); there is no
config file to keep in step. eventlet must patch the standard library before
anything else is imported, and psycopg2 must be made cooperative, so this
module does both first.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import importlib  # noqa: E402

from psycogreen.eventlet import patch_psycopg  # noqa: E402

patch_psycopg()

from ksmart_common import config as ksmart_config  # noqa: E402
from ksmart_common.logging import configure_logging  # noqa: E402
from ksmart_common.services import SERVICES  # noqa: E402


def load_service(name: str) -> type:
    module_name, class_name = SERVICES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ksmart_common.runner",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "services",
        nargs="*",
        metavar="SERVICE",
        help=f"one or more of {', '.join(SERVICES)} (default: all of them in one process)",
    )
    names = parser.parse_args(argv).services or list(SERVICES)
    unknown = [name for name in names if name not in SERVICES]
    if unknown:
        parser.error(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    configure_logging(service="+".join(names))
    from nameko.cli.run import run

    # One process may host several services only when they share a database
    # config; in practice `make run` starts one process per service.
    config = ksmart_config.nameko_config(names[0])
    run([load_service(name) for name in names], config)


if __name__ == "__main__":
    main()
