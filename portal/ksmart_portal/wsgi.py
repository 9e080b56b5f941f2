"""The portal as a WSGI application: `gunicorn ksmart_portal.wsgi:app`."""

from ksmart_portal.app import create_app

app = create_app()
