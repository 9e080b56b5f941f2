"""A citizen's notifications (the in-app feed: every message the platform
sent them, newest first) and how they want to be told (language, outside
channels, informational messages). The preferences are a plain form: read
with GET, changed with POST, which the portal sends on as a PATCH."""

from __future__ import annotations

from typing import Any

from flask import Flask, redirect, render_template, request, session, url_for

from ksmart_common.domain.roles import CITIZEN
from ksmart_portal import calls, i18n, navigation
from ksmart_portal.citizen_pages import read_page
from ksmart_portal.navigation import NavLink
from ksmart_portal.problems import FormField, PageErrors, page_errors

NOTIFICATIONS_PER_PAGE = 20
CHANNEL_NAMES = {"sms": i18n.N_("Text message (SMS)"), "email": i18n.N_("Email")}
YES, NO = "yes", "no"
PREFERENCE_FIELDS = {
    "language": FormField("language", i18n.N_("Choose the language of your messages.")),
    "channels": FormField(
        "channels", i18n.N_("Choose only the ways we can reach you, shown below.")
    ),
    "informational": FormField("informational", i18n.N_("Choose yes or no.")),
}


def _preferences_sent(form) -> dict[str, Any]:
    """What the preferences form asks for, as the API takes it. A choice
    the form did not carry is left out, so the API names it if it matters."""
    changes: dict[str, Any] = {"channels": form.getlist("channels")}
    if form.get("language"):
        changes["language"] = form["language"]
    informational = form.get("informational")
    if informational in (YES, NO):
        changes["informational"] = informational == YES
    return changes


def register(app: Flask) -> None:
    navigation.offer(app, NavLink("notifications", i18n.N_("Notifications"), (CITIZEN,)))

    @app.get("/notifications")
    def notifications():
        reply, cursor = read_page("/notifications", NOTIFICATIONS_PER_PAGE)
        if not reply.ok:
            return render_template("error.html", errors=page_errors(reply)), 400
        return render_template(
            "notifications.html",
            notifications=reply.body.get("notifications", []),
            unread_count=int(reply.body.get("unread_count") or 0),
            next_cursor=reply.body.get("next_cursor"),
            later_page=bool(cursor),
            notice=session.pop("notifications_notice", None),
        )

    @app.post("/notifications/read")
    def mark_notifications_read():
        reply = calls.as_user("POST", "/notifications/read", json={})
        if not reply.ok:
            return render_template("error.html", errors=page_errors(reply)), 400
        session["notifications_notice"] = "read"
        return redirect(url_for("notifications"), code=303)

    @app.route("/notifications/preferences", methods=["GET", "POST"])
    def notification_preferences():
        errors = PageErrors()
        if request.method == "POST":
            changes = _preferences_sent(request.form)
            saved = calls.as_user("PATCH", "/notification-preferences", json=changes)
            if saved.ok:
                session["notifications_notice"] = "saved"
                return redirect(url_for("notifications"), code=303)
            errors = page_errors(saved, PREFERENCE_FIELDS)
        current = calls.as_user("GET", "/notification-preferences")
        if not current.ok:
            return render_template("error.html", errors=page_errors(current)), 400
        chosen = current.body
        if request.method == "POST":  # what was sent stays chosen beside its problem
            chosen = {**chosen, **_preferences_sent(request.form)}
        return render_template(
            "preferences.html",
            preferences=chosen,
            channel_names=CHANNEL_NAMES,
            errors=errors,
        ), (400 if errors else 200)
