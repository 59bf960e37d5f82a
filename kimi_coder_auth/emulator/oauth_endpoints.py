"""The emulator's OAuth endpoints: RFC 8628 device authorization and polling, rotating refresh grants.

The token state (issued access/refresh tokens, pending device codes, the scripted poll answers)
lives on the `Emulator`, whose test controls (`script_device`, `revoke_refresh_tokens`, ...)
change it; these handlers only read and update it under ``emu._lock``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from .. import clock

if TYPE_CHECKING:
    from .server import Emulator, _Handler

__all__ = ["CLIENT_ID", "DEVICE_STEPS", "handle_device_authorization", "handle_token"]

CLIENT_ID = "17e5f671-d194-4dfb-9706-5516cb48c098"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_STEPS = ("authorization_pending", "slow_down", "access_denied", "expired_token", "approve")
_DEVICE_DESCRIPTIONS = {
    "authorization_pending": "The authorization request is still pending.",
    "slow_down": "Polling too frequently; increase the interval by 5 seconds.",
    "access_denied": "The user denied the authorization request.",
    "expired_token": "The device code has expired; request a new one.",
}


def _oauth_error(emu: Emulator, h: _Handler, status: int, error: str, description: str, trace_id: str) -> None:
    emu._send_json(h, status, {"error": error, "error_description": description}, trace_id)


def _form(emu: Emulator, h: _Handler, body: Any, trace_id: str) -> dict[str, Any] | None:
    """The OAuth endpoints take application/x-www-form-urlencoded only (like the real host)."""
    if "application/x-www-form-urlencoded" not in (h.headers.get("Content-Type") or ""):
        _oauth_error(emu, h, 400, "invalid_request",
                     "Send the parameters as application/x-www-form-urlencoded.", trace_id)
        return None
    return body if isinstance(body, dict) else {}


def handle_device_authorization(emu: Emulator, h: _Handler, body: Any, trace_id: str) -> None:
    """Answer ``POST /api/oauth/device_authorization``: a fresh user code and device code."""
    emu._count("device_authorization")
    if emu._apply_fault(h, emu._take_fault("device_authorization"), trace_id, oauth=True):
        return
    form = _form(emu, h, body, trace_id)
    if form is None:
        return
    if form.get("client_id") != CLIENT_ID:
        _oauth_error(emu, h, 400, "invalid_client", "Unknown or missing client_id.", trace_id)
        return
    alphabet = "BCDFGHJKLMNPQRSTVWXZ"
    user_code = "".join(secrets.choice(alphabet) for _ in range(4)) + "-" + "".join(
        secrets.choice(alphabet) for _ in range(4)
    )
    device_code = "emu-dc-" + secrets.token_urlsafe(18)
    with emu._lock:
        emu._devices[device_code] = {
            "expires_at": clock.now() + emu.device_expires_in, "done": False, "user_code": user_code,
        }
    verify = f"{emu.oauth_host}/verify"
    emu._send_json(h, 200, {
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": verify,
        "verification_uri_complete": f"{verify}?user_code={user_code}",
        "expires_in": emu.device_expires_in,
        "interval": emu.device_interval,
    }, trace_id)


def handle_token(emu: Emulator, h: _Handler, body: Any, trace_id: str) -> None:
    """Answer ``POST /api/oauth/token``: the device-code grant (polls) or a refresh (rotates)."""
    form = _form(emu, h, body, trace_id)
    if form is None:
        return
    grant = form.get("grant_type")
    if grant == "refresh_token":
        _refresh_grant(emu, h, form, trace_id)
    elif grant == DEVICE_GRANT:
        _device_grant(emu, h, form, trace_id)
    else:
        _oauth_error(emu, h, 400, "unsupported_grant_type", f"Unsupported grant_type {grant!r}.", trace_id)


def _device_grant(emu: Emulator, h: _Handler, form: dict[str, Any], trace_id: str) -> None:
    emu._count("device_token")
    if emu._apply_fault(h, emu._take_fault("device_token"), trace_id, oauth=True):
        return
    if form.get("client_id") != CLIENT_ID:
        _oauth_error(emu, h, 400, "invalid_client", "Unknown or missing client_id.", trace_id)
        return
    code = form.get("device_code") or ""
    with emu._lock:
        device = emu._devices.get(code)
        if device is None or device["done"]:
            step = "invalid"
        elif clock.now() >= device["expires_at"]:
            step = "expired_token"
        else:
            step = emu._device_script.popleft() if emu._device_script else "approve"
        if step in ("approve", "access_denied", "expired_token") and device is not None:
            device["done"] = True
    if step == "invalid":
        _oauth_error(emu, h, 400, "invalid_grant", "The device code is invalid, expired or already used.", trace_id)
    elif step == "approve":
        emu._send_json(h, 200, emu.issue_token(), trace_id)
    else:
        _oauth_error(emu, h, 400, step, _DEVICE_DESCRIPTIONS[step], trace_id)


def _refresh_grant(emu: Emulator, h: _Handler, form: dict[str, Any], trace_id: str) -> None:
    emu._count("refresh")
    if emu._apply_fault(h, emu._take_fault("refresh"), trace_id, oauth=True):
        return
    if form.get("client_id") != CLIENT_ID:
        _oauth_error(emu, h, 400, "invalid_client", "Unknown or missing client_id.", trace_id)
        return
    token = form.get("refresh_token") or ""
    with emu._lock:
        ok = token in emu._refresh
        if ok:
            emu._refresh.discard(token)
            emu._used_refresh.add(token)
    if not ok:
        emu._count("refresh_rejected")
        _oauth_error(emu, h, 401, "invalid_grant", "The refresh token is invalid, expired or was already used.", trace_id)
        return
    emu._send_json(h, 200, emu.issue_token(), trace_id)
