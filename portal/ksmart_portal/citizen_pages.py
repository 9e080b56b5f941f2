"""A citizen's own pages: applying for a service, their files, a file's
page, paying its fee, answering the office's question (with documents) and
downloading the certificate. Their notifications are in notices_pages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from ksmart_common.domain.documents import MAX_DOCUMENT_BYTES
from ksmart_common.domain.roles import CITIZEN
from ksmart_portal import (
    application,
    calls,
    catalogue_text,
    files_text,
    i18n,
    log_proof,
    navigation,
)
from ksmart_portal.gateway import Reply
from ksmart_portal.navigation import NavLink
from ksmart_portal.problems import FormField, PageErrors, page_errors

FILES_PER_PAGE = 20
ANSWER_NEEDED = i18n.N_("Write your answer to the office's question.")
FILE_CHANGED = i18n.N_(
    "This file changed while you were answering: someone acted on it first. "
    "Your answer was not sent. Read the file as it is now, then answer again if you still need to."
)
CHOOSE_OFFICE = i18n.N_("Choose the local body you are applying to.")
PAYMENT_REFUSED = i18n.N_("The payment could not be started. Try again in a few minutes.")


def read_page(path: str, per_page: int) -> tuple[Reply, str]:
    """One page of a list the API pages by cursor (the page's ?cursor=),
    and that cursor ("" for the first page)."""
    cursor = request.args.get("cursor", "")
    params = {"limit": str(per_page), **({"cursor": cursor} if cursor else {})}
    return calls.as_user("GET", path, params=params), cursor


def _own_file(file_id) -> dict[str, Any]:
    """The signed-in citizen's file; 404 for one that is not theirs."""
    reply = calls.as_user("GET", f"/files/{file_id}")
    if not reply.ok:
        abort(404)
    return reply.body


def external_url(endpoint: str, **values: Any) -> str:
    """A page's full address, as a browser outside reaches it: under
    KSMART_PORTAL_PUBLIC_URL when set (behind a proxy that ends TLS the
    request itself says http and an inner host), else the request's own."""
    public_url = current_app.config.get("PUBLIC_URL")
    if public_url:
        return public_url + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def _pinned_definition(file: Mapping[str, Any]) -> dict[str, Any]:
    """The definition the file was filed under: what its documents are
    checked against when attached later."""
    reply = calls.call("GET", f"/definitions/{quote(str(file.get('definition_hash', '')))}")
    return reply.body if reply.ok else calls.service(str(file.get("service_code", "")))


def _upload_chosen(
    specs: list[Mapping[str, Any]], kept: dict[str, dict[str, str]], errors: PageErrors
) -> None:
    """Upload each document the citizen chose (or the counter's scans), as
    the signed-in person; an upload kept from an earlier try is replaced by
    a new choice, and a refused one is named beside its field."""
    for spec in specs:
        chosen = request.files.get(application.document_id(spec["code"]))
        if chosen is None or not chosen.filename:
            continue
        uploaded = calls.as_user(
            "POST", "/documents", params={"filename": chosen.filename}, data=chosen.read()
        )
        if uploaded.ok:
            kept[spec["code"]] = {
                "sha256": uploaded.body["sha256"],
                "filename": chosen.filename[:100],
            }
        else:
            kept.pop(spec["code"], None)
            for error in page_errors(uploaded).errors:
                errors.add(error.message, application.document_id(spec["code"]))


def read_application(
    service: Mapping[str, Any],
) -> tuple[dict[str, str], dict[str, dict[str, str]], PageErrors, dict[str, Any]]:
    """The application form as sent: what was typed (to show again), the
    uploads (chosen now, uploaded as the signed-in person, or kept from an
    earlier try), a refused upload's problems, and the API's application
    body (the typed answers and the documents that apply to them)."""
    sent = request.form.to_dict()
    answers = application.typed_answers(service, sent)
    kept = application.kept_uploads(service, sent)
    errors = PageErrors()
    applying = application.documents_that_apply(service, answers)
    _upload_chosen(applying, kept, errors)
    codes = {spec["code"] for spec in applying}
    body = {"form": answers, "documents": {c: kept[c]["sha256"] for c in kept if c in codes}}
    return sent, kept, errors, body


def add_api_problems(errors: PageErrors, reply: Reply, fields: Mapping[str, FormField]) -> None:
    """The API's problems, but not a second one beside a field the page
    has already named a problem of (a refused upload says it better)."""
    placed = {error.field for error in errors.errors}
    for error in page_errors(reply, fields).errors:
        if error.field is None or error.field not in placed:
            errors.add(error.message, error.field)


def render_application(
    service: dict[str, Any],
    sent: Mapping[str, str],
    kept: Mapping[str, Mapping[str, str]],
    errors: PageErrors,
    template: str = "apply.html",
    fields_after: tuple[str, ...] = (),
    **extra: Any,
):
    """The application form, with what was typed and uploaded kept, and
    every problem in the summary (in the page's order) and beside its field.
    The counter's form (counter_pages) is this one in a template extending
    apply.html, with fields of its own after the application's."""
    order = [
        application.LOCAL_BODY,
        *(f.name for f in application.problem_fields(service).values()),
        *fields_after,
    ]
    errors.errors.sort(key=lambda e: order.index(e.field) if e.field in order else -1)
    bodies = calls.call("GET", "/local-bodies")
    offices = application.offices(service, bodies.body.get("local_bodies", []) if bodies.ok else [])
    offices.sort(key=lambda body: catalogue_text.local(body.get("name")))
    return render_template(
        template,
        service=service,
        inputs=application.inputs(service),
        offices=offices,
        sent=sent,
        kept=kept,
        errors=errors,
        ids=application,
        form_value=application.form_value,
        condition_values=application.condition_values,
        upload_limit=upload_limit,
        **extra,
    )


def upload_limit(document: Mapping[str, Any]) -> int:
    """The most bytes a document may have (the page's script checks a
    chosen file against it before anything is sent)."""
    limit = int(document.get("max_bytes") or MAX_DOCUMENT_BYTES)
    return min(limit, MAX_DOCUMENT_BYTES)


def _answer_documents(file: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict]]:
    """The file's definition and the documents the citizen may attach in
    answer: those that apply to the file's answers."""
    definition = _pinned_definition(file)
    return definition, application.documents_that_apply(definition, file.get("form") or {})


def _render_file(file: dict[str, Any], errors: PageErrors | None = None, **extra: Any):
    service = calls.service(str(file.get("service_code", "")))
    may_answer = files_text.may_answer(file)
    definition, documents = _answer_documents(file) if may_answer else ({}, [])
    return render_template(
        "file.html",
        file=file,
        service_name=catalogue_text.local(service.get("name")) or file.get("service_code"),
        state=files_text.state_label(service, str(file.get("state", ""))),
        next_step=files_text.next_step(file, service),
        timeline=files_text.timeline(file, service),
        may_answer=may_answer,
        may_pay=may_pay(file),
        answer_documents=documents,
        errors=errors or PageErrors(),
        ids=application,
        kept=extra.pop("kept", {}),
        upload_limit=upload_limit,
        log_standing=submission_standing(file),
        **extra,
    )


def submission_standing(file: Mapping[str, Any]) -> log_proof.LogStanding | None:
    """The file's submission in the public log, checked here (log_proof)."""
    return log_proof.standing(file.get("transparency"), "submission", calls.log_key)


def may_pay(file: Mapping[str, Any]) -> bool:
    """A fee is due on an open file (a decided one is not paid for here)."""
    return bool(file.get("fee_due_paise")) and bool(file.get("waits_on"))


def register(app: Flask) -> None:
    navigation.offer(app, NavLink("my_files", i18n.N_("Your files"), (CITIZEN,)))

    # -- apply for a service ----------------------------------------------------

    @app.get("/services/<code>/apply")
    def apply(code: str):
        if calls.access_token() is None:
            session["after_sign_in"] = url_for("apply", code=code)
            return redirect(url_for("sign_in"), code=303)
        service = calls.service_or_404(code)
        return render_application(service, {}, {}, PageErrors())

    @app.post("/services/<code>/apply")
    def submit_application(code: str):
        service = calls.service_or_404(code)
        if calls.access_token() is None:
            return calls.to_sign_in()
        sent, kept, errors, body = read_application(service)
        local_body = sent.get(application.LOCAL_BODY, "")
        fields = application.problem_fields(service)
        if not local_body:
            # The API files nothing without an office; its check of the rest
            # still names every other problem now, not on the next try.
            errors.add(i18n.gettext(CHOOSE_OFFICE), application.LOCAL_BODY)
            checked = calls.as_user(
                "POST", f"/services/{quote(code, safe='')}/validation", json=body
            )
            if checked.ok and checked.body.get("problems"):
                add_api_problems(errors, checked, fields)
        else:
            filed = calls.as_user(
                "POST",
                "/files",
                json={"service_code": service["code"], "local_body": local_body, **body},
            )
            if filed.ok:
                return redirect(url_for("applied", file_id=filed.body["file_id"]), code=303)
            add_api_problems(errors, filed, fields)
        return render_application(service, sent, kept, errors), 400

    @app.get("/applied/<uuid:file_id>")
    def applied(file_id):
        file = _own_file(file_id)
        service = calls.service(str(file.get("service_code", "")))
        return render_template(
            "applied.html",
            file=file,
            service_name=catalogue_text.local(service.get("name")) or file.get("service_code"),
            next_step=files_text.next_step(file, service),
            log_standing=submission_standing(file),
        )

    # -- a citizen's own files ---------------------------------------------------

    @app.get("/files")
    def my_files():
        reply, cursor = read_page("/files", FILES_PER_PAGE)
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
        reply = calls.as_user("GET", f"/files/{file_id}")
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
        file = _own_file(file_id)
        if file.get("version") != int(version) or not files_text.may_answer(file):
            return _changed_meanwhile(file, remarks)
        definition, documents = _answer_documents(file)
        kept = application.kept_uploads(definition, request.form.to_dict())
        errors = PageErrors()
        _upload_chosen(documents, kept, errors)
        if not remarks:
            errors.add(i18n.gettext(ANSWER_NEEDED), "remarks")
        if errors:
            return _render_file(file, errors=errors, remarks=remarks, kept=kept), 400
        # Each document joins the file (a new version each), then the answer
        # goes with the version the last one made.
        fields = application.problem_fields(definition)
        for code in list(kept):
            attached = calls.as_user(
                "POST",
                f"/files/{file_id}/documents",
                json={"code": code, "sha256": kept[code]["sha256"]},
            )
            if attached.ok:
                kept.pop(code)
                file = attached.body
            else:
                for error in page_errors(attached, fields).errors:
                    errors.add(error.message, error.field or application.document_id(code))
        if errors:
            return _render_file(file, errors=errors, remarks=remarks, kept=kept), 400
        sent = calls.as_user(
            "POST",
            f"/files/{file_id}/actions",
            json={"action": files_text.RESUBMIT, "remarks": remarks},
            headers={"If-Match": f'"{file["version"]}"'},
        )
        if sent.ok:
            session["file_notice"] = "answered"
            return redirect(url_for("file_page", file_id=file_id), code=303)
        if sent.status in (403, 404):
            abort(404)
        if sent.status in (409, 412):
            return _changed_meanwhile(_own_file(file_id), remarks)
        errors = page_errors(sent, {"remarks": FormField("remarks")})
        return _render_file(file, errors=errors, remarks=remarks), sent.status

    def _changed_meanwhile(file: dict[str, Any], remarks: str):
        errors = PageErrors()
        errors.add(i18n.gettext(FILE_CHANGED))
        return _render_file(file, errors=errors, remarks=remarks), 409

    # -- paying a fee ------------------------------------------------------------

    @app.post("/files/<uuid:file_id>/pay")
    def pay_fee(file_id):
        """Start paying what the file owes, then off to the provider's page,
        which sends the citizen back to this file's payment page; a provider
        with no page of its own comes straight back to it."""
        return_url = external_url("payment", file_id=file_id)
        started = calls.as_user(
            "POST", f"/files/{file_id}/payments", json={"return_url": return_url}
        )
        if started.status in (403, 404):
            abort(404)
        if not started.ok:
            file = _own_file(file_id)
            if not may_pay(file):  # paid meanwhile, or decided: the file says so
                return redirect(url_for("file_page", file_id=file_id), code=303)
            errors = PageErrors()
            errors.add(i18n.gettext(PAYMENT_REFUSED))
            return _render_file(file, errors=errors), 400
        payment_id = started.body["payment_id"]
        checkout_url = started.body.get("checkout_url")
        if not checkout_url:
            return redirect(url_for("payment", file_id=file_id, payment_id=payment_id), code=303)
        # The provider's page is on another origin, where the file page's
        # form-action 'self' stops a redirect from its form: a page of ours
        # goes on instead (kept in the session, never taken from an address).
        session["checkout"] = {"payment_id": payment_id, "url": checkout_url}
        going = url_for("payment_checkout", file_id=file_id, payment_id=payment_id)
        return redirect(going, code=303)

    @app.get("/files/<uuid:file_id>/payments/<payment_id>/checkout")
    def payment_checkout(file_id, payment_id: str):
        """On to the provider's page at once (an instant meta refresh, which
        no script and no form-action governs), with a link for a browser
        that does not follow it."""
        checkout = session.get("checkout") or {}
        if checkout.get("payment_id") != payment_id:
            return redirect(url_for("payment", file_id=file_id, payment_id=payment_id), code=303)
        return render_template(
            "payment_checkout.html", file=_own_file(file_id), checkout_url=checkout["url"]
        )

    @app.get("/files/<uuid:file_id>/payment", defaults={"payment_id": None})
    @app.get("/files/<uuid:file_id>/payments/<payment_id>")
    def payment(file_id, payment_id: str | None):
        """Where the provider sends the citizen back: the payment's state as
        the platform has recorded it. Whatever the address says (a provider
        adds its own words to it) is never taken as the payment's outcome."""
        file = _own_file(file_id)
        service = calls.service(str(file.get("service_code", "")))
        recorded = payment_id is not None and payment_id in (file.get("payments") or [])
        paid = recorded or (not file.get("fee_due_paise") and bool(file.get("paid_paise")))
        return render_template(
            "payment.html",
            file=file,
            paid=paid,
            service_name=catalogue_text.local(service.get("name")) or file.get("service_code"),
        )

    @app.get("/files/<uuid:file_id>/certificate")
    def download_certificate(file_id):
        """The certificate's PDF, fetched with the session's token and passed
        on: the token never reaches the browser."""
        pdf = calls.download_as_user(f"/files/{file_id}/certificate")
        if pdf is None or pdf.status == 401:
            return calls.to_sign_in()
        if not pdf.ok or pdf.content_type.split(";")[0].strip() != "application/pdf":
            abort(404)
        filename = pdf.filename or "certificate.pdf"
        return Response(
            pdf.content,
            mimetype="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
