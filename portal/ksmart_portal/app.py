"""The portal: a Flask application whose every fact comes from the
gateway's public API (ksmart_portal.gateway, through ksmart_portal.calls).
Its pages live in one module for each kind of visitor; every page works
without JavaScript, in English and Malayalam."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, g, render_template, request
from werkzeug.exceptions import HTTPException

from ksmart_common.domain.vocabulary import LANGUAGES
from ksmart_portal import (
    audit_pages,
    calls,
    catalogue_text,
    citizen_pages,
    counter_pages,
    files_text,
    i18n,
    navigation,
    notices_pages,
    official_pages,
    public_pages,
    security,
    signing_in,
    staff_pages,
)
from ksmart_portal.gateway import Gateway, GatewayUnavailable
from ksmart_portal.language import LANGUAGE_COOKIE, choose_language
from ksmart_portal.problems import PageErrors
from ksmart_portal.settings import Settings

# Each module's register(app) adds its pages. The order is the order of the
# header's links, and a person lands on their first link after signing in.
PAGES = (
    public_pages,
    signing_in,
    citizen_pages,
    notices_pages,
    official_pages,
    counter_pages,
    audit_pages,
    staff_pages,
)
TOO_LARGE = i18n.N_(
    "The files you chose are too large: together they may be at most %(size)s MB. "
    "Go back and choose smaller files, such as a scan at a lower resolution."
)


def create_app(settings: Settings | None = None, gateway: Gateway | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        DEVELOPMENT=settings.development,
        PUBLIC_URL=settings.public_url,
        # A larger body is refused before it is read (413).
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
    )
    app.session_interface = security.EncryptedCookieSession(settings.secret_key)
    app.extensions["gateway"] = gateway or Gateway(
        settings.gateway_url, settings.gateway_timeout_seconds
    )
    catalogues = i18n.load_catalogues()
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(
        lambda message: g.translations.gettext(message),
        lambda singular, plural, n: g.translations.ngettext(singular, plural, n),
        newstyle=True,
    )
    app.jinja_env.filters.update(catalogue_text.FILTERS)
    app.jinja_env.filters.update(files_text.FILTERS)
    app.jinja_env.globals.update(
        condition=catalogue_text.condition,
        answer_only_if=catalogue_text.answer_only_if,
        attach_only_if=catalogue_text.attach_only_if,
    )

    @app.before_request
    def choose_page_language() -> None:
        g.language = choose_language(
            request.cookies.get(LANGUAGE_COOKIE), request.headers.get("Accept-Language")
        )
        g.translations = catalogues[g.language]

    @app.after_request
    def secure_headers(response):
        # A response that set its own policy (a document's, to be viewed) keeps it.
        own_policy = response.headers.get("Content-Security-Policy")
        response.headers.update(security.SECURITY_HEADERS)
        if own_policy:
            response.headers["Content-Security-Policy"] = own_policy
        response.vary.add("Cookie")
        response.vary.add("Accept-Language")
        return response

    @app.context_processor
    def page_context() -> dict[str, Any]:
        return {
            "language": g.language,
            "languages": [(code, i18n.LANGUAGE_NAMES[code]) for code in LANGUAGES],
            "signed_in": calls.signed_in(),
            "navigation": navigation.links(),
            "csrf_token": security.csrf_token,
            "csrf_field": security.CSRF_FIELD,
            "here": request.full_path.rstrip("?") if request else "/",
        }

    @app.errorhandler(GatewayUnavailable)
    def gateway_unavailable(error):
        app.logger.warning("gateway unavailable: %s", error)
        return render_template("unavailable.html"), 503

    @app.errorhandler(calls.SessionEnded)
    def session_ended(_error):
        return calls.to_sign_in()

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        errors = PageErrors()
        if error.code == 413:
            size = f"{settings.max_request_bytes / (1024 * 1024):g}"
            errors.add(i18n.gettext(TOO_LARGE, size=size))
        return render_template("error.html", status=error.code, errors=errors), error.code

    @app.before_request
    def check_csrf() -> None:
        if request.method == "POST" and not security.csrf_is_valid(
            request.form.get(security.CSRF_FIELD)
        ):
            abort(400)

    for pages in PAGES:
        pages.register(app)
    return app
