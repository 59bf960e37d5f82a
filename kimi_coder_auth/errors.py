"""Typed exceptions for every failure the package reports.

Every message says what went wrong and what to do next. No exception ever carries a token,
a refresh token, a device code or a raw response body from the token endpoint: callers pass
field *names* and server-provided human messages only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AccessTerminatedError",
    "AuthenticationError",
    "BadRequestError",
    "ConcurrencyLimitError",
    "ContextTooLongError",
    "CredentialBusy",
    "CredentialError",
    "CredentialFileCorrupt",
    "CredentialStoreUnwritable",
    "CredentialsUnavailable",
    "DeviceAccessDenied",
    "DeviceCodeExpired",
    "DeviceLoginError",
    "DeviceLoginTimeout",
    "InsecureTransportError",
    "KimiCoderError",
    "MalformedResponseError",
    "NotFoundError",
    "OAuthConnectionError",
    "OAuthError",
    "ParameterError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "ReauthRequired",
    "RegionError",
    "ResponseTooLargeError",
    "ServerError",
    "SourceAttempt",
    "StreamError",
    "StreamInterruptedError",
    "UserAgentRejectedError",
]

LOGIN_HINT = (
    "Run `kimi-coder login` (or `kimi login` / Kimi Code's `/login`), "
    "or set KIMI_CODER_API_KEY to a Kimi Code API key."
)


class KimiCoderError(Exception):
    """Base class of every error raised by kimi-coder."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        if hint is not None:
            self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        if self.hint and self.hint not in self.message:
            return f"{self.message}\n{self.hint}"
        return self.message


# --------------------------------------------------------------------------- credentials


class CredentialError(KimiCoderError):
    """A credential could not be found, read, refreshed or stored."""


@dataclass(frozen=True)
class SourceAttempt:
    """One discovery source and why it was not used (never contains a secret)."""

    source: str
    reason: str
    location: str | None = None

    def __str__(self) -> str:
        where = f" ({self.location})" if self.location else ""
        return f"{self.source}{where}: {self.reason}"


class CredentialsUnavailable(CredentialError):
    """No discovery source produced a usable credential; lists every source and why."""

    hint = LOGIN_HINT

    def __init__(
        self,
        attempts: Sequence[SourceAttempt],
        *,
        message: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.attempts = list(attempts)
        lines = [message or "No usable Kimi Coding credentials were found. Sources tried:"]
        lines.extend(f"  - {a}" for a in self.attempts)
        super().__init__("\n".join(lines), hint=hint)


class CredentialFileCorrupt(CredentialError):
    """A credential file exists but cannot be parsed; it is reported and left untouched."""

    def __init__(self, path: str, problem: str, *, hint: str | None = None) -> None:
        self.path = path
        self.problem = problem
        super().__init__(
            f"The credential file {path} is unreadable: {problem}. It was left untouched.",
            hint=hint or f"Fix or remove {path} yourself, then run `kimi-coder login`.",
        )


class CredentialStoreUnwritable(CredentialError):
    """A credential file cannot be written (read-only or full disk, folder not writable)."""

    def __init__(
        self,
        path: str,
        os_error: str,
        *,
        errno: int | None = None,
        message: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.os_error = os_error
        self.errno = errno
        folder = os.path.dirname(path) or "."
        super().__init__(
            message or f"Cannot write the credential file {path}: {os_error}.",
            hint=hint
            or f"Free disk space or make the folder {folder} writable for this user, then retry.",
        )


class ReauthRequired(CredentialError):
    """The stored login was rejected (revoked, rotated away, or tombstoned): log in again."""

    hint = LOGIN_HINT

    def __init__(self, message: str, *, source: str | None = None, hint: str | None = None) -> None:
        self.source = source
        super().__init__(message, hint=hint)


class CredentialBusy(CredentialError):
    """Another process held the credential lock longer than we wait; retrying later is safe."""

    hint = "Another Kimi client is refreshing the login; retry in a few seconds."


class OAuthError(CredentialError):
    """The OAuth server answered with an error we cannot handle (not a rejected grant)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.error = error
        super().__init__(message, hint=hint)


class OAuthConnectionError(OAuthError):
    """The OAuth server could not be reached or timed out (no answer at all)."""


# --------------------------------------------------------------------------- device login


class DeviceLoginError(CredentialError):
    """The device login (RFC 8628) ended without a token."""

    hint = "Run `kimi-coder login` again."


class DeviceAccessDenied(DeviceLoginError):
    """The user declined the authorization request in the browser."""


class DeviceCodeExpired(DeviceLoginError):
    """The device code expired before the user approved it."""


class DeviceLoginTimeout(DeviceLoginError):
    """Polling reached its deadline while the server still said authorization_pending."""


# --------------------------------------------------------------------------- transport


class RegionError(KimiCoderError, ValueError):
    """An unknown or contradictory region setting (`region=`, `KIMI_CODER_REGION`, `--region`)."""


class InsecureTransportError(KimiCoderError):
    """A bearer token would have been sent over plain http to a non-loopback host."""

    hint = "Use an https:// base URL; plain http is allowed only for 127.0.0.1/localhost."


class APIConnectionError(KimiCoderError):
    """The Coding API could not be reached (DNS, refused, reset, TLS)."""

    hint = "Check your network connection and the base URL (KIMI_CODE_BASE_URL)."


class APITimeoutError(APIConnectionError):
    """The request timed out."""

    hint = "Increase `timeout=`; thinking turns can take minutes."


class StreamInterruptedError(APIConnectionError):
    """The connection closed before the stream's `[DONE]`: the answer is incomplete."""

    hint = "The partial answer was discarded; retry the request."


class APIError(KimiCoderError):
    """The Coding API answered with an error status or an error event."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        trace_id: str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.error_type = error_type
        self.trace_id = trace_id
        self.request_id = request_id
        super().__init__(message, hint=hint)

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(str(self.status))
        if self.error_type:
            parts.append(self.error_type)
        head = f"[{' '.join(parts)}] " if parts else ""
        text = f"{head}{self.message}"
        if self.trace_id:
            text += f" (x-trace-id: {self.trace_id})"
        if self.hint and self.hint not in self.message:
            text += f"\n{self.hint}"
        return text


class StreamError(APIError):
    """The server sent an error event in the middle of a stream."""


class ResponseTooLargeError(APIError):
    """The answer (a body, a stream, or one SSE event) exceeded its size cap; never retried."""

    hint = (
        "If such a large answer is expected, raise the cap (max_response_bytes= / "
        "max_stream_bytes= / max_event_bytes= on Transport, or KIMI_CODER_MAX_RESPONSE_BYTES, "
        "KIMI_CODER_MAX_STREAM_BYTES, KIMI_CODER_MAX_EVENT_BYTES); otherwise check the base URL."
    )


class MalformedResponseError(APIError):
    """A 2xx answer (body or stream chunk) that is not a well-formed chat completion."""

    hint = "Check that the base URL points at the Kimi Coding API (…/coding/v1), then retry."


class BadRequestError(APIError):
    """400: the request was rejected as invalid."""


class ContextTooLongError(BadRequestError):
    """400: the conversation is longer than the model's context window."""

    hint = "Shorten the conversation or lower max_tokens."


class AuthenticationError(APIError):
    """401: the token was rejected even after one refresh."""

    hint = LOGIN_HINT


class PermissionDeniedError(APIError):
    """403 other than the User-Agent gate or a terminated account."""


class UserAgentRejectedError(PermissionDeniedError):
    """403 from the Coding API's User-Agent gate."""

    hint = (
        "The Kimi Coding API only admits requests whose User-Agent belongs to a coding agent it "
        "recognises. kimi-coder sends its own honest User-Agent by default. You may set another "
        "with `user_agent=` or KIMI_CODER_USER_AGENT, but Moonshot's guidelines treat a forged "
        "client identity as a violation that can suspend your membership; ask code@moonshot.ai "
        "to admit this client instead."
    )


class AccessTerminatedError(PermissionDeniedError):
    """403: the account's access was terminated by Moonshot."""

    hint = "Review Kimi's Community Guidelines or contact support@moonshot.cn; retrying will not help."


class NotFoundError(APIError):
    """404: unknown model or endpoint."""

    hint = "Check the model name (`kimi-coder models`) and the base URL."


class RateLimitError(APIError):
    """429: too many requests or engine overloaded; retried with backoff."""

    hint = "Wait a moment and try again, or raise max_retries."

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ConcurrencyLimitError(RateLimitError):
    """403 "concurrent request limit": too many requests in flight; retried with a short backoff."""

    hint = "Lower the number of parallel requests (the plan caps concurrent requests), or raise max_retries."


#: quota windows a `QuotaExceededError` can name
QUOTA_WINDOW_LABELS = {
    "5h": "5-hour window",
    "7d": "weekly (7-day) window",
    "month": "monthly billing cycle",
    "5h-or-month": "5-hour window or monthly billing cycle (the service's wording fits both)",
}
USAGE_HINT = "See the windows with `kimi-coder usage` (Python: `get_usage()`)."


class QuotaExceededError(APIError):
    """A quota is used up (a 403 window, a 429 balance) or the membership expired; never retried.

    ``window``: ``"5h"``, ``"7d"``, ``"month"``, ``"5h-or-month"`` (the "billing cycle" wording
    the service also sends for the 5-hour cap) or None (balance, membership). ``reset_at``:
    epoch seconds when the window resets, where the body, headers or ``/usages`` said so.
    """

    hint = "Check `kimi-coder usage` (Python: `get_usage()`) for when the quota resets, or renew the plan."

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        window: str | None = None,
        reset_at: float | None = None,
        **kwargs: object,
    ) -> None:
        self.retry_after = retry_after
        self.window = window
        self.reset_at = reset_at
        super().__init__(message, **kwargs)  # type: ignore[arg-type]

    @property
    def window_label(self) -> str | None:
        """The window in words ("weekly (7-day) window"), or None."""
        return QUOTA_WINDOW_LABELS.get(self.window) if self.window else None

    def __str__(self) -> str:
        text = super().__str__()
        extra = []
        if self.window:
            extra.append(f"Quota window: {self.window_label or self.window}.")
        if self.reset_at is not None:
            import datetime as _dt

            when = _dt.datetime.fromtimestamp(self.reset_at, _dt.timezone.utc)
            extra.append(f"It resets at {when:%Y-%m-%d %H:%M} UTC.")
        return "\n".join([text, *extra]) if extra else text


class ServerError(APIError):
    """5xx from the Coding API; retried with backoff."""

    hint = "Kimi's service had a problem; retry later."


# --------------------------------------------------------------------------- request building


class ImageFetchError(KimiCoderError, ValueError):
    """An image for a message could not be fetched, read or recognised, so nothing was sent."""

    hint = (
        "Pass the image as bytes, a local path or a data: URL, or use a reachable http(s) URL "
        "that serves an image (png, jpeg, gif, webp) within the size limit."
    )


__all__.append("ImageFetchError")


_PARAM_REF = re.compile(r"\{([a-z_]+)(?:=([^{}]*))?\}")


class ParameterError(KimiCoderError, ValueError):
    """A setting that cannot apply, naming the parameters in the words of the caller's interface.

    The message is a template: ``{effort}`` names a parameter and ``{thinking=False}`` names a
    setting. ``str()`` renders Python keywords (``effort=``, ``thinking=False``); a CLI calls
    :meth:`render` with its own flag names (``--effort``, ``--no-thinking``). ``params`` lists the
    parameters the error is about.
    """

    def __init__(self, template: str, *, hint: str | None = None) -> None:
        self.template = template
        self.params: tuple[str, ...] = tuple(dict.fromkeys(m.group(1) for m in _PARAM_REF.finditer(template)))
        super().__init__(self.render(), hint=hint)

    def render(self, flags: Mapping[str, str] | None = None) -> str:
        """The message with parameters as Python keywords, or as ``flags[name]`` (e.g. a CLI's
        ``{"effort": "--effort"}``; a boolean flag renders False as ``--no-<flag>``)."""

        def sub(m: re.Match[str]) -> str:
            name, value = m.group(1), m.group(2)
            flag = flags.get(name) if flags else None
            if flag is None:
                return f"{name}={value}" if value is not None else f"{name}="
            if value is None or value == "True":
                return flag
            if value == "False":
                return "--no-" + flag.removeprefix("--")
            return f"{flag} {value.strip(chr(39))}"

        text = _PARAM_REF.sub(sub, self.template)
        if flags is not None and self.hint and self.hint not in text:
            return f"{text}\n{self.hint}"
        return text
