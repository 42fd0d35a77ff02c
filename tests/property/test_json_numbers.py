"""Every number literal JSON allows is read as I-JSON says (RFC 7493 §2.2): accepted when a 64-bit float holds
it, refused with a reason when it does not, whatever its shape: integer digits, fraction, exponent and its sign,
in event data or in a structured event. The reader checks each number as it reads it
(`_float`, `_int`) and walks the document only to say where; this checks those checks against Python's own
float conversion, the oracle here."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from hub.core.cloudevents import parse_kafka_message
from hub.core.errors import EventError
from tests.property.conftest import PROFILE
from tests.property.tally import tally

PROPERTY = settings(settings.get_profile(PROFILE))
HEADERS = [("ce_specversion", b"1.0"), ("ce_id", b"n-1"), ("ce_source", b"/test"), ("ce_type", b"t.v1"),
           ("content-type", b"application/json")]

digits = st.text("0123456789", min_size=1, max_size=420)
integer = st.one_of(st.just("0"), st.builds(lambda first, rest: first + rest, st.sampled_from("123456789"),
                                            st.text("0123456789", max_size=420)))
fraction = st.one_of(st.just(""), digits.map(lambda d: "." + d))
exponent = st.one_of(st.just(""), st.builds(lambda e, sign, d: e + sign + d, st.sampled_from("eE"),
                                            st.sampled_from(["", "+", "-"]), st.text("0123456789", min_size=1, max_size=5)))
literal = st.builds(lambda minus, i, f, e: minus + i + f + e, st.sampled_from(["", "-"]), integer, fraction, exponent)


def beyond_a_double(text: str) -> bool:
    """The oracle: Python reads a JSON number literal as int (no fraction, no exponent) or float; a double holds
    it unless the float overflows to infinity or the integer is beyond the largest finite double."""
    if any(c in text for c in ".eE"):
        return abs(float(text)) == float("inf")
    return abs(int(text)) > 1.7976931348623157e308


@PROPERTY
@given(literal, st.sampled_from(["data", "nested", "list"]))
@example("1.7976931348623157e308", "data")  # the largest double: accepted
@example("1.8e308", "data")  # beyond it, written with an exponent of three digits
@example("1" + "0" * 309, "nested")  # beyond it, written without an exponent
@example("1" + "0" * 210 + "e99", "list")  # beyond it with an exponent of two digits
@example("1" + "0" * 199 + "e99", "data")  # within it with the same exponent
def test_a_number_is_accepted_exactly_when_a_double_holds_it(number: str, where: str) -> None:
    body = {"data": '{"n": %s}', "nested": '{"a": {"b": [1, {"n": %s}]}}', "list": "[%s]"}[where] % number
    json.loads(body)  # the text is JSON, by construction
    try:
        parse_kafka_message(body.encode(), HEADERS)
        refused = False
    except EventError as e:
        refused = True
        assert "64-bit float" in e.reason, e.reason
    tally("refused" if refused else "accepted")
    assert refused == beyond_a_double(number), number[:80]
