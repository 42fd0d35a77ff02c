"""Personal data out of logs: the masks, `redact`, and the logging filter as a last line of defence."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from hub.core.masking import RedactingFilter, install_redaction, mask_address, mask_email, mask_phone, redact

PHONE, EMAIL = "010-1234-5678", "hong.gildong@example.org"
#: what must never reach a log, whatever the format the number or address was written in
SECRETS = ("1234-5678", "12345678", "1234 5678", "hong.gildong@", "ong.gildong")


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("01012345678", "010-****-5678"),
        ("010-1234-5678", "010-****-5678"),
        ("010 1234 5678", "010-****-5678"),
        ("0111234567", "011-****-4567"),
        ("1234", "****"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_phone(phone: str | None, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("hong@example.org", "h***@example.org"),
        ("h@example.org", "h***@example.org"),
        (EMAIL, "h***@example.org"),
        ("not-an-address", "***"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_email(email: str | None, masked: str) -> None:
    assert mask_email(email) == masked


@pytest.mark.parametrize(
    ("channel", "address", "masked"),
    [("email", EMAIL, "h***@example.org"), ("sms", "01012345678", "010-****-5678"),
     ("kakao", "01012345678", "010-****-5678")],
)  # fmt: skip
def test_mask_address_by_channel(channel: str, address: str, masked: str) -> None:
    assert mask_address(channel, address) == masked


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("to 01012345678", "to 010-****-5678"),
        ("to 010-1234-5678.", "to 010-****-5678."),
        ("to 010 1234 5678", "to 010-****-5678"),
        ("(011-123-4567)", "(011-****-4567)"),
        (f"mail {EMAIL} now", "mail h***@example.org now"),
        (f"{PHONE},{EMAIL}", "010-****-5678,h***@example.org"),
        ("tracking 6070123456789", "tracking 6070123456789"),
        ("meter WM-31-004512, county 031-770-2114", "meter WM-31-004512, county 031-770-2114"),
        ("nothing personal", "nothing personal"),
    ],
)
def test_redact(text: str, redacted: str) -> None:
    assert redact(text) == redacted


@pytest.mark.parametrize("phone", ["+821012345678", "+82 10-1234-5678", "+82-10-1234-5678"])
def test_redact_masks_international_numbers_the_hub_accepts(phone: str) -> None:
    """Recipient accepts +82 numbers, so they can reach a log in that form too."""
    out = redact(f"to {phone}")

    assert not any(secret in out for secret in SECRETS), out


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger with a handler of our own that carries the filter, as `install_redaction` sets it up."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.masking")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("message", "args"),
    [
        ("send to %s", (PHONE,)),
        ("send to %s", ("01012345678",)),
        ("send to %s", (EMAIL,)),
        ("recipient %r", ({"phone": "01012345678", "email": EMAIL},)),
        (f"send to {PHONE} and {EMAIL}", ()),
        ("send to %(to)s", ({"to": PHONE},)),
    ],
)
def test_the_filter_keeps_numbers_and_addresses_out_of_the_log(logged: tuple[logging.Logger, io.StringIO],
                                                               message: str, args: tuple[Any, ...]) -> None:  # fmt: skip
    logger, stream = logged

    logger.info(message, *args)

    out = stream.getvalue()
    assert out.startswith("INFO ")
    assert "010-****-5678" in out or "h***@example.org" in out
    assert not any(secret in out for secret in SECRETS), out


def test_the_filter_also_covers_exception_text(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged

    try:
        raise ValueError(f"gateway refused {PHONE} / {EMAIL}")
    except ValueError:
        logger.exception("send failed")

    out = stream.getvalue()
    assert "send failed" in out and "ValueError" in out
    assert not any(secret in out for secret in SECRETS), out


def test_a_broken_format_string_does_not_hide_the_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s %s", (PHONE,), None)

    assert RedactingFilter().filter(record) is True
    assert record.msg == "to %s %s"  # left alone: the handler reports the format error itself


def test_install_redaction_adds_the_filter_once_to_each_root_handler() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        install_redaction()
        install_redaction()

        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    finally:
        root.removeHandler(handler)
