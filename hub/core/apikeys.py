"""Department API keys for the HTTP ingest API: the token format, its hash and what a key may do. Pure.

A key is `nh_live_` followed by 32 random bytes, urlsafe base64 (43 characters). The store keeps only its
SHA-256 hash: a token with 256 bits of entropy cannot be guessed from its hash, so the slow, salted hashes that
protect low-entropy passwords (bcrypt, scrypt, argon2) add nothing here but latency on every request.

A key belongs to one department and carries scopes:
- `events`: publish (and read the deliveries of) event types matching the key's fnmatch-style type patterns,
  e.g. `waste.*`;
- `residents`: read and replace residents' notification preferences.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Literal

TOKEN_PREFIX = "nh_live_"
TOKEN_BYTES = 32
Scope = Literal["events", "residents"]
SCOPES: tuple[Scope, ...] = ("events", "residents")

# an ASCII slug: the department name is a path segment of the CloudEvents source (/departments/<name>)
_DEPARTMENT_RE = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
_TOKEN_RE = re.compile(rf"^{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}$")
_SEGMENT_BAD_CHAR = re.compile(r"[^A-Za-z0-9._~-]")


def generate_token() -> str:
    """A new API key: shown to its owner once, never stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The stored form of a key: SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str) -> bool:
    """Cheap shape check, so garbage never reaches the store."""
    return bool(_TOKEN_RE.match(token))


def hashes_match(stored_hash: str, token: str) -> bool:
    """Compare in constant time: the database finds the row by hash, this confirms it without a timing side
    channel (string equality stops at the first differing character)."""
    return hmac.compare_digest(stored_hash.encode(), hash_token(token).encode())


def source_of(department: str) -> str:
    """The CloudEvents source of events a department publishes through the API."""
    return f"/departments/{department}"


def source_belongs_to(source: str, department: str) -> bool:
    """Whether a well-formed source (see `source_problem`) is the department's: `/departments/<department>`
    or a path under it, compared segment by segment (`/departments/sanitationx` is not sanitation's)."""
    return source.split("/")[1:3] == ["departments", department] and source_problem(source) is None


def source_problem(source: str) -> str | None:
    """Why a CloudEvents source is not one the API takes, or None. A source is an absolute path of segments
    made of RFC 3986 unreserved characters (letters, digits, `-._~`), and none is empty, `.` or `..`.
    Nothing is decoded or normalised first, so nothing can be spelled two ways: percent-encoding
    (`%2e`, `%2f`, `%252e`), backslashes, `?`, `#` and non-ASCII look-alikes (`．`, `／`) are refused."""
    if not source.startswith("/"):
        return "a source is an absolute path: /departments/<department>[/...]"
    for number, segment in enumerate(source.split("/")[1:], start=1):
        if segment in ("", ".", ".."):
            return f"segment {number} of the source is {segment!r}: no empty, '.' or '..' segments"
        if bad := _SEGMENT_BAD_CHAR.search(segment):
            char = bad.group()
            return (f"segment {number} of the source holds {char!r} (U+{ord(char):04X}): only letters, digits "
                    "and - . _ ~ are allowed" + (" (no percent-encoding)" if char == "%" else ""))
    return None


def check_department(name: str) -> str:
    if not _DEPARTMENT_RE.match(name):
        raise ValueError(
            f"department {name!r}: use a lowercase ASCII slug (a-z, 0-9, '-', 2-40 characters), e.g. sanitation"
        )
    return name


def check_patterns(patterns: Iterable[str], known_types: Iterable[str]) -> list[str]:
    """Type patterns for a new key; each must match at least one catalogue type (a typo would lock it out)."""
    known = list(known_types)
    out: list[str] = []
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern:
            continue
        if not any(fnmatchcase(t, pattern) for t in known):
            raise ValueError(f"type pattern {pattern!r} matches no event type in the catalogue")
        if pattern not in out:
            out.append(pattern)
    return out


@dataclass(frozen=True)
class ApiKey:
    """What the store knows of a key (never the key itself)."""

    key_id: str
    department: str
    type_patterns: tuple[str, ...]
    scopes: tuple[Scope, ...]
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: Scope) -> bool:
        return scope in self.scopes

    def allows_type(self, event_type: str) -> bool:
        return self.has_scope("events") and any(fnmatchcase(event_type, p) for p in self.type_patterns)
