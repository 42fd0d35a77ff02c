"""The residents' signed links (`HUB_PUBLIC_URL/r/<token>`): who the link is for, until when, under which key.
Pure: no I/O, the clock is passed in.

A token is `base64url(key id | expiry | tag | sealed resident id)`, built from HMAC-SHA256 alone (the standard
library; no cipher package): a deterministic authenticated encryption in the SIV style.

- `tag` = HMAC(mac key, key id | expiry | resident id), cut to 12 bytes (96 bits): it authenticates the whole
  token, and doubles as the synthetic IV.
- `sealed` = resident id XOR HMAC(enc key, tag | counter) keystream: the id is not in the clear (the link passes
  through SMS gateways, mail servers and browser histories), and no table of issued links is needed to read it.
- mac key and enc key are derived from the configured link key (HMAC(key, "mac"), HMAC(key, "enc")).
- key id: the first byte of SHA-256 of the key, so a verifier knows which keys to try. Rotation: the first key
  of `HUB_LINK_KEYS` signs, all of them verify; dropping a key revokes every link it signed.

For `R-0001` the token is 31 characters; the link is `len(HUB_PUBLIC_URL) + 3 + 31` ASCII bytes, which the
SMS/LMS byte count (EUC-KR) counts like the rest of the text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from hub.settings import Settings

TAG_BYTES = 12
HEAD = struct.Struct(">BI")  # key id, expiry (epoch seconds, unsigned: good until 2106)
MIN_KEY_CHARS = 32
MAX_ID_BYTES = 64 * 4  # a resident id is at most 64 characters of UTF-8
LINK_PATH = "/r/"


class LinkKey:
    """One configured key, with the two keys derived from it."""

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_KEY_CHARS:
            raise ValueError(f"a link key must be at least {MIN_KEY_CHARS} characters "
                             "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        raw = secret.encode()
        self.kid = hashlib.sha256(raw).digest()[0]
        self._mac = hmac.new(raw, b"notice-hub link mac", hashlib.sha256).digest()
        self._enc = hmac.new(raw, b"notice-hub link enc", hashlib.sha256).digest()

    def tag(self, head: bytes, resident_id: bytes) -> bytes:
        return hmac.new(self._mac, head + resident_id, hashlib.sha256).digest()[:TAG_BYTES]

    def stream(self, tag: bytes, size: int) -> bytes:
        blocks = (hmac.new(self._enc, tag + bytes([i]), hashlib.sha256).digest() for i in range((size + 31) // 32))
        return b"".join(blocks)[:size]


@dataclass(frozen=True)
class LinkCheck:
    """What a token says. `resident_id` is set only for an authentic token (valid or expired): a tampered one
    names nobody."""

    state: Literal["valid", "expired", "invalid"]
    resident_id: str | None = None
    expires_at: datetime | None = None

    @property
    def valid(self) -> bool:
        return self.state == "valid"


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    if not text or len(text) > 2 * MAX_ID_BYTES or not text.isascii() or "=" in text:
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64(data) == text else None  # one spelling per token: unused bits changed are tampering too


class LinkSigner:
    """Issues and checks tokens under a list of keys: the first signs, all verify."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("no link keys: set HUB_LINK_KEYS")
        self.keys = [LinkKey(s) for s in secrets]

    def issue(self, resident_id: str, expires_at: datetime) -> str:
        raw = resident_id.encode()
        if not raw or len(raw) > MAX_ID_BYTES:
            raise ValueError("a resident id is 1 to 64 characters")
        key = self.keys[0]
        head = HEAD.pack(key.kid, int(expires_at.timestamp()))
        tag = key.tag(head, raw)
        return _b64(head + tag + _xor(raw, key.stream(tag, len(raw))))

    def check(self, token: str, now: datetime) -> LinkCheck:
        data = _unb64(token)
        if data is None or len(data) <= HEAD.size + TAG_BYTES:
            return LinkCheck("invalid")
        head, tag, sealed = data[:HEAD.size], data[HEAD.size:HEAD.size + TAG_BYTES], data[HEAD.size + TAG_BYTES:]
        kid, expiry = HEAD.unpack(head)
        for key in self.keys:
            if key.kid != kid:
                continue
            raw = _xor(sealed, key.stream(tag, len(sealed)))
            if not hmac.compare_digest(key.tag(head, raw), tag):
                continue
            try:
                resident_id = raw.decode()
            except UnicodeDecodeError:  # authentic bytes we never issue: treat as not ours
                return LinkCheck("invalid")
            expires_at = datetime.fromtimestamp(expiry, UTC)
            return LinkCheck("valid" if now < expires_at else "expired", resident_id, expires_at)
        return LinkCheck("invalid")


@dataclass(frozen=True)
class LinkMaker:
    """Makes a resident's link under the public base URL, valid for `ttl` from the clock's now."""

    signer: LinkSigner
    base_url: str
    ttl: timedelta
    clock: Callable[[], datetime]

    def url(self, resident_id: str) -> str | None:
        """The resident's link; None for a recipient the directory does not know (a `tel:` audience entry), who
        has no page to go to."""
        if resident_id.startswith("tel:"):
            return None
        return self.base_url.rstrip("/") + LINK_PATH + self.signer.issue(resident_id, self.clock() + self.ttl)

    @classmethod
    def of(cls, settings: Settings, clock: Callable[[], datetime]) -> LinkMaker | None:
        """Links when HUB_PUBLIC_URL and HUB_LINK_KEYS are both set; None otherwise (messages then name
        HUB_ADVERTISING_OPTOUT_URL as before)."""
        if not settings.public_url or not settings.link_keys:
            return None
        signer = LinkSigner([k.get_secret_value() for k in settings.link_keys])
        return cls(signer, settings.public_url, timedelta(days=settings.link_ttl_days), clock)
