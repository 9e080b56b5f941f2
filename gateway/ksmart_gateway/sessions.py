"""The gateway's sign-in endpoints: staff by password, citizens by a
one-time code, and the refreshing and ending of a session. A mixin of
GatewayService (service.py), which holds the identity proxy they call."""

from __future__ import annotations

from werkzeug.wrappers import Request

from ksmart_common import config
from ksmart_common.domain.roles import ADMINISTRATOR
from ksmart_common.rpc import call
from ksmart_gateway import schemas
from ksmart_gateway.api import PREFIX, PUBLIC, ApiResult, api
from ksmart_gateway.client_address import client_address, trusted_proxies
from ksmart_gateway.files import FILE_READERS

ANY_USER = (*FILE_READERS, ADMINISTRATOR)

# Read at start, so a setting that is not understood stops the gateway.
TRUSTED_PROXIES = trusted_proxies(config.env("KSMART_TRUSTED_PROXY", ""))


def caller_rate_limit_key(request: Request) -> str:
    """Whom the identity service's limits on sign-in codes count: the
    caller's address, behind the proxies we trust (ksmart_gateway.client_address)."""
    return client_address(
        request.remote_addr, request.headers.get("X-Forwarded-For"), TRUSTED_PROXIES
    )


class SessionEndpoints:
    @api(
        "POST",
        f"{PREFIX}/auth/token",
        summary="Sign in with a username and password",
        allowed_roles=PUBLIC,
        body=schemas.TokenRequest,
        response=schemas.TokenResponse,
        tag="auth",
        checks_credentials=True,
    )
    def token(self, request, principal, body):
        return ApiResult(call(self.identity.login, body["username"], body["password"]))

    @api(
        "POST",
        f"{PREFIX}/auth/otp",
        summary="A citizen asks for a one-time sign-in code, sent by SMS to a phone number "
        "of any country (E.164) or by email; the first sign-in registers them",
        allowed_roles=PUBLIC,
        body=schemas.CodeRequest,
        response=schemas.CodeResponse,
        status=202,
        tag="auth",
    )
    def request_code(self, request, principal, body):
        challenge = call(
            self.identity.request_code,
            body["phone"],
            body["email"],
            caller_rate_limit_key(request),
            body["language"],
        )
        return ApiResult(challenge, status=202)

    @api(
        "POST",
        f"{PREFIX}/auth/otp/verify",
        summary="Sign in with the one-time code: single use, 15 minutes, 5 tries",
        allowed_roles=PUBLIC,
        body=schemas.CodeSignInRequest,
        response=schemas.TokenResponse,
        tag="auth",
        checks_credentials=True,
    )
    def sign_in_with_code(self, request, principal, body):
        return ApiResult(call(self.identity.sign_in_with_code, body["challenge_id"], body["code"]))

    @api(
        "POST",
        f"{PREFIX}/auth/refresh",
        summary="New tokens for a session; the refresh token is replaced, and an old one "
        "used again ends the session",
        allowed_roles=PUBLIC,
        body=schemas.RefreshRequest,
        response=schemas.TokenResponse,
        tag="auth",
        checks_credentials=True,
    )
    def refresh(self, request, principal, body):
        return ApiResult(call(self.identity.refresh, body["refresh_token"]))

    @api(
        "POST",
        f"{PREFIX}/auth/logout",
        summary="End the caller's session: its access and refresh tokens stop working",
        allowed_roles=ANY_USER,
        response=schemas.LogoutResponse,
        tag="auth",
    )
    def logout(self, request, principal):
        if principal.session_id is None:
            return ApiResult({"ended": False})
        return ApiResult(call(self.identity.logout, principal.session_id))

    @api(
        "GET",
        f"{PREFIX}/me",
        summary="Who the caller is: user id, name, roles, local body and wards, as the token says",
        allowed_roles=ANY_USER,
        response=schemas.CallerResponse,
        tag="auth",
    )
    def me(self, request, principal):
        return ApiResult(
            {
                "user_id": principal.user_id,
                "username": principal.username,
                "roles": list(principal.roles),
                "local_body": principal.local_body,
                "wards": list(principal.wards),
            }
        )
