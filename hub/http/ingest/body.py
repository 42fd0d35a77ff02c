"""Request bodies of the HTTP API, read within limits and decoded strictly, before anything else sees them.

Python's `json` module is lenient where the API must not be, and fails on some input with errors that are not
`JSONDecodeError` (a 500 unless caught): `RecursionError` for arrays nested thousands deep, `ValueError` for an
integer of more than 4,300 digits. So a body is read as follows, and any breach is a 4xx with the reason:
- its size is counted while it streams in (Content-Length or chunked alike), and reading stops at the limit;
- it must be UTF-8 (RFC 8259 section 8.1; a leading byte order mark is ignored, as the RFC allows);
- its nesting and its number literals are measured before parsing, on the text without its strings, so the
  parser never recurses deeper than `MAX_DEPTH` nor converts a number longer than `MAX_NUMBER_CHARS`;
- then `json` parses it with hooks that refuse what I-JSON (RFC 7493) leaves out: duplicate member names
  (two readers could see two different events), NaN and Infinity, numbers that overflow a double;
- and no string may hold U+0000 (PostgreSQL cannot store it) or a lone surrogate (it cannot be encoded
  again as UTF-8).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine, Iterator
from contextlib import aclosing
from itertools import accumulate
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from hub.core.errors import BodyError

MAX_DEPTH = 32
"""Arrays and objects nested deeper than this are refused (events nest four or five levels)."""
MAX_NUMBER_CHARS = 100
"""Longer number literals are refused: far beyond any amount or count, far below Python's own limits."""

_STRING = re.compile(rb'"[^"]*"')  # once escapes are gone: linear, no backtracking
_NUMBER_TOO_LONG = re.compile(rb"[-+.eE0-9]{%d,}" % (MAX_NUMBER_CHARS + 1))
_BRACKETS_ONLY = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
# U+0000 and lone surrogates can only come from \u escapes (raw, they are not valid JSON or not UTF-8)
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_FORBIDDEN_CHAR = re.compile("[\x00\ud800-\udfff]")


def structure(text: bytes) -> bytes:
    """A JSON text without its strings: brackets, numbers, literals and punctuation. Escaped backslashes go
    first, then escaped quotes, which is how JSON pairs them (the other escapes hold no quote)."""
    return _STRING.sub(b"", text.replace(b"\\\\", b"").replace(b'\\"', b""))


def nesting_depth(bare: bytes) -> int:
    """How deep arrays and objects nest in `structure(text)`. For text that is not JSON the figure may be too
    high, never lower than the depth a parser would descend to before it found the error."""
    brackets = bare.translate(None, _BRACKETS_ONLY)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _check_structure(body: bytes) -> None:
    bare = structure(body)
    if (depth := nesting_depth(bare)) > MAX_DEPTH:
        raise BodyError(f"arrays and objects nest {depth} deep: at most {MAX_DEPTH} levels are accepted",
                        "json_too_deep")
    if number := _NUMBER_TOO_LONG.search(bare):
        raise BodyError(f"a number of {len(number.group())} characters: at most {MAX_NUMBER_CHARS} are accepted",
                        "json_number_too_long")


def _refuse_constant(name: str) -> Any:
    raise BodyError(f"{name} is not a JSON number (RFC 8259): send a number or null", "json_invalid")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(f"the number {text[:40]} is out of range (it overflows a double)", "json_number_too_large")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BodyError(f"the member name {key[:40]!r} appears twice in one object: send it once",
                            "json_duplicate_key")
        out[key] = value
    return out


def _strings(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string of a parsed body (member names too), with where it is. Depth is bounded by MAX_DEPTH."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path, key
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def loads(body: bytes) -> Any:
    """The JSON value of a request body, or BodyError with the reason (and `loc`, where it is known)."""
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise BodyError(f"the body is not UTF-8 (byte {e.start}): send JSON as UTF-8", "json_encoding") from e
    _check_structure(body)
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_refuse_constant, parse_float=_float)
    except json.JSONDecodeError as e:
        raise BodyError(f"not valid JSON: {e}", "json_invalid") from e
    for path, string in _strings(value) if _SUSPECT_ESCAPE.search(text) else ():
        if found := _FORBIDDEN_CHAR.search(string):
            what = "U+0000 (NUL)" if found.group() == "\x00" else "a lone surrogate (\\ud800-\\udfff)"
            raise BodyError(f"a string holds {what}, which the hub cannot store or send", "string_unicode",
                            loc=path)
    return value


# --------------------------------------------------------------------------- FastAPI


def _declared_length(header: str) -> int:
    """Content-Length as a number; 0 when it is not one (the server refuses those; the count still holds)."""
    digits = header.strip()
    if not (digits.isascii() and digits.isdigit()):
        return 0
    return int(digits) if len(digits.lstrip("0")) <= 20 else 10**20  # never int() of thousands of digits


class LimitedJSONRequest(Request):
    """A request whose body is read with a size limit (checked as it streams in) and whose JSON is `loads`."""

    max_body_bytes: int = 1_000_000

    def _too_large(self) -> HTTPException:
        return HTTPException(413, f"the body is larger than {self.max_body_bytes} bytes")

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            if _declared_length(self.headers.get("content-length", "")) > self.max_body_bytes:
                raise self._too_large()  # refused before a byte is read
            received = bytearray()
            try:
                async with aclosing(self.stream()) as stream:
                    async for chunk in stream:
                        received += chunk
                        if len(received) > self.max_body_bytes:  # chunked, or a Content-Length that lied
                            raise self._too_large()
            except ClientDisconnect as e:
                raise HTTPException(400, "the client disconnected before the body was complete") from e
            self._body = bytes(received)
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = loads(await self.body())
            except BodyError as e:  # the shape of FastAPI's 422, which the OpenAPI declares
                raise HTTPException(422, [{"loc": ["body", *e.loc], "msg": e.reason, "type": e.type}]) from e
        return self._json


def limited_json_route(max_body_bytes: Callable[[], int]) -> type[APIRoute]:
    """A route class whose endpoints (and FastAPI's own body parsing) see a LimitedJSONRequest."""

    class LimitedJSONRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def limited(request: Request) -> Response:
                strict = LimitedJSONRequest(request.scope, request.receive)
                strict.max_body_bytes = max_body_bytes()
                return await handler(strict)

            return limited

    return LimitedJSONRoute
