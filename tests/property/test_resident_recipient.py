"""A resident of the directory becomes a recipient without being validated again (`Resident.recipient`, on the
router's path for every member of a segment): whatever a resident was registered with, in any accepted spelling
of a number or an address, that recipient is the one a validated Recipient would be. Checked on the resident as
registered and as the store reads it back (`to_resident`, from the row `row_values` writes)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.core.events.common import Recipient
from hub.core.residents import Resident
from hub.store.directory import row_values, to_resident
from tests.property.conftest import PROFILE
from tests.property.strategies import hostile_text
from tests.property.tally import tally

PROPERTY = settings(settings.get_profile(PROFILE))

phones = st.one_of(
    st.builds(lambda mid, last, sep: f"010{sep}{mid}{sep}{last}", st.integers(1000, 9999), st.integers(0, 9999).map("{:04d}".format),
              st.sampled_from(["", "-", " "])),
    st.builds(lambda n: f"+82 10-{n // 10000:04d}-{n % 10000:04d}", st.integers(0, 99_999_999)),
    hostile_text(20),
    st.none(),
)
emails = st.one_of(st.none(), st.just(""), st.just("Hong@Example.org"), st.just(" a@b.kr "), hostile_text(30))
fields = st.fixed_dictionaries({
    "resident_id": st.from_regex(r"R-[0-9]{1,6}", fullmatch=True),
    "name": st.one_of(st.none(), hostile_text(50)),
    "phone": phones, "email": emails,
    "channels": st.one_of(st.none(), st.lists(st.sampled_from(["kakao", "sms", "email"]), unique=True, max_size=3)),
    "locale": st.sampled_from(["ko", "en", "vi"]),
})


@PROPERTY
@given(fields)
def test_a_residents_recipient_is_the_validated_one(given_fields: dict[str, Any]) -> None:
    try:
        resident = Resident.model_validate(given_fields)
    except ValidationError:
        tally("refused at registration")
        return
    validated = Recipient.model_validate({k: getattr(resident, k) for k in
                                          ("resident_id", "name", "phone", "email", "channels", "locale")})
    read_back = to_resident(SimpleNamespace(**row_values(resident, datetime.now(UTC))))
    for made in (resident.recipient(), read_back.recipient()):
        assert made.model_dump() == validated.model_dump()
    tally("registered")
