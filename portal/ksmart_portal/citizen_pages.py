"""A citizen's own pages: applying for a service, their files, a file's
page, answering the office's question and downloading the certificate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, abort, g, redirect, render_template, request, session, url_for

from ksmart_common.domain.roles import CITIZEN
from ksmart_portal import application, calls, catalogue_text, files_text, i18n, navigation
from ksmart_portal.navigation import NavLink
from ksmart_portal.problems import FormField, PageErrors, page_errors

FILES_PER_PAGE = 20
ANSWER_NEEDED = i18n.N_("Write your answer to the office's question.")
FILE_CHANGED = i18n.N_(
    "This file changed while you were answering: someone acted on it first. "
    "Your answer was not sent. Read the file as it is now, then answer again if you still need to."
)
ANSWER_FIELDS = {"remarks": FormField("remarks")}
CHOOSE_OFFICE = i18n.N_("Choose the local body you are applying to.")


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
    bodies = calls.call("GET", "/local-bodies")
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


def _render_file(file: dict[str, Any], errors: PageErrors | None = None, **extra: Any):
    service = calls.service(str(file.get("service_code", "")))
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


def register(app: Flask) -> None:
    navigation.offer(app, NavLink("my_files", i18n.N_("Your files"), (CITIZEN,)))
    # -- apply for a service ----------------------------------------------------

    @app.get("/services/<code>/apply")
    def apply(code: str):
        if calls.access_token() is None:
            session["after_sign_in"] = url_for("apply", code=code)
            return redirect(url_for("sign_in"), code=303)
        service = calls.service_or_404(code)
        return _render_application(service, {}, {}, PageErrors())

    @app.post("/services/<code>/apply")
    def submit_application(code: str):
        service = calls.service_or_404(code)
        if calls.access_token() is None:
            return calls.to_sign_in()
        sent = request.form.to_dict()
        answers = application.typed_answers(service, sent)
        kept = application.kept_uploads(service, sent)
        errors = PageErrors()
        applying = application.documents_that_apply(service, answers)
        for spec in applying:
            chosen = request.files.get(application.document_id(spec["code"]))
            if chosen is None or not chosen.filename:
                continue
            uploaded = calls.call_as_user(
                "POST", "/documents", params={"filename": chosen.filename}, data=chosen.read()
            )
            if uploaded is None or uploaded.status == 401:
                return calls.to_sign_in()
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
            reply = calls.call_as_user(
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
                return calls.to_sign_in()
            if reply.ok:
                return redirect(url_for("applied", file_id=reply.body["file_id"]), code=303)
            placed = {error.field for error in errors.errors}
            for error in page_errors(reply, application.problem_fields(service)).errors:
                if error.field is None or error.field not in placed:
                    errors.add(error.message, error.field)
        return _render_application(service, sent, kept, errors), 400

    @app.get("/applied/<uuid:file_id>")
    def applied(file_id):
        reply = calls.call_as_user("GET", f"/files/{file_id}")
        if reply is None or reply.status == 401:
            return calls.to_sign_in()
        if not reply.ok:
            abort(404)
        service = calls.service(str(reply.body.get("service_code", "")))
        return render_template(
            "applied.html",
            file=reply.body,
            service_name=catalogue_text.local(service.get("name"))
            or reply.body.get("service_code"),
            next_step=files_text.next_step(reply.body, service),
        )

    # -- a citizen's own files ---------------------------------------------------

    @app.get("/files")
    def my_files():
        cursor = request.args.get("cursor", "")
        params = {"limit": str(FILES_PER_PAGE), **({"cursor": cursor} if cursor else {})}
        reply = calls.call_as_user("GET", "/files", params=params)
        if reply is None or reply.status == 401:
            return calls.to_sign_in()
        if not reply.ok:
            return render_template("error.html", errors=page_errors(reply)), 400
        files = [
            files_text.listed(entry, calls.service(str(entry.get("service_code", ""))))
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
        reply = calls.call_as_user("GET", f"/files/{file_id}")
        if reply is None or reply.status == 401:
            return calls.to_sign_in()
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
            sent = calls.call_as_user(
                "POST",
                f"/files/{file_id}/actions",
                json={"action": files_text.RESUBMIT, "remarks": remarks},
                headers={"If-Match": f'"{version}"'},
            )
            if sent is None or sent.status == 401:
                return calls.to_sign_in()
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
        current = calls.call_as_user("GET", f"/files/{file_id}")
        if current is None or current.status == 401:
            return calls.to_sign_in()
        if not current.ok:
            abort(404)
        return _render_file(current.body, errors=errors, remarks=remarks), status

    @app.get("/files/<uuid:file_id>/certificate")
    def download_certificate(file_id):
        """The certificate's PDF, fetched with the session's token and passed
        on: the token never reaches the browser."""
        token = calls.access_token()
        if token is None:
            return calls.to_sign_in()
        path = f"/files/{file_id}/certificate"
        pdf = calls.gateway().download(
            path, language=g.language, token=token, forwarded_for=calls.forwarded()
        )
        if pdf.status == 401 and calls.refresh():
            pdf = calls.gateway().download(
                path,
                language=g.language,
                token=session["access_token"],
                forwarded_for=calls.forwarded(),
            )
        if pdf.status == 401:
            return calls.to_sign_in()
        if not pdf.ok or pdf.content_type.split(";")[0].strip() != "application/pdf":
            abort(404)
        filename = pdf.filename or "certificate.pdf"
        return Response(
            pdf.content,
            mimetype="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
