"""One codec per wire route: request building, response parsing and stream decoding.

``openai_request`` / ``openai_response``: ``/chat/completions``. Every codec takes neutral wire
messages and yields the neutral model of :mod:`kimi_coder_auth.neutral`.
"""
