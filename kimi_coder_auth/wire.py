"""The wire mapping both adapters share, re-exported from the modules that own each job.

Adapters convert framework messages to *wire messages* (OpenAI chat dicts plus Kimi's
``reasoning_content``); :mod:`.neutral` holds the protocol-neutral results, :mod:`.request_policy`
the rules both routes share, :mod:`.images` image inlining, and :mod:`.codecs` each route's
encoding and decoding.
"""

from __future__ import annotations

from .codecs.openai_request import (
    DEFAULT_REASONING_PLACEHOLDER,
    abuild_request,
    build_request,
    prepare_messages,
)
from .codecs.openai_response import StreamAccumulator, extract_usage, parse_completion
from .images import DEFAULT_MAX_IMAGE_BYTES, _cache, to_data_url
from .neutral import (
    BuiltRequest,
    Completion,
    StreamDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    parse_tool_arguments,
    tool_call_dict,
    tool_calls_to_dicts,
    usage_counts,
)
from .request_policy import (
    FORCED_TOOL_POLICIES,
    SAMPLING_PARAMS,
    is_forced_choice,
    map_tool_choice,
    needs_live_model_info,
    normalize_response_format,
    thinking_on,
    thinking_param,
)

__all__ = [
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_REASONING_PLACEHOLDER",
    "FORCED_TOOL_POLICIES",
    "SAMPLING_PARAMS",
    "BuiltRequest",
    "Completion",
    "StreamAccumulator",
    "StreamDelta",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "_cache",
    "abuild_request",
    "build_request",
    "extract_usage",
    "is_forced_choice",
    "map_tool_choice",
    "needs_live_model_info",
    "normalize_response_format",
    "parse_completion",
    "parse_tool_arguments",
    "prepare_messages",
    "thinking_on",
    "thinking_param",
    "to_data_url",
    "tool_call_dict",
    "tool_calls_to_dicts",
    "usage_counts",
]
