"""The portal: K-Smart's web pages, a client of the gateway's public API only."""

from ksmart_portal.app import create_app

__all__ = ["create_app"]
