"""Secrets taken out of what the CLI prints about a failure.

Errors from libraries under the store (aiohttp, fsspec, requests) quote the URL they failed on, and a signed
Swift URL carries its signature in the query; a header dump may carry a token. The CLI prints every failure
through :func:`redacted`, so a traceback a user pastes into a ticket holds no credential.
"""

from __future__ import annotations

import re

_PATTERNS = (
    # TempURL signatures (temp_url_sig) and any other query parameter named like a credential.
    (re.compile(r"(?i)([?&](?:temp_url_sig|signature|sig|token|access_token|api_key|apikey|key)=)[^&#\s'\"<>]+"),
     r"\1<redacted>"),
    (re.compile(r"(?i)\b(authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|basic|token)?\s*)[^\s'\",}]+"), r"\1<redacted>"),
    (re.compile(r"(?i)\b(x-(?:auth|subject|storage)-token['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"), r"\1<redacted>"),
    (re.compile(r"(?i)\b(password['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"), r"\1<redacted>"),
)


def redacted(text: str) -> str:
    """``text`` with signed-URL signatures, bearer tokens, auth headers and passwords replaced by ``<redacted>``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
