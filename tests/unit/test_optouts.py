"""Outside opt-out lists (hub.core.optouts): every spelling of a number the 080 service or the SMS gateway may
write is read as the number the directory keeps for that resident, and so as the same keyed hash; a bad row is
refused by its line, without its number."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from hub.core.optouts import phone_key, read_080_csv, read_sens_json
from hub.core.residents import Resident

SEP = st.sampled_from(["", " ", "-", " - ", "  "])


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str, str]:
    """(canonical number, one spelling of it, another spelling of it)."""
    prefix = draw(st.sampled_from(["10", "11", "16", "17", "18", "19"]))
    middle = draw(st.text("0123456789", min_size=3, max_size=4))
    last = draw(st.text("0123456789", min_size=4, max_size=4))
    canonical = "0" + prefix + middle + last

    def spell() -> str:
        head = draw(st.sampled_from(["0", "+82", "+82 ", "+8 2"]))
        return head + prefix + draw(SEP) + middle + draw(SEP) + last + draw(st.sampled_from(["", " "]))

    return canonical, spell(), spell()


@given(spellings())
def test_every_spelling_on_a_list_matches_the_residents_number(case: tuple[str, str, str]) -> None:
    canonical, on_the_list, in_the_directory = case
    kept = Resident(resident_id="R-1", phone=in_the_directory).phone
    [(_, from_080, reason)] = list(read_080_csv(f"phone,time\n\"{on_the_list}\",2026-11-24T09:00:00\n"))
    [(_, from_sens, _)] = list(read_sens_json(json.dumps(
        [{"clientTelNo": on_the_list, "registerTime": "2026-11-24T09:00:00.000", "registerType": "C"}])))
    assert reason is None and from_080 is not None and from_sens is not None
    assert from_080.phone == from_sens.phone == kept == canonical
    assert phone_key("k" * 32, from_080.phone) == phone_key("k" * 32, kept)
    assert from_080.at == from_sens.at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC), "a time without offset is KST"


def test_the_keyed_hash_is_neither_the_number_nor_an_unkeyed_hash() -> None:
    a, b = phone_key("a" * 32, "01012345678"), phone_key("b" * 32, "01012345678")
    assert a != b and "01012345678" not in a and len(a) == 64


def test_bad_rows_are_refused_by_line_without_their_number() -> None:
    rows = list(read_080_csv("phone\n010-1234-5678\n02-123-4567\n010-2222-3333,yesterday\n\n01033334444\n"))
    assert [(n, o is not None) for n, o, _ in rows] == [(2, True), (3, False), (4, False), (6, True)]
    reasons = " ".join(r or "" for _, _, r in rows)
    assert "123-4567" not in reasons and "2222" not in reasons


def test_the_gateway_list_may_come_wrapped_or_hold_junk() -> None:
    text = json.dumps({"unsubscribes": [{"clientTelNo": "01012345678"}, 5, {"clientTelNo": None}]})
    rows = list(read_sens_json(text))
    assert [(n, o.phone if o else None) for n, o, _ in rows] == [(1, "01012345678"), (2, None), (3, None)]
    assert rows[0][1] is not None and rows[0][1].at is None
