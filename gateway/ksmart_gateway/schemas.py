"""The gateway's request and response schemas: they validate requests and
they generate the OpenAPI document, so the two never disagree."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ksmart_common.domain.documents import MAX_FILENAME_LENGTH, SHA256_PATTERN
from ksmart_common.domain.roles import OFFICIAL_ROLES, STAFF_KINDS
from ksmart_common.domain.vocabulary import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    LOCAL_BODY_CODE_EXAMPLE,
    LOCAL_BODY_CODE_PATTERN,
)
from ksmart_common.envelope import EnvelopeSchema
from ksmart_gateway.return_urls import MAX_RETURN_URL_LENGTH

LOCAL_BODY_CODE = validate.Regexp(
    LOCAL_BODY_CODE_PATTERN, error=f"a local-body code such as {LOCAL_BODY_CODE_EXAMPLE}"
)
FORM_VALUE = fields.Raw(allow_none=True)
SHA256 = validate.Regexp(SHA256_PATTERN, error="a sha256: 64 lowercase hexadecimal digits")
DOCUMENT_CODE = validate.Regexp(r"^[a-z][a-z0-9_]{0,63}$", error="a document code")
SERVICE_CODE = validate.Regexp(r"^[a-z0-9-]{2,64}$", error="a service code")


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class TokenRequest(StrictSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=100))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200))


class TokenResponse(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    refresh_token = fields.String(required=True)
    refresh_expires_in = fields.Integer(required=True)


class CodeRequest(StrictSchema):
    phone = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "E.164, any country: +919847012345, +971501234567"},
    )
    email = fields.String(load_default=None, validate=validate.Length(min=3, max=254))
    language = fields.String(load_default=DEFAULT_LANGUAGE, validate=validate.OneOf(LANGUAGES))


class CodeResponse(Schema):
    challenge_id = fields.String(required=True)
    channel = fields.String(required=True)
    sent_to = fields.String(required=True, metadata={"description": "masked"})
    expires_in = fields.Integer(required=True)


class CodeSignInRequest(StrictSchema):
    challenge_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    code = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$", error="6 digits"))


class RefreshRequest(StrictSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class LogoutResponse(Schema):
    ended = fields.Boolean(required=True)


class CallerResponse(Schema):
    """Who the token speaks for, as the gateway verified it: what a client
    needs to choose which pages to offer, without reading the token itself."""

    user_id = fields.String(required=True)
    username = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    local_body = fields.String(allow_none=True, required=True)
    wards = fields.List(fields.Integer(), required=True)


class StaffCreateRequest(StrictSchema):
    username = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z][a-z0-9._-]{2,63}$", error="3-64 lower-case letters, digits, '.', '_', '-'"
        ),
    )
    display_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(STAFF_KINDS))
    roles = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=10),
    )
    local_body = fields.String(load_default=None, allow_none=True, validate=LOCAL_BODY_CODE)
    wards = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1)),
        load_default=list,
        validate=validate.Length(max=200),
    )
    password = fields.String(
        required=True,
        validate=validate.Length(min=12, max=200),
        metadata={"description": "a first password, at least 12 characters"},
    )


class StaffUpdateRequest(StrictSchema):
    roles = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)), validate=validate.Length(min=1)
    )
    local_body = fields.String(validate=LOCAL_BODY_CODE)
    wards = fields.List(fields.Integer(strict=True, validate=validate.Range(min=1)))
    disabled = fields.Boolean()


class StaffMember(Schema):
    user_id = fields.String()
    username = fields.String()
    display_name = fields.String()
    kind = fields.String()
    roles = fields.List(fields.String())
    local_body = fields.String(allow_none=True)
    wards = fields.List(fields.Integer())
    disabled = fields.Boolean()
    locked_until = fields.String(allow_none=True)


class StaffQuery(StrictSchema):
    local_body = fields.String(load_default=None, validate=LOCAL_BODY_CODE)
    kind = fields.String(load_default=None, validate=validate.OneOf(STAFF_KINDS))


class StaffList(Schema):
    staff = fields.List(fields.Nested(StaffMember))


class LocalBodyQuery(StrictSchema):
    district = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Z]{3}$"))
    type = fields.String(load_default=None, validate=validate.Length(max=64))


class LocalBody(Schema):
    code = fields.String()
    district = fields.String()
    type = fields.String()
    name = fields.Dict()
    wards = fields.Integer()
    dissolved_on = fields.String(
        allow_none=True, metadata={"description": "the date it ceased to exist; null if it has not"}
    )


class LocalBodyList(Schema):
    local_bodies = fields.List(fields.Nested(LocalBody))


class DistrictList(Schema):
    districts = fields.List(fields.Dict())


class SubmitApplicationRequest(StrictSchema):
    service_code = fields.String(required=True, validate=SERVICE_CODE)
    local_body = fields.String(required=True, validate=LOCAL_BODY_CODE)
    form = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=64)),
        values=FORM_VALUE,
        required=True,
        validate=validate.Length(max=200),
    )
    documents = fields.Dict(
        keys=fields.String(validate=DOCUMENT_CODE),
        values=fields.String(validate=SHA256),
        load_default=dict,
        validate=validate.Length(max=50),
        metadata={"description": "document code -> sha256 of one of your uploads"},
    )


class CitizensConsent(StrictSchema):
    consent_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "from POST /counter/consents"},
    )
    code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9]{6}$", error="6 digits"),
        metadata={"description": "the code the citizen received and read out"},
    )


class CounterFilingRequest(SubmitApplicationRequest):
    """An application with the citizen's consent; the documents are the
    counter's own uploads (the scans)."""

    consent = fields.Nested(CitizensConsent, required=True)


class ConsentResponse(Schema):
    consent_id = fields.String(required=True)
    channel = fields.String(required=True, metadata={"description": "sms or email"})
    sent_to = fields.String(required=True, metadata={"description": "masked"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})
    expires_at = fields.String(required=True)


class AttachDocumentRequest(StrictSchema):
    code = fields.String(required=True, validate=DOCUMENT_CODE)
    sha256 = fields.String(required=True, validate=SHA256)


class UploadQuery(StrictSchema):
    filename = fields.String(
        load_default=None, validate=validate.Length(min=1, max=MAX_FILENAME_LENGTH)
    )


class UploadResponse(Schema):
    sha256 = fields.String(required=True)
    media_type = fields.String(required=True)
    size_bytes = fields.Integer(required=True)
    filename = fields.String(allow_none=True)


class PaymentStart(StrictSchema):
    # Where the provider sends the citizen back after paying: an absolute
    # http(s) URL on an allowed origin (return_urls.py, checked by the endpoint).
    return_url = fields.String(
        load_default=None, validate=validate.Length(min=1, max=MAX_RETURN_URL_LENGTH)
    )


class PaymentResponse(Schema):
    payment_id = fields.String(required=True)
    provider = fields.String(required=True)
    amount_paise = fields.Integer(required=True)
    checkout_url = fields.String(allow_none=True)


class PaymentCallbackResponse(Schema):
    recorded = fields.Boolean(required=True)
    status = fields.String()
    file_id = fields.String()


class ActionRequest(StrictSchema):
    action = fields.String(required=True, validate=validate.Length(min=1, max=64))
    remarks = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=4000))
    expected_version = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1)
    )
    answers = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=64)),
        values=FORM_VALUE,
        load_default=None,
        validate=validate.Length(max=200),
        metadata={"description": "corrected form answers, when replying to a clarification"},
    )


class TimelineEntry(Schema):
    version = fields.Integer()
    action = fields.String()
    event_type = fields.String()
    actor_id = fields.String(allow_none=True)
    role = fields.String(allow_none=True)
    remarks = fields.String(allow_none=True)
    from_state = fields.String(allow_none=True)
    to_state = fields.String()
    at = fields.String()


class FilingOffice(Schema):
    local_body = fields.String(
        allow_none=True, metadata={"description": "the body's code; none for an Akshaya centre"}
    )
    name = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"description": "{en, ml}"}
    )


class FiledBy(Schema):
    """Counter staff who filed a file in its applicant's name."""

    actor_id = fields.String(required=True)
    role = fields.String(required=True, metadata={"description": "clerk or akshaya_operator"})
    office = fields.Nested(FilingOffice, required=True)
    consent_id = fields.String(required=True)


FILED_BY = fields.Nested(
    FiledBy,
    allow_none=True,
    metadata={
        "description": "counter staff who filed it in the applicant's name; none "
        "when the applicant filed it"
    },
)


class FileResponse(Schema):
    file_id = fields.String(required=True)
    file_number = fields.String(allow_none=True)
    service_code = fields.String(required=True)
    definition_version = fields.Integer(required=True)
    definition_hash = fields.String(required=True)
    local_body = fields.String(required=True)
    applicant_id = fields.String(required=True)
    form = fields.Dict(required=True)
    state = fields.String(required=True)
    waits_on = fields.String(allow_none=True)
    version = fields.Integer(required=True)
    submitted_at = fields.String(required=True)
    updated_at = fields.String(required=True)
    allowed_actions = fields.List(fields.String(), required=True)
    timeline = fields.List(fields.Nested(TimelineEntry), required=True)
    documents = fields.Dict(
        keys=fields.String(), values=fields.Nested(UploadResponse), required=True
    )
    fee_demand = fields.Dict(required=True)
    paid_paise = fields.Integer(required=True)
    fee_due_paise = fields.Integer(required=True)
    payments = fields.List(fields.String(), required=True)
    state_due_at = fields.String(allow_none=True)
    file_due_at = fields.String(allow_none=True)
    clarification = fields.Dict(allow_none=True)
    assigned_to = fields.String(allow_none=True)
    escalated = fields.Boolean()
    certificate = fields.Dict(
        allow_none=True, metadata={"description": "the signed certificate a granted file yields"}
    )
    filed_by = FILED_BY


class FileSummary(Schema):
    file_id = fields.String()
    file_number = fields.String(allow_none=True)
    state_due_at = fields.String(allow_none=True)
    file_due_at = fields.String(allow_none=True)
    overdue = fields.Boolean()
    assigned_to = fields.String(allow_none=True)
    escalated = fields.Boolean()
    service_code = fields.String()
    local_body = fields.String()
    state = fields.String()
    waits_on = fields.String(allow_none=True)
    version = fields.Integer()
    submitted_at = fields.String()
    updated_at = fields.String()


class PageQuery(StrictSchema):
    """A page of a list read with cursors: how many, and where the last page ended."""

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(
        load_default=None,
        validate=validate.Length(max=500),
        metadata={"description": "the previous page's next_cursor"},
    )


class InboxQuery(PageQuery):
    service = fields.String(load_default=None, validate=SERVICE_CODE)
    state = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    overdue = fields.Boolean(load_default=None)
    assigned = fields.String(
        load_default=None,
        validate=validate.OneOf(("me", "unassigned")),
        metadata={"description": "me: files assigned to you; unassigned: to nobody"},
    )


class ApplicantFile(Schema):
    file_id = fields.String()
    file_number = fields.String(allow_none=True)
    service_code = fields.String()
    local_body = fields.String()
    state = fields.String()
    waits_on = fields.String(
        allow_none=True, metadata={"description": "the role the file waits on; none when decided"}
    )
    needs_applicant = fields.Boolean(
        metadata={"description": "the file waits on the applicant: something is asked of them"}
    )
    state_due_at = fields.String(
        allow_none=True,
        metadata={"description": "when the office's time for this state runs out"},
    )
    submitted_at = fields.String()
    updated_at = fields.String()
    version = fields.Integer()
    filed_by = FILED_BY


class ApplicantFiles(Schema):
    files = fields.List(fields.Nested(ApplicantFile))
    next_cursor = fields.String(allow_none=True)


class TrackedFile(Schema):
    file_number = fields.String()
    service_code = fields.String()
    local_body = fields.String(metadata={"description": "the office: the local body's code"})
    state = fields.String()
    waits_on = fields.String(
        allow_none=True, metadata={"description": "the role the file waits on, never a person"}
    )
    state_due_at = fields.String(allow_none=True)
    overdue = fields.Boolean()
    updated_at = fields.String(metadata={"description": "when the file last moved"})


class AssignRequest(StrictSchema):
    official_id = fields.UUID(required=True)


class CertificateCheck(StrictSchema):
    qr_text = fields.String(
        required=True,
        validate=validate.Length(min=10, max=4000),
        metadata={"description": "the text of a certificate's QR code"},
    )


class CertificateVerdict(Schema):
    found = fields.Boolean()
    valid = fields.Boolean()
    problems = fields.List(fields.String())
    certificate = fields.Dict(
        metadata={"description": "by number: number, title, body, dates; by QR: all of it"}
    )


class StatisticsQuery(StrictSchema):
    local_body = fields.String(load_default=None, validate=LOCAL_BODY_CODE)
    service = fields.String(load_default=None, validate=SERVICE_CODE)


class StatisticsRow(Schema):
    local_body = fields.String()
    service_code = fields.String()
    received = fields.Integer()
    decided = fields.Integer()
    pending = fields.Integer()
    overdue = fields.Integer()
    median_decision_days = fields.Float(allow_none=True)


class Statistics(Schema):
    rows = fields.List(fields.Nested(StatisticsRow))


class RoleCounts(Schema):
    waits_on = fields.String()
    pending = fields.Integer()
    overdue = fields.Integer()
    unassigned = fields.Integer()


class ColleaguesQuery(StrictSchema):
    role = fields.String(
        required=True,
        validate=validate.OneOf(OFFICIAL_ROLES),
        metadata={"description": "the role a file waits on"},
    )


class Colleague(Schema):
    user_id = fields.String()
    username = fields.String()
    display_name = fields.String()


class Colleagues(Schema):
    officials = fields.List(fields.Nested(Colleague))


class OfficeCounts(Schema):
    local_body = fields.String(allow_none=True)
    roles = fields.List(fields.Nested(RoleCounts))


class InboxResponse(Schema):
    files = fields.List(fields.Nested(FileSummary))
    next_cursor = fields.String(allow_none=True)


class AuditEventsQuery(StrictSchema):
    after = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=1000))


class AuditEvent(EnvelopeSchema):
    """An event as ksmart_common.envelope.to_document exports it."""

    canonical = fields.String(
        metadata={
            "description": "the exact text the event's hash covers, as stored: "
            "hash = sha256(prev_hash + canonical), canonical being the canonical JSON of "
            "the envelope without its hash; verify these bytes, not a re-encoding of the "
            "fields beside it"
        }
    )


class AuditEventsResponse(Schema):
    events = fields.List(fields.Nested(AuditEvent))
    next_position = fields.Integer()


class AuditFileQuery(StrictSchema):
    number = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "a file's number, as its notices print it"},
    )


class AuditFileFound(Schema):
    file_id = fields.String()
    file_number = fields.String()


class AuditFileResponse(Schema):
    file_id = fields.String()
    verified = fields.Boolean(metadata={"description": "the hash chain verifies end to end"})
    problems = fields.List(fields.String())
    events = fields.List(fields.Nested(AuditEvent))


class ServiceQuery(StrictSchema):
    q = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "words to find, in English or Malayalam"},
    )
    category = fields.String(load_default=None, validate=validate.Length(max=64))
    local_body_type = fields.String(load_default=None, validate=validate.Length(max=64))


class ServiceSummary(Schema):
    code = fields.String()
    version = fields.Integer()
    short_code = fields.String()
    name = fields.Dict()
    category = fields.String()
    applicable_to = fields.List(fields.String())
    sla_days = fields.Integer()
    fee_paise = fields.Integer(metadata={"description": "the most a file can owe"})
    content_hash = fields.String()


class ServiceList(Schema):
    services = fields.List(fields.Nested(ServiceSummary))


class ServiceVersionQuery(StrictSchema):
    version = fields.Integer(load_default=None, validate=validate.Range(min=1))


class Category(Schema):
    code = fields.String()
    name = fields.Dict()
    services = fields.Integer()


class CategoryList(Schema):
    categories = fields.List(fields.Nested(Category))


class Problem(Schema):
    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    problems = fields.List(fields.Dict())


# -- notifications ----------------------------------------------------------

NOTIFICATION_CHANNELS = ("sms", "email")
MESSAGE_STATUSES = (
    "scheduled",
    "queued",
    "retrying",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "dead",
)


class FeedQuery(StrictSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))
    unread = fields.Boolean(load_default=False, metadata={"description": "only unread ones"})


class Notification(Schema):
    notification_id = fields.String(required=True)
    template = fields.String(required=True)
    title = fields.String(required=True)
    text = fields.String(required=True)
    file_id = fields.String(allow_none=True)
    file_number = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    read_at = fields.String(allow_none=True)


class Feed(Schema):
    notifications = fields.List(fields.Nested(Notification))
    unread_count = fields.Integer(required=True)
    next_cursor = fields.String(allow_none=True)


class MarkReadRequest(StrictSchema):
    notification_ids = fields.List(
        fields.UUID(),
        load_default=None,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "the ones to mark read; left out, all of them"},
    )


class MarkReadResponse(Schema):
    marked = fields.Integer(required=True)
    unread_count = fields.Integer(required=True)


class QuietHours(StrictSchema):
    start = fields.String(required=True, metadata={"description": "HH:MM, the citizen's time"})
    end = fields.String(required=True, metadata={"description": "HH:MM, the citizen's time"})


class PreferencesUpdate(StrictSchema):
    """Only the shape is checked here: the notifications service checks the
    values, so that every problem is named in one answer."""

    language = fields.String(metadata={"description": "en or ml"})
    channels = fields.List(
        fields.String(),
        metadata={
            "description": "outside channels wanted (sms, email); the in-app feed always has all"
        },
    )
    informational = fields.Boolean(
        metadata={"description": "progress and receipts; notices the law requires always go"}
    )
    quiet_hours = fields.Nested(QuietHours, allow_none=True)
    time_zone = fields.String(metadata={"description": "an IANA name, e.g. Asia/Dubai"})


class PreferencesResponse(Schema):
    language = fields.String(required=True)
    channels = fields.List(fields.String(), required=True)
    available_channels = fields.List(fields.String(), required=True)
    informational = fields.Boolean(required=True)
    quiet_hours = fields.Nested(QuietHours, allow_none=True)
    time_zone = fields.String(required=True)


class MessageSearchQuery(StrictSchema):
    destination = fields.String(
        load_default=None,
        validate=validate.Length(min=3, max=254),
        metadata={"description": "the whole phone number (E.164) or email address"},
    )
    file_number = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    recipient_id = fields.UUID(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(MESSAGE_STATUSES))
    channel = fields.String(
        load_default=None, validate=validate.OneOf((*NOTIFICATION_CHANNELS, "in_app"))
    )
    template = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))


class DeliveryLogEntry(Schema):
    message_id = fields.String(required=True)
    source_id = fields.String(required=True)
    channel = fields.String(required=True)
    recipient_id = fields.String(allow_none=True)
    destination = fields.String(allow_none=True, metadata={"description": "masked"})
    template = fields.String(required=True)
    language = fields.String(required=True)
    urgent = fields.Boolean(required=True)
    statutory = fields.Boolean(required=True)
    file_id = fields.String(allow_none=True)
    file_number = fields.String(allow_none=True)
    status = fields.String(required=True)
    not_before = fields.String(allow_none=True)
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True)
    provider_message_id = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)
    sent_at = fields.String(allow_none=True)
    delivered_at = fields.String(allow_none=True)


class DeliveryLog(Schema):
    messages = fields.List(fields.Nested(DeliveryLogEntry))
    next_cursor = fields.String(allow_none=True)


class ReceiptResponse(Schema):
    recorded = fields.Boolean(required=True)


class ApplicationCheckRequest(SubmitApplicationRequest):
    """An application as POST /files takes it (its service is in the path),
    but the office may be left out."""

    class Meta(StrictSchema.Meta):
        exclude = ("service_code",)

    local_body = fields.String(load_default=None, allow_none=True, validate=LOCAL_BODY_CODE)


class ApplicationCheckResponse(Schema):
    problems = fields.List(
        fields.Dict(),
        required=True,
        metadata={"description": "as a problem document lists them; empty: it may be filed"},
    )
