"""The pages anyone may read without signing in: the home page, the
language switch, finding a service and its checklist, tracking a file by
its number and checking a certificate."""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask, abort, redirect, render_template, request, session

from ksmart_common.domain.vocabulary import LANGUAGES, LOCAL_BODY_KINDS, is_file_number
from ksmart_portal import calls, catalogue_text, files_text, i18n, log_proof
from ksmart_portal.language import LANGUAGE_COOKIE, ONE_YEAR_SECONDS, safe_next
from ksmart_portal.problems import FormField, PageErrors, page_errors

SEARCH_FIELDS = {
    "q": FormField("q"),
    "category": FormField("category"),
    "local_body_type": FormField("local_body_type"),
}
TRACK_HINT = i18n.N_(
    "Enter the number as it is printed on your acknowledgement, like KL-EKM-KOC/BR/2026/000123."
)
NO_SUCH_FILE = i18n.N_("No file has this number. Check it and try again.")
QR_FIELDS = {"qr_text": FormField("qr_text", i18n.N_("Paste the whole text of the QR code."))}


def register(app: Flask) -> None:
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
        categories = calls.call("GET", "/categories").body.get("categories", [])
        reply = calls.call("GET", "/services", params={k: v for k, v in query.items() if v})
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
        reply = calls.call("GET", f"/services/{quote(code, safe='')}")
        if reply.status == 404:
            abort(404)
        if not reply.ok:
            return render_template("error.html", errors=page_errors(reply)), 400
        categories = calls.call("GET", "/categories").body.get("categories", [])
        category = next((c for c in categories if c["code"] == reply.body.get("category")), None)
        return render_template("service.html", service=reply.body, category=category)

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
                reply = calls.call("GET", f"/track/{quote(number, safe='/')}")
                if reply.status == 404:
                    errors.add(i18n.gettext(NO_SUCH_FILE), "number")
                elif not reply.ok:
                    errors = page_errors(reply, {"number": FormField("number")})
                else:
                    tracked = files_text.tracked(
                        reply.body,
                        calls.service(str(reply.body.get("service_code", ""))),
                        calls.local_body(str(reply.body.get("local_body", ""))),
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
                reply = calls.call("POST", "/certificates/verify", json={"qr_text": qr_text})
                verdict = reply.body if reply.ok else None
                if not reply.ok:
                    errors = page_errors(reply, QR_FIELDS)
        elif "number" in request.args:
            if not number:
                errors.add(i18n.gettext("Enter the certificate's number."), "number")
            else:
                reply = calls.call("GET", f"/certificates/{quote(number, safe='/')}")
                verdict = reply.body if reply.ok else None
                if not reply.ok:
                    errors = page_errors(reply, {"number": FormField("number")})
        issuer = None
        if verdict and verdict.get("certificate"):
            body = calls.local_body(str(verdict["certificate"].get("local_body", "")))
            issuer = catalogue_text.local(body.get("name")) or verdict["certificate"].get(
                "local_body"
            )
        # Checked here, not taken on the gateway's word (log_proof).
        standing = None
        if verdict and verdict.get("valid"):
            standing = log_proof.standing(verdict.get("transparency"), "certificate", calls.log_key)
        return render_template(
            "certificates.html",
            number=number,
            qr_text=qr_text,
            verdict=verdict,
            issuer=issuer,
            log_standing=standing,
            errors=errors,
        ), (400 if errors else 200)
