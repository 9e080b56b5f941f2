"""The gateway's notification endpoints: a citizen's in-app feed and
preferences, the administrators' delivery log, and the SMS provider's
delivery receipts. A mixin of GatewayService, kept apart so the feed's
endpoints live in one small module."""

from __future__ import annotations

from nameko.rpc import RpcProxy

from ksmart_common.domain.roles import ADMINISTRATOR, CITIZEN
from ksmart_common.rpc import call
from ksmart_common.signatures import SMS_RECEIPT_SIGNATURE_HEADER
from ksmart_gateway import schemas
from ksmart_gateway.api import PREFIX, PUBLIC, ApiResult, api, read_callback


class NotificationEndpoints:
    notifications = RpcProxy("notifications")

    @api(
        "GET",
        f"{PREFIX}/notifications",
        summary="Your in-app notifications, newest first, with how many are unread",
        allowed_roles=(CITIZEN,),
        query=schemas.FeedQuery,
        response=schemas.Feed,
        tag="notifications",
    )
    def notification_feed(self, request, principal, query):
        return ApiResult(
            call(
                self.notifications.feed,
                principal.as_actor(),
                query["limit"],
                query["cursor"],
                query["unread"],
            ),
            headers={"Cache-Control": "private, no-store"},
        )

    @api(
        "POST",
        f"{PREFIX}/notifications/read",
        summary="Mark some of your notifications read (or, naming none, all of them)",
        allowed_roles=(CITIZEN,),
        body=schemas.MarkReadRequest,
        response=schemas.MarkReadResponse,
        tag="notifications",
    )
    def mark_notifications_read(self, request, principal, body):
        ids = body["notification_ids"]
        return ApiResult(
            call(
                self.notifications.mark_read,
                principal.as_actor(),
                [str(value) for value in ids] if ids is not None else None,
            )
        )

    @api(
        "GET",
        f"{PREFIX}/notification-preferences",
        summary="How you are told: language, channels, informational messages, quiet hours",
        allowed_roles=(CITIZEN,),
        response=schemas.PreferencesResponse,
        tag="notifications",
    )
    def notification_preferences(self, request, principal):
        return ApiResult(call(self.notifications.preferences, principal.as_actor()))

    @api(
        "PATCH",
        f"{PREFIX}/notification-preferences",
        summary="Change how you are told; notices the law requires cannot be turned off",
        allowed_roles=(CITIZEN,),
        body=schemas.PreferencesUpdate,
        response=schemas.PreferencesResponse,
        tag="notifications",
    )
    def update_notification_preferences(self, request, principal, body):
        return ApiResult(call(self.notifications.update_preferences, principal.as_actor(), body))

    @api(
        "GET",
        f"{PREFIX}/admin/notifications",
        summary="The delivery log, to help a citizen whose message did not arrive "
        "(destinations masked; search by the whole phone number or address)",
        allowed_roles=(ADMINISTRATOR,),
        query=schemas.MessageSearchQuery,
        response=schemas.DeliveryLog,
        tag="administration",
    )
    def search_messages(self, request, principal, query):
        limit, cursor = query.pop("limit"), query.pop("cursor")
        filters = {key: str(value) for key, value in query.items() if value is not None}
        return ApiResult(
            call(self.notifications.search_messages, principal.as_actor(), filters, limit, cursor)
        )

    @api(
        "POST",
        f"{PREFIX}/admin/notifications/<uuid:message_id>/resend",
        summary="Send again a message that did not arrive (dead-lettered, failed or undelivered)",
        allowed_roles=(ADMINISTRATOR,),
        response=schemas.DeliveryLogEntry,
        tag="administration",
    )
    def resend_message(self, request, principal, message_id):
        return ApiResult(call(self.notifications.resend, principal.as_actor(), str(message_id)))

    @api(
        "POST",
        f"{PREFIX}/notifications/sms-receipts",
        summary="The SMS provider's delivery receipts: the body is signed by the provider "
        f"({SMS_RECEIPT_SIGNATURE_HEADER}), and nothing else is trusted",
        allowed_roles=PUBLIC,
        response=schemas.ReceiptResponse,
        tag="notifications",
        headers=(SMS_RECEIPT_SIGNATURE_HEADER,),
        checks_credentials=True,
    )
    def sms_receipt(self, request, principal):
        body = read_callback(request)
        return ApiResult(
            call(
                self.notifications.sms_receipt,
                body,
                request.headers.get(SMS_RECEIPT_SIGNATURE_HEADER),
            )
        )
