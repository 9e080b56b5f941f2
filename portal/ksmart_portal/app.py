"""The portal's pages: a Flask application whose every fact comes from the
gateway's public API (ksmart_portal.gateway). One thing a page; every page
works without JavaScript, in English and Malayalam."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from flask import (
    Flask,
    Response,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException

from ksmart_common.domain.vocabulary import LANGUAGES, LOCAL_BODY_KINDS, is_file_number
from ksmart_portal import application, catalogue_text, files_text, i18n, security
from ksmart_portal.gateway import Gateway, GatewayUnavailable, Reply, forwarded_for
from ksmart_portal.language import LANGUAGE_COOKIE, ONE_YEAR_SECONDS, choose_language, safe_next
from ksmart_portal.problems import FormField, PageErrors, page_errors
from ksmart_portal.settings import Settings

# Refresh the access token this long before it expires.
REFRESH_MARGIN_SECONDS = 30

CONTACT_HINT = i18n.N_(
    "A mobile number with its country code, like +971501234567, or an email address."
)
SIGN_IN_FIELDS = {
    "phone": FormField("contact", CONTACT_HINT),
    "email": FormField("contact", CONTACT_HINT),
}
CODE_FIELDS = {
    "code": FormField("code", i18n.N_("Enter the 6 digits of the code we sent you.")),
    "challenge_id": FormField("code", i18n.N_("Ask for a new code.")),
}
WRONG_CODE = i18n.N_("The code is wrong or has expired. Check it, or ask for a new code.")
SEARCH_FIELDS = {
    "q": FormField("q"),
    "category": FormField("category"),
    "local_body_type": FormField("local_body_type"),
}
FILES_PER_PAGE = 20
TRACK_HINT = i18n.N_(
    "Enter the number as it is printed on your acknowledgement, like KL-EKM-KOC/BR/2026/000123."
)
NO_SUCH_FILE = i18n.N_("No file has this number. Check it and try again.")
ANSWER_NEEDED = i18n.N_("Write your answer to the office's question.")
FILE_CHANGED = i18n.N_(
    "This file changed while you were answering: someone acted on it first. "
    "Your answer was not sent. Read the file as it is now, then answer again if you still need to."
)
ANSWER_FIELDS = {"remarks": FormField("remarks")}
QR_FIELDS = {"qr_text": FormField("qr_text", i18n.N_("Paste the whole text of the QR code."))}
CHOOSE_OFFICE = i18n.N_("Choose the local body you are applying to.")
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
        response.headers.update(security.SECURITY_HEADERS)
        response.vary.add("Cookie")
        response.vary.add("Accept-Language")
        return response

    @app.context_processor
    def page_context() -> dict[str, Any]:
        return {
            "language": g.language,
            "languages": [(code, i18n.LANGUAGE_NAMES[code]) for code in LANGUAGES],
            "signed_in": _signed_in(),
            "csrf_token": security.csrf_token,
            "csrf_field": security.CSRF_FIELD,
            "here": request.full_path.rstrip("?") if request else "/",
        }

    @app.errorhandler(GatewayUnavailable)
    def gateway_unavailable(error):
        app.logger.warning("gateway unavailable: %s", error)
        return render_template("unavailable.html"), 503

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

    _routes(app)
    return app


def _gateway() -> Gateway:
    from flask import current_app

    return current_app.extensions["gateway"]


def _call(method: str, path: str, **arguments: Any) -> Reply:
    return _gateway().call(
        method, path, language=g.language, forwarded_for=_forwarded_for(), **arguments
    )


def _forwarded_for() -> str | None:
    return forwarded_for(request.headers.get("X-Forwarded-For"), request.remote_addr)


# -- signing in: the tokens stay in the encrypted session, on the server's side --


def _signed_in() -> bool:
    return "refresh_token" in session


def _keep_tokens(tokens: Mapping[str, Any]) -> None:
    session["access_token"] = tokens["access_token"]
    session["refresh_token"] = tokens["refresh_token"]
    session["access_expires_at"] = time.time() + int(tokens["expires_in"])


def _forget_tokens() -> None:
    for key in ("access_token", "refresh_token", "access_expires_at"):
        session.pop(key, None)


def _refresh() -> bool:
    reply = _call("POST", "/auth/refresh", json={"refresh_token": session["refresh_token"]})
    if reply.ok:
        _keep_tokens(reply.body)
        return True
    _forget_tokens()
    return False


def _access_token() -> str | None:
    """A live access token, refreshed first when it is about to expire."""
    if not _signed_in():
        return None
    if time.time() >= session.get("access_expires_at", 0) - REFRESH_MARGIN_SECONDS:
        if not _refresh():
            return None
    return session["access_token"]


def _call_as_user(method: str, path: str, **arguments: Any) -> Reply | None:
    """A call as the signed-in person, refreshed once on a 401; None when
    the session has ended."""
    token = _access_token()
    if token is None:
        return None
    reply = _call(method, path, token=token, **arguments)
    if reply.status == 401 and _refresh():
        reply = _call(method, path, token=session["access_token"], **arguments)
    return reply


def _service(code: str) -> dict[str, Any]:
    """A service's definition, once a request; {} when it cannot be read
    (the page then names the service by its code)."""
    known = g.setdefault("services", {})
    if code not in known:
        reply = _call("GET", f"/services/{quote(code, safe='')}")
        known[code] = reply.body if reply.ok else {}
    return known[code]


def _local_body(code: str) -> dict[str, Any]:
    reply = _call("GET", f"/local-bodies/{quote(code, safe='')}")
    return reply.body if reply.ok else {}


def _service_or_404(code: str) -> dict[str, Any]:
    service = _service(code)
    if not service:
        abort(404)
    return service


def _render_application(
    service: dict[str, Any],
    sent: Mapping[str, str],
    kept: Mapping[str, Mapping[str, str]],
    errors: PageErrors,
):
    """The application form, with what was typed and uploaded kept, and
    every problem in the summary (in the page's order) and beside its field."""
    order = [
        application.LOCAL_BODY,
        *(f.name for f in application.problem_fields(service).values()),
    ]
    errors.errors.sort(key=lambda e: order.index(e.field) if e.field in order else -1)
    bodies = _call("GET", "/local-bodies")
    offices = application.offices(service, bodies.body.get("local_bodies", []) if bodies.ok else [])
    offices.sort(key=lambda body: catalogue_text.local(body.get("name")))
    return render_template(
        "apply.html",
        service=service,
        inputs=application.inputs(service),
        offices=offices,
        sent=sent,
        kept=kept,
        errors=errors,
        ids=application,
        form_value=application.form_value,
        condition_values=application.condition_values,
    )


def _to_sign_in():
    _forget_tokens()
    return redirect(url_for("sign_in"), code=303)


def _render_file(file: dict[str, Any], errors: PageErrors | None = None, **extra: Any):
    service = _service(str(file.get("service_code", "")))
    errors = errors or PageErrors()
    return render_template(
        "file.html",
        file=file,
        service_name=catalogue_text.local(service.get("name")) or file.get("service_code"),
        state=files_text.state_label(service, str(file.get("state", ""))),
        next_step=files_text.next_step(file, service),
        timeline=files_text.timeline(file, service),
        may_answer=files_text.may_answer(file),
        errors=errors,
        **extra,
    )


def _routes(app: Flask) -> None:
    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/")
    def home():
        notice = session.pop("notice", None)
        return render_template("home.html", notice=notice)

    @app.get("/language/<code>")
    def switch_language(code: str):
        if code not in LANGUAGES:
            abort(404)
        response = redirect(safe_next(request.args.get("next")), code=303)
        response.set_cookie(
            LANGUAGE_COOKIE,
            code,
            max_age=ONE_YEAR_SECONDS,
            httponly=True,
            secure=not app.config["DEVELOPMENT"],
            samesite="Lax",
        )
        return response

    # -- find a service, read its checklist -----------------------------------

    @app.get("/services")
    def find_service():
        query = {
            "q": request.args.get("q", "").strip(),
            "category": request.args.get("category", ""),
            "local_body_type": request.args.get("local_body_type", ""),
        }
        categories = _call("GET", "/categories").body.get("categories", [])
        reply = _call("GET", "/services", params={k: v for k, v in query.items() if v})
        errors = PageErrors() if reply.ok else page_errors(reply, SEARCH_FIELDS)
        return render_template(
            "services.html",
            query=query,
            categories=categories,
            local_body_kinds=LOCAL_BODY_KINDS,
            services=reply.body.get("services", []) if reply.ok else [],
            searched=any(query.values()),
            errors=errors,
        ), (200 if reply.ok else 400)

    @app.get("/services/<code>")
    def service_checklist(code: str):
        reply = _call("GET", f"/services/{quote(code, safe='')}")
        if reply.status == 404:
            abort(404)
        if not reply.ok:
            return render_template("error.html", errors=page_errors(reply)), 400
        categories = _call("GET", "/categories").body.get("categories", [])
        category = next((c for c in categories if c["code"] == reply.body.get("category")), None)
        return render_template("service.html", service=reply.body, category=category)

    # -- apply for a service ----------------------------------------------------

    @app.get("/services/<code>/apply")
    def apply(code: str):
        if _access_token() is None:
            session["after_sign_in"] = url_for("apply", code=code)
            return redirect(url_for("sign_in"), code=303)
        service = _service_or_404(code)
        return _render_application(service, {}, {}, PageErrors())

    @app.post("/services/<code>/apply")
    def submit_application(code: str):
        service = _service_or_404(code)
        if _access_token() is None:
            return _to_sign_in()
        sent = request.form.to_dict()
        answers = application.typed_answers(service, sent)
        kept = application.kept_uploads(service, sent)
        errors = PageErrors()
        applying = application.documents_that_apply(service, answers)
        for spec in applying:
            chosen = request.files.get(application.document_id(spec["code"]))
            if chosen is None or not chosen.filename:
                continue
            uploaded = _call_as_user(
                "POST", "/documents", params={"filename": chosen.filename}, data=chosen.read()
            )
            if uploaded is None or uploaded.status == 401:
                return _to_sign_in()
            if uploaded.ok:
                kept[spec["code"]] = {
                    "sha256": uploaded.body["sha256"],
                    "filename": chosen.filename[:100],
                }
            else:
                kept.pop(spec["code"], None)
                for error in page_errors(uploaded).errors:
                    errors.add(error.message, application.document_id(spec["code"]))
        local_body = sent.get(application.LOCAL_BODY, "")
        if not local_body:
            errors.add(i18n.gettext(CHOOSE_OFFICE), application.LOCAL_BODY)
        else:
            codes = {spec["code"] for spec in applying}
            reply = _call_as_user(
                "POST",
                "/files",
                json={
                    "service_code": service["code"],
                    "local_body": local_body,
                    "form": answers,
                    "documents": {c: kept[c]["sha256"] for c in kept if c in codes},
                },
            )
            if reply is None or reply.status == 401:
                return _to_sign_in()
            if reply.ok:
                return redirect(url_for("applied", file_id=reply.body["file_id"]), code=303)
            placed = {error.field for error in errors.errors}
            for error in page_errors(reply, application.problem_fields(service)).errors:
                if error.field is None or error.field not in placed:
                    errors.add(error.message, error.field)
        return _render_application(service, sent, kept, errors), 400

    @app.get("/applied/<uuid:file_id>")
    def applied(file_id):
        reply = _call_as_user("GET", f"/files/{file_id}")
        if reply is None or reply.status == 401:
            return _to_sign_in()
        if not reply.ok:
            abort(404)
        service = _service(str(reply.body.get("service_code", "")))
        return render_template(
            "applied.html",
            file=reply.body,
            service_name=catalogue_text.local(service.get("name"))
            or reply.body.get("service_code"),
            next_step=files_text.next_step(reply.body, service),
        )

    # -- sign in with a one-time code, sign out --------------------------------

    @app.route("/sign-in", methods=["GET", "POST"])
    def sign_in():
        contact = request.form.get("contact", "").strip()
        errors = PageErrors()
        if request.method == "POST":
            if not contact:
                errors.add(i18n.gettext(CONTACT_HINT), "contact")
            else:
                key = "email" if "@" in contact else "phone"
                reply = _call("POST", "/auth/otp", json={key: contact, "language": g.language})
                if reply.ok:
                    session["challenge"] = {
                        "id": reply.body["challenge_id"],
                        "sent_to": reply.body["sent_to"],
                        "channel": reply.body["channel"],
                    }
                    return redirect(url_for("enter_code"), code=303)
                errors = page_errors(reply, SIGN_IN_FIELDS)
        return render_template("sign_in.html", contact=contact, errors=errors), (
            400 if errors else 200
        )

    @app.route("/sign-in/code", methods=["GET", "POST"])
    def enter_code():
        challenge = session.get("challenge")
        if challenge is None:
            return redirect(url_for("sign_in"), code=303)
        errors = PageErrors()
        if request.method == "POST":
            code = "".join(request.form.get("code", "").split())
            reply = _call(
                "POST", "/auth/otp/verify", json={"challenge_id": challenge["id"], "code": code}
            )
            if reply.ok:
                session.pop("challenge")
                _keep_tokens(reply.body)
                session["signed_in_as"] = challenge["sent_to"]
                security.renew_csrf_token()
                after = session.pop("after_sign_in", None)
                return redirect(safe_next(after) if after else url_for("account"), code=303)
            if reply.status == 401:
                errors.add(i18n.gettext(WRONG_CODE), "code")
            else:
                errors = page_errors(reply, CODE_FIELDS)
        return render_template("enter_code.html", challenge=challenge, errors=errors), (
            400 if errors else 200
        )

    @app.get("/account")
    def account():
        if _access_token() is None:
            return redirect(url_for("sign_in"), code=303)
        return render_template("account.html", signed_in_as=session.get("signed_in_as"))

    @app.post("/sign-out")
    def sign_out():
        if _signed_in():
            _call_as_user("POST", "/auth/logout")  # ends the session at identity
        language_free = {"notice": "signed_out"}
        session.clear()
        session.update(language_free)
        security.renew_csrf_token()
        return redirect(url_for("home"), code=303)

    # -- a citizen's own files ---------------------------------------------------

    @app.get("/files")
    def my_files():
        cursor = request.args.get("cursor", "")
        params = {"limit": str(FILES_PER_PAGE), **({"cursor": cursor} if cursor else {})}
        reply = _call_as_user("GET", "/files", params=params)
        if reply is None or reply.status == 401:
            return _to_sign_in()
        if not reply.ok:
            return render_template("error.html", errors=page_errors(reply)), 400
        files = [
            files_text.listed(entry, _service(str(entry.get("service_code", ""))))
            for entry in reply.body.get("files", [])
        ]
        return render_template(
            "files.html",
            files=files,
            next_cursor=reply.body.get("next_cursor"),
            later_page=bool(cursor),
        )

    @app.get("/files/<uuid:file_id>")
    def file_page(file_id):
        reply = _call_as_user("GET", f"/files/{file_id}")
        if reply is None or reply.status == 401:
            return _to_sign_in()
        if reply.status in (403, 404):
            abort(404)
        if not reply.ok:
            return render_template("error.html", errors=page_errors(reply)), 400
        return _render_file(reply.body, notice=session.pop("file_notice", None))

    @app.post("/files/<uuid:file_id>/answer")
    def answer_clarification(file_id):
        remarks = request.form.get("remarks", "").strip()
        version = request.form.get("version", "")
        if not version.isdigit():
            abort(400)
        errors = PageErrors()
        if not remarks:
            errors.add(i18n.gettext(ANSWER_NEEDED), "remarks")
            status = 400
        else:
            sent = _call_as_user(
                "POST",
                f"/files/{file_id}/actions",
                json={"action": files_text.RESUBMIT, "remarks": remarks},
                headers={"If-Match": f'"{version}"'},
            )
            if sent is None or sent.status == 401:
                return _to_sign_in()
            if sent.ok:
                session["file_notice"] = "answered"
                return redirect(url_for("file_page", file_id=file_id), code=303)
            if sent.status in (403, 404):
                abort(404)
            status = sent.status
            if sent.status in (409, 412):
                errors.add(i18n.gettext(FILE_CHANGED))
            else:
                errors = page_errors(sent, ANSWER_FIELDS)
        current = _call_as_user("GET", f"/files/{file_id}")
        if current is None or current.status == 401:
            return _to_sign_in()
        if not current.ok:
            abort(404)
        return _render_file(current.body, errors=errors, remarks=remarks), status

    @app.get("/files/<uuid:file_id>/certificate")
    def download_certificate(file_id):
        """The certificate's PDF, fetched with the session's token and passed
        on: the token never reaches the browser."""
        token = _access_token()
        if token is None:
            return _to_sign_in()
        path = f"/files/{file_id}/certificate"
        pdf = _gateway().download(
            path, language=g.language, token=token, forwarded_for=_forwarded_for()
        )
        if pdf.status == 401 and _refresh():
            pdf = _gateway().download(
                path,
                language=g.language,
                token=session["access_token"],
                forwarded_for=_forwarded_for(),
            )
        if pdf.status == 401:
            return _to_sign_in()
        if not pdf.ok or pdf.content_type.split(";")[0].strip() != "application/pdf":
            abort(404)
        filename = pdf.filename or "certificate.pdf"
        return Response(
            pdf.content,
            mimetype="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    # -- track a file by its number, without signing in -------------------------

    @app.get("/track")
    def track_file():
        number = "".join(request.args.get("number", "").split()).upper()
        errors = PageErrors()
        tracked = None
        if "number" in request.args:
            if not number:
                errors.add(i18n.gettext("Enter the file's number."), "number")
            elif not is_file_number(number):
                errors.add(i18n.gettext(TRACK_HINT), "number")
            else:
                reply = _call("GET", f"/track/{quote(number, safe='/')}")
                if reply.status == 404:
                    errors.add(i18n.gettext(NO_SUCH_FILE), "number")
                elif not reply.ok:
                    errors = page_errors(reply, {"number": FormField("number")})
                else:
                    tracked = files_text.tracked(
                        reply.body,
                        _service(str(reply.body.get("service_code", ""))),
                        _local_body(str(reply.body.get("local_body", ""))),
                    )
        return render_template("track.html", number=number, tracked=tracked, errors=errors), (
            400 if errors else 200
        )

    # -- check a certificate ---------------------------------------------------

    @app.route("/certificates", methods=["GET", "POST"])
    def check_certificate():
        number = request.args.get("number", "").strip()
        qr_text = request.form.get("qr_text", "").strip()
        errors = PageErrors()
        verdict = None
        if request.method == "POST":
            if not qr_text:
                errors.add(i18n.gettext(QR_FIELDS["qr_text"].message), "qr_text")
            else:
                reply = _call("POST", "/certificates/verify", json={"qr_text": qr_text})
                verdict = reply.body if reply.ok else None
                if not reply.ok:
                    errors = page_errors(reply, QR_FIELDS)
        elif "number" in request.args:
            if not number:
                errors.add(i18n.gettext("Enter the certificate's number."), "number")
            else:
                reply = _call("GET", f"/certificates/{quote(number, safe='/')}")
                verdict = reply.body if reply.ok else None
                if not reply.ok:
                    errors = page_errors(reply, {"number": FormField("number")})
        return render_template(
            "certificates.html", number=number, qr_text=qr_text, verdict=verdict, errors=errors
        ), (400 if errors else 200)
