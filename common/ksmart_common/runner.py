"""Run one K-Smart service in a nameko container.

    python -m ksmart_common.runner applications

One service a process: each has a database and settings of its own, and
each is scaled on its own (k8s/, docker-compose.yml, `make run`).

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
        "service", metavar="SERVICE", choices=list(SERVICES), help=", ".join(SERVICES)
    )
    name = parser.parse_args(argv).service
    configure_logging(service=name)
    from nameko.cli.run import run

    run([load_service(name)], ksmart_config.nameko_config(name))


if __name__ == "__main__":
    main()
