"""``KimiClient``: the connection settings an adapter instance holds, made real lazily.

Both adapters need the same three things per instance: a ``Transport`` for their connection
settings (built on first use, rebuilt only when a setting changes, e.g. after ``model_copy``),
the process-wide shared credential behind it, and model capabilities from the live ``/models``
list (fetched once per process, base URL and credential by the transport) when a request
depends on them. That logic lives here once; construction does no I/O.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import clock
from .catalogue import ModelInfo, get_model_info
from .quota_pacing import DEFAULT_MAX_QUOTA_WAIT
from .secret import Secret

if TYPE_CHECKING:
    from pydantic import SecretStr

    from .quota_pacing import QuotaPacer
    from .transport import Transport
    from .usage import PlanUsage

__all__ = ["KimiClient"]

# Transports for explicit API keys, shared by every client with the same settings so the key's
# credential object, and with it the transport's per-credential `/models` cache, is one per
# process. Discovered credentials are already shared by `resolve_credential` (which also follows
# env changes), so those are not cached here. Bounded: a process rarely uses more than a few.
_SHARED: OrderedDict[tuple[Any, ...], Transport] = OrderedDict()
_SHARED_LOCK = threading.Lock()
_SHARED_MAX = 32

#: After a failed ``/models`` lookup (e.g. a gateway without that endpoint), requests use the
#: built-in catalogue for this long instead of paying a failing round trip each time.
MODELS_RETRY_AFTER = 300.0


class KimiClient:
    """Credential + transport + model-info lookup for one set of connection settings.

    Use :meth:`reuse` from an adapter: it returns the cached client while the settings are
    unchanged and a fresh one otherwise. ``api_key`` None means discovery (env, kimi-cli,
    Kimi Code; ``credentials`` pins one source), shared process-wide by ``resolve_credential``.
    """

    __slots__ = (
        "_config_key", "_live", "_models_failed_at", "_transport", "api_key", "settings"
    )

    def __init__(
        self,
        *,
        api_key: str | Secret | None = None,
        credentials: str | None = None,
        base_url: str | None = None,
        user_agent: str | None = None,
        timeout: float | None = None,
        max_retries: int = 2,
        default_headers: Mapping[str, str] | None = None,
        region: str | None = None,
        deadline: float | None = None,
        first_event_timeout: float | None = None,
        event_timeout: float | None = None,
        on_quota: str = "raise",
        max_quota_wait: float | None = DEFAULT_MAX_QUOTA_WAIT,
    ) -> None:
        self.api_key = _secret(api_key)
        self.settings = _settings(
            self.api_key,
            credentials,
            base_url,
            user_agent,
            timeout,
            max_retries,
            default_headers,
            region,
            deadline,
            first_event_timeout,
            event_timeout,
            on_quota,
            max_quota_wait,
        )
        self._transport: Transport | None = None
        self._models_failed_at: float | None = None
        self._live: list[dict[str, Any]] | None = None
        self._config_key: tuple[Any, ...] | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"KimiClient(base_url={self.settings[2]!r}, credentials={self.settings[1]!r})"

    @classmethod
    def reuse(cls, current: KimiClient | None, **settings: Any) -> KimiClient:
        """``current`` when it was built for exactly these settings (the keyword arguments of
        ``KimiClient()``), else a new client."""
        if current is not None:
            wanted = _settings(
                _secret(settings.get("api_key")),
                *(settings.get(name, default) for name, default in _SETTING_DEFAULTS),
            )
            if wanted == current.settings:
                return current
        return cls(**settings)

    @classmethod
    def for_config(
        cls, current: KimiClient | None, config: Any, *, api_key: str | Secret | SecretStr | None
    ) -> KimiClient:
        """:meth:`reuse` with the connection settings read from an adapter's fields
        (``credentials``, ``base_url``, ``user_agent``, ``timeout``, ``max_retries``,
        ``default_headers``, ``region``, ``deadline``, ``first_event_timeout``,
        ``event_timeout``, ``on_quota``, ``max_quota_wait``), so both adapters map their settings
        the same way.

        This runs on every request, so while the raw field values are unchanged (headers compared
        by content, catching in-place edits) ``current`` is returned without rebuilding the
        normalised settings."""
        headers = config.default_headers
        raw = (
            Secret(api_key) if isinstance(api_key, str) else api_key,  # a pydantic SecretStr as is
            config.credentials,
            config.base_url,
            config.user_agent,
            config.timeout,
            config.max_retries,
            tuple(headers.items()) if headers else None,
            getattr(config, "region", None),
            getattr(config, "deadline", None),
            getattr(config, "first_event_timeout", None),
            getattr(config, "event_timeout", None),
            getattr(config, "on_quota", "raise"),
            getattr(config, "max_quota_wait", DEFAULT_MAX_QUOTA_WAIT),
        )
        if current is not None and current._config_key == raw:
            return current
        reveal = getattr(api_key, "get_secret_value", None)
        client = cls.reuse(
            current,
            api_key=reveal() if reveal is not None else api_key,
            **{name: getattr(config, name, default) for name, default in _SETTING_DEFAULTS},
        )
        client._config_key = raw
        return client

    @property
    def transport(self) -> Transport:
        """The transport, created on first use (no I/O: the credential is resolved lazily)."""
        transport = self._transport
        if transport is None:
            if self.api_key is None:
                transport = self._new_transport()
            else:
                with _SHARED_LOCK:
                    transport = _SHARED.get(self.settings)
                    if transport is None:
                        transport = _SHARED[self.settings] = self._new_transport()
                        while len(_SHARED) > _SHARED_MAX:
                            _SHARED.popitem(last=False)
                    else:
                        _SHARED.move_to_end(self.settings)
            self._transport = transport
        return transport

    def _new_transport(self) -> Transport:
        from .region import resolve_endpoint
        from .sources import resolve_credential
        from .transport import Transport

        _, credentials, base_url, user_agent, timeout, max_retries, headers, region, *rest = (
            self.settings
        )
        deadline, first_event_timeout, event_timeout, on_quota, max_quota_wait = rest
        credential = resolve_credential(
            api_key=self.api_key, credentials=credentials, region=region, base_url=base_url
        )
        if region is not None and base_url is None:  # env only: region= fixes the hosts
            base_url = resolve_endpoint(region).base_url
        return Transport(
            credential=credential,
            base_url=base_url,
            user_agent=user_agent,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=dict(headers) if headers else None,
            deadline=deadline,
            first_event_timeout=first_event_timeout,
            event_timeout=event_timeout,
            on_quota=on_quota,
            max_quota_wait=max_quota_wait,
        )

    # ------------------------------------------------------------------ usage

    def get_usage(self) -> PlanUsage:
        """The plan's quota windows (``GET /usages``) for this client's credential."""
        from .usage import get_usage

        return get_usage(transport=self.transport)

    async def aget_usage(self) -> PlanUsage:
        """Async :meth:`get_usage`."""
        from .usage import aget_usage

        return await aget_usage(transport=self.transport)

    def quota_pacer(self) -> QuotaPacer:
        """A rate limiter that holds requests while this account's quota window is used up."""
        from .quota_pacing import QuotaPacer

        return QuotaPacer(self.transport, max_quota_wait=self.settings[12])

    # ------------------------------------------------------------------ model info

    def list_models(self) -> list[dict[str, Any]]:
        """``GET /models`` (cached process-wide by the transport); errors propagate."""
        return list(self.transport.list_models())

    async def alist_models(self) -> list[dict[str, Any]]:
        """Async :meth:`list_models`."""
        return list(await self.transport.alist_models())

    def live_models(self) -> list[dict[str, Any]] | None:
        """The live model list, or None when it cannot be fetched (the built-in catalogue is
        used then; the chat call itself reports auth/network errors). A failure is not retried
        for ``MODELS_RETRY_AFTER`` seconds."""
        if self._models_backoff():
            return None
        try:
            models = self.list_models()
        except Exception:
            self._models_failed_at = clock.monotonic()
            return None
        self._models_failed_at = None
        self._live = models
        return models

    async def alive_models(self) -> list[dict[str, Any]] | None:
        """Async :meth:`live_models`."""
        if self._models_backoff():
            return None
        try:
            models = await self.alist_models()
        except Exception:
            self._models_failed_at = clock.monotonic()
            return None
        self._models_failed_at = None
        self._live = models
        return models

    def _models_backoff(self) -> bool:
        failed = self._models_failed_at
        return failed is not None and clock.monotonic() - failed < MODELS_RETRY_AFTER

    def known_model_info(self, model: str) -> ModelInfo:
        """Capabilities of ``model`` without I/O: the live ``/models`` entry if this client has
        already fetched it, else the built-in catalogue."""
        return get_model_info(model, self._live)

    def model_info(self, model: str, *, live: bool) -> ModelInfo:
        """Capabilities of ``model``; with ``live`` the server's ``/models`` entry wins."""
        return get_model_info(model, self.live_models() if live else None)

    async def amodel_info(self, model: str, *, live: bool) -> ModelInfo:
        """Async :meth:`model_info`."""
        return get_model_info(model, await self.alive_models() if live else None)


def _secret(value: str | Secret | None) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)


_SETTING_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("credentials", None),
    ("base_url", None),
    ("user_agent", None),
    ("timeout", None),
    ("max_retries", 2),
    ("default_headers", None),
    ("region", None),
    ("deadline", None),
    ("first_event_timeout", None),
    ("event_timeout", None),
    ("on_quota", "raise"),
    ("max_quota_wait", DEFAULT_MAX_QUOTA_WAIT),
)


def _settings(
    api_key: Secret | None,
    credentials: str | None,
    base_url: str | None,
    user_agent: str | None,
    timeout: float | None,
    max_retries: int,
    default_headers: Mapping[str, str] | None,
    region: str | None = None,
    deadline: float | None = None,
    first_event_timeout: float | None = None,
    event_timeout: float | None = None,
    on_quota: str = "raise",
    max_quota_wait: float | None = DEFAULT_MAX_QUOTA_WAIT,
) -> tuple[Any, ...]:
    headers: Sequence[tuple[str, str]] = (
        tuple(sorted(default_headers.items())) if default_headers else ()
    )
    return (
        api_key, credentials, base_url, user_agent, timeout, max_retries, headers, region,
        deadline, first_event_timeout, event_timeout,
        on_quota, max_quota_wait,
    )
