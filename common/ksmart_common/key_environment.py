"""Keys an operator gives in the environment (a PEM in a variable, from
the deployment's Secret). Apart from ksmart_common.ed25519 because that
module is pure (the domain's certificate imports it) and this one reads
the process's environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ksmart_common.ed25519 import private_key_from_pem


def pem_from_environment(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The PEM an operator gave in the variable `name`, if any.

    A literal "\\n" is read as a newline, because single-line env files (docker
    compose's .env) can't hold a multi-line PEM; a PEM never contains a backslash.
    """
    value = (os.environ if environ is None else environ).get(name, "")
    return value.replace("\\n", "\n").strip() or None


def private_key_from_environment(
    name: str, environ: Mapping[str, str] | None = None
) -> Ed25519PrivateKey | None:
    """The private key given as a PEM in the variable `name`, or None when unset."""
    pem = pem_from_environment(name, environ)
    return private_key_from_pem(pem) if pem else None
