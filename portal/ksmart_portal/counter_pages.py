"""The counter: a local body's front office (its clerks) or an Akshaya
centre's operator files an application for a citizen who has come in.

1. Start (/counter): the service, and the citizen's phone (any country)
   or email; the platform sends the citizen a consent code
   (POST /counter/consents) whose message names this counter.
2. The form (/counter/file): the service's own form, built as the
   citizen's is (citizen_pages.render_application, a template extending
   apply.html), the scans uploaded with the operator's token, and the code
   the citizen reads out. Every problem at once: a wrong code and the
   form's problems together (POST /counter/files names both; a right code
   with form problems is not used up, so the counter corrects and sends
   again with it).
3. The acknowledgement (/counter/files/<id>), to print and hand over.

The consent in progress (its id, the service, where the code went, masked)
is kept in the encrypted session, never in the page: one filing at a time
per browser, which is how a counter works."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from flask import Flask, abort, g, redirect, render_template, request, session, url_for

from ksmart_common.domain.roles import AKSHAYA_OPERATOR, COUNTER_ROLES
from ksmart_common.domain.vocabulary import LANGUAGES
from ksmart_portal import application, calls, catalogue_text, files_text, i18n, navigation
from ksmart_portal.citizen_pages import (
    add_api_problems,
    read_application,
    render_application,
    submission_standing,
)
from ksmart_portal.navigation import NavLink
from ksmart_portal.problems import FormField, PageErrors, page_errors
from ksmart_portal.signing_in import SIGN_IN_FIELDS

# The session's keys: the filing in progress, and the masked contact of
# the last few filings (their acknowledgements name the applicant by it;
# the file itself holds only the applicant's id).
FILING = "counter_filing"
FILED = "counter_filed"
KEEP_FILED = 5
SERVICE_FIELD = "service"
CONTACT_FIELD = "contact"
LANGUAGE_FIELD = "citizen_language"
CODE_FIELD = "consent_code"
SIX_DIGITS = re.compile(r"^[0-9]{6}$")

CHOOSE_SERVICE = i18n.N_("Choose the service the citizen is applying for.")
CONTACT_NEEDED = i18n.N_("Enter the citizen's mobile number or email address.")
CHOOSE_CITIZENS_OFFICE = i18n.N_("Choose the local body the citizen is applying to.")
CODE_NEEDED = i18n.N_("Enter the 6 digits of the code the citizen received.")
CODE_WRONG = i18n.N_(
    "The code is not right, or it has expired or been used. Check it with the citizen, "
    "or send them a new code."
)
CONSENT_GONE = i18n.N_("This consent can no longer be used. Send the citizen a new code.")
CONSENT_FIELDS = {
    "consent.code": FormField(CODE_FIELD, CODE_WRONG),
    "consent.consent_id": FormField(CODE_FIELD, CONSENT_GONE),
}


def own_office() -> str | None:
    """A clerk files to their own local body only; an Akshaya operator
    chooses (None)."""
    if calls.has_role(AKSHAYA_OPERATOR):
        return None
    return calls.caller().get("local_body")


def services_to_choose(query: str) -> list[dict[str, Any]]:
    """The services a counter may file for, found by the search (either
    language) or all of them, by their name in the page's language."""
    reply = calls.call("GET", "/services", params={"q": query} if query else None)
    found = reply.body.get("services", []) if reply.ok else []
    return sorted(found, key=lambda service: catalogue_text.local(service.get("name")))


def consent_request(contact: str, language: str) -> dict[str, str]:
    """POST /counter/consents's body: a phone or an email, as typed (the
    gateway says what is wrong with either)."""
    key = "email" if "@" in contact else "phone"
    return {key: contact, "language": language if language in LANGUAGES else g.language}


def remember_filed(file_id: str, sent_to: str) -> None:
    filed = dict(session.get(FILED, {}))
    filed[file_id] = sent_to
    session[FILED] = dict(list(filed.items())[-KEEP_FILED:])


def acknowledgement(file: Mapping[str, Any], service: Mapping[str, Any]) -> dict[str, str]:
    """What the printed acknowledgement says, in the page's language."""
    filed_by = file.get("filed_by") or {}
    office = calls.local_body(str(file.get("local_body", "")))
    return {
        "file_number": str(file.get("file_number") or ""),
        "service_name": catalogue_text.local(service.get("name")) or str(file.get("service_code")),
        "office": catalogue_text.local(office.get("name")) or str(file.get("local_body", "")),
        "submitted": files_text.day_and_time(file.get("submitted_at")),
        "applicant": session.get(FILED, {}).get(str(file.get("file_id")), ""),
        "filed_at": catalogue_text.local((filed_by.get("office") or {}).get("name")),
        "filer_role": files_text.role_name(filed_by.get("role")),
        "due": files_text.day(file.get("file_due_at") or file.get("state_due_at")),
        "next_step": files_text.next_step(file, service),
    }


def register(app: Flask) -> None:
    # After the inbox (official_pages): a clerk lands on the inbox, an
    # Akshaya operator (who has none) here.
    navigation.offer(app, NavLink("counter_start", i18n.N_("File for a citizen"), COUNTER_ROLES))

    @app.route("/counter", methods=["GET", "POST"])
    def counter_start():
        refused = calls.needs_role(*COUNTER_ROLES)
        if refused:
            return refused
        query = request.args.get("q", "").strip()
        chosen = request.values.get(SERVICE_FIELD, "")
        contact = request.form.get(CONTACT_FIELD, "").strip()
        language = request.form.get(LANGUAGE_FIELD, g.language)
        errors = PageErrors()
        if request.method == "POST":
            service = calls.service(chosen) if chosen else {}
            if not service:
                errors.add(i18n.gettext(CHOOSE_SERVICE), SERVICE_FIELD)
            if not contact:
                errors.add(i18n.gettext(CONTACT_NEEDED), CONTACT_FIELD)
            if not errors:
                asked = calls.as_user(
                    "POST", "/counter/consents", json=consent_request(contact, language)
                )
                if asked.ok:
                    session[FILING] = {
                        "consent_id": asked.body["consent_id"],
                        "service": service["code"],
                        "sent_to": asked.body["sent_to"],
                        "channel": asked.body["channel"],
                    }
                    return redirect(url_for("counter_file"), code=303)
                errors = page_errors(asked, SIGN_IN_FIELDS)
        return render_template(
            "counter_start.html",
            services=services_to_choose(query),
            query=query,
            chosen=chosen,
            contact=contact,
            citizen_language=language,
            errors=errors,
        ), (400 if errors else 200)

    def _filing() -> dict[str, str] | None:
        return session.get(FILING)

    def _render_form(service, sent, kept, errors):
        office = own_office()
        return render_application(
            service,
            sent,
            kept,
            errors,
            template="counter_file.html",
            fields_after=(CODE_FIELD,),
            filing=_filing(),
            own_office=calls.local_body(office) if office else None,
            code_field=CODE_FIELD,
        )

    def _filing_or_elsewhere():
        """(the filing in progress, None), or (None, where to go instead):
        signing in, a 404 for someone not at a counter, or the start."""
        refused = calls.needs_role(*COUNTER_ROLES)
        if refused:
            return None, refused
        filing = _filing()
        if filing is None:
            return None, redirect(url_for("counter_start"), code=303)
        return filing, None

    @app.get("/counter/file")
    def counter_file():
        filing, elsewhere = _filing_or_elsewhere()
        if elsewhere:
            return elsewhere
        return _render_form(calls.service_or_404(filing["service"]), {}, {}, PageErrors())

    @app.post("/counter/file")
    def counter_submit():
        filing, elsewhere = _filing_or_elsewhere()
        if elsewhere:
            return elsewhere
        service = calls.service_or_404(filing["service"])
        sent, kept, errors, body = read_application(service)
        local_body = own_office() or sent.get(application.LOCAL_BODY, "")
        code = "".join(sent.get(CODE_FIELD, "").split())
        if not local_body:
            errors.add(i18n.gettext(CHOOSE_CITIZENS_OFFICE), application.LOCAL_BODY)
        if not SIX_DIGITS.match(code):
            errors.add(i18n.gettext(CODE_NEEDED), CODE_FIELD)
        if not (local_body and SIX_DIGITS.match(code)):
            # Nothing is filed without an office and a code; the API's check
            # of the rest still names every other problem now, not next try.
            checked = calls.as_user(
                "POST",
                f"/services/{quote(service['code'], safe='')}/validation",
                json={**({"local_body": local_body} if local_body else {}), **body},
            )
            if checked.ok and checked.body.get("problems"):
                add_api_problems(errors, checked, application.problem_fields(service))
        else:
            filed = calls.as_user(
                "POST",
                "/counter/files",
                json={
                    "service_code": service["code"],
                    "local_body": local_body,
                    **body,
                    "consent": {"consent_id": filing["consent_id"], "code": code},
                },
            )
            if filed.ok:
                session.pop(FILING, None)
                remember_filed(str(filed.body["file_id"]), filing["sent_to"])
                return redirect(
                    url_for("counter_acknowledgement", file_id=filed.body["file_id"]), code=303
                )
            fields = {**application.problem_fields(service), **CONSENT_FIELDS}
            add_api_problems(errors, filed, fields)
        if errors.for_field(CODE_FIELD):  # a wrong code is not offered again
            sent.pop(CODE_FIELD, None)
        return _render_form(service, sent, kept, errors), 400

    @app.get("/counter/files/<uuid:file_id>")
    def counter_acknowledgement(file_id):
        refused = calls.needs_role(*COUNTER_ROLES)
        if refused:
            return refused
        reply = calls.as_user("GET", f"/files/{file_id}")
        file = reply.body if reply.ok else {}
        filed_by = file.get("filed_by") or {}
        # Only the counter that filed it prints its acknowledgement.
        if filed_by.get("actor_id") != calls.caller().get("user_id"):
            abort(404)
        service = calls.service(str(file.get("service_code", "")))
        number = str(file.get("file_number") or "")
        return render_template(
            "counter_acknowledgement.html",
            file=file,
            told=acknowledgement(file, service),
            track_url=url_for("track_file", number=number, _external=True),
            log_standing=submission_standing(file),
        )
