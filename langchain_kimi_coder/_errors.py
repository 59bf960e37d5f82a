"""Give kimi-coder's API errors LangChain's standard exception types as well.

A ``kimi_coder_auth.errors.RateLimitError`` raised through ``ChatKimiCoder`` is re-raised as a
subclass of both it and ``langchain_core.exceptions.ModelRateLimitError`` (and so on), so code
catching either works, and LangChain middleware that keys on the standard types (retries,
``ContextOverflowError`` summarisation) sees the right one. Nothing else about the error changes.
"""

from __future__ import annotations

from functools import lru_cache

from langchain_core import exceptions as lc

__all__ = ["translate_error"]


def _mapping() -> list[tuple[type[BaseException], type[BaseException], bool | None]]:
    from kimi_coder_auth import errors as k

    # Most specific first; (kimi type, LangChain type, is_retryable override).
    return [
        (k.ContextTooLongError, lc.ContextOverflowError, None),
        (k.BadRequestError, lc.ModelInvalidRequestError, None),
        (k.AuthenticationError, lc.ModelAuthenticationError, None),
        (k.PermissionDeniedError, lc.ModelPermissionDeniedError, None),
        (k.NotFoundError, lc.ModelNotFoundError, None),
        (k.QuotaExceededError, lc.ModelRateLimitError, False),
        (k.RateLimitError, lc.ModelRateLimitError, None),
        (k.ServerError, lc.ModelAPIError, None),
        (k.StreamError, lc.ModelAPIError, None),
        (k.MalformedResponseError, lc.ModelAPIError, None),
        (k.ResponseTooLargeError, lc.ModelAPIError, False),
        (k.APITimeoutError, lc.ModelTimeoutError, None),
        (k.APIConnectionError, lc.ModelConnectionError, None),
    ]


@lru_cache(maxsize=64)
def _dual_class(kimi_cls: type[BaseException]) -> type[BaseException] | None:
    for kimi_base, lc_cls, retryable in _mapping():
        if issubclass(kimi_cls, kimi_base):
            attrs: dict[str, object] = {
                "__module__": kimi_cls.__module__,
                "__qualname__": kimi_cls.__qualname__,
                "__doc__": kimi_cls.__doc__,
            }
            if retryable is not None:
                attrs["is_retryable"] = retryable
            attrs["__reduce__"] = _reduce
            return type(kimi_cls.__name__, (kimi_cls, lc_cls), attrs)
    return None


def _reduce(self: BaseException) -> tuple[object, ...]:
    # The dual class is made at runtime, so pickle it as "rebuild from the kimi class".
    kimi_cls = next(c for c in type(self).__mro__[1:] if c.__module__.startswith("kimi_coder_auth"))
    return (_rebuild, (kimi_cls, self.args, dict(self.__dict__)))


def _rebuild(kimi_cls: type[BaseException], args: tuple[object, ...], state: dict) -> BaseException:
    exc = kimi_cls.__new__(kimi_cls)
    exc.args = args
    exc.__dict__.update(state)
    return translate_error(exc)


def translate_error(exc: BaseException) -> BaseException:
    """Return ``exc`` as an instance that is also the matching LangChain exception type."""
    if isinstance(exc, lc.ModelError):
        return exc
    try:
        from kimi_coder_auth.errors import KimiCoderError
    except ImportError:  # pragma: no cover
        return exc
    if not isinstance(exc, KimiCoderError):
        return exc
    cls = _dual_class(type(exc))
    if cls is None:
        return exc
    new = cls.__new__(cls)
    new.__dict__.update(exc.__dict__)
    new.args = exc.args
    new.__traceback__ = exc.__traceback__
    new.__context__ = exc.__context__
    new.__suppress_context__ = exc.__suppress_context__
    return new
