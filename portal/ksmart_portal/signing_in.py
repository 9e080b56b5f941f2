"""Signing in and out: citizens with a one-time code sent to their phone
or email, staff with their username and password; the account page."""

from __future__ import annotations

from flask import Flask, g, redirect, render_template, request, session, url_for

from ksmart_portal import calls, i18n, security
from ksmart_portal.language import safe_next
from ksmart_portal.navigation import landing
from ksmart_portal.problems import FormField, PageErrors, page_errors

# The field's hint says what to type; its errors say what was wrong, not
# the hint again (a screen reader reads both).
CONTACT_NEEDED = i18n.N_("Enter your mobile number or your email address.")
PHONE_NOT_UNDERSTOOD = i18n.N_(
    "This is not a mobile number we can send to: start with + and the country code."
)
EMAIL_NOT_UNDERSTOOD = i18n.N_("This is not an email address: it needs a name, @ and a domain.")
SIGN_IN_FIELDS = {
    "phone": FormField("contact", PHONE_NOT_UNDERSTOOD),
    "email": FormField("contact", EMAIL_NOT_UNDERSTOOD),
}
CODE_FIELDS = {
    "code": FormField("code", i18n.N_("Enter the 6 digits of the code we sent you.")),
    "challenge_id": FormField("code", i18n.N_("Ask for a new code.")),
}
WRONG_CODE = i18n.N_("The code is wrong or has expired. Check it, or ask for a new code.")
USERNAME_NEEDED = i18n.N_("Enter your username.")
PASSWORD_NEEDED = i18n.N_("Enter your password.")
WRONG_PASSWORD = i18n.N_(
    "The username or password is wrong. After several wrong tries the account is locked "
    "for a while; your office's administrator can help."
)
STAFF_FIELDS = {"username": FormField("username"), "password": FormField("password")}


def register(app: Flask) -> None:
    # -- citizens: a one-time code ----------------------------------------------

    @app.route("/sign-in", methods=["GET", "POST"])
    def sign_in():
        contact = request.form.get("contact", "").strip()
        errors = PageErrors()
        if request.method == "POST":
            if not contact:
                errors.add(i18n.gettext(CONTACT_NEEDED), "contact")
            else:
                key = "email" if "@" in contact else "phone"
                reply = calls.call("POST", "/auth/otp", json={key: contact, "language": g.language})
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
            reply = calls.call(
                "POST", "/auth/otp/verify", json={"challenge_id": challenge["id"], "code": code}
            )
            if reply.ok:
                calls.start_session(reply.body)
                session.pop("challenge")
                session["signed_in_as"] = challenge["sent_to"]
                return _signed_in()
            if reply.status == 401:
                errors.add(i18n.gettext(WRONG_CODE), "code")
            else:
                errors = page_errors(reply, CODE_FIELDS)
        return render_template("enter_code.html", challenge=challenge, errors=errors), (
            400 if errors else 200
        )

    @app.route("/staff/sign-in", methods=["GET", "POST"])
    def staff_sign_in():
        username = request.form.get("username", "").strip()
        errors = PageErrors()
        if request.method == "POST":
            password = request.form.get("password", "")
            if not username:
                errors.add(i18n.gettext(USERNAME_NEEDED), "username")
            if not password:
                errors.add(i18n.gettext(PASSWORD_NEEDED), "password")
            if not errors:
                reply = calls.call(
                    "POST", "/auth/token", json={"username": username, "password": password}
                )
                if reply.ok:
                    calls.start_session(reply.body)
                    session["signed_in_as"] = username
                    return _signed_in()
                if reply.status == 401:
                    errors.add(i18n.gettext(WRONG_PASSWORD), "password")
                else:
                    errors = page_errors(reply, STAFF_FIELDS)
        return render_template("staff_sign_in.html", username=username, errors=errors), (
            400 if errors else 200
        )

    @app.get("/account")
    def account():
        if calls.access_token() is None:
            return redirect(url_for("sign_in"), code=303)
        return render_template(
            "account.html", signed_in_as=session.get("signed_in_as"), roles=calls.caller()["roles"]
        )

    @app.post("/sign-out")
    def sign_out():
        if calls.signed_in():
            calls.call_as_user("POST", "/auth/logout")  # ends the session at identity
        language_free = {"notice": "signed_out"}
        session.clear()
        session.update(language_free)
        security.renew_csrf_token()
        return redirect(url_for("home"), code=303)


def _signed_in():
    """A new session: a new CSRF token, then the page that asked for the
    sign-in, or the first page of the person's work."""
    security.renew_csrf_token()
    after = session.pop("after_sign_in", None)
    return redirect(safe_next(after) if after else landing(), code=303)
