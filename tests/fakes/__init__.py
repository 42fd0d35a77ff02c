"""Fake gateways that speak the providers' documented HTTP protocols on 127.0.0.1, for unit and integration
tests: `FakeNhnAlimtalk` (NHN Cloud AlimTalk v2.2) and `FakeSens` (NAVER Cloud SENS SMS v2)."""

from tests.fakes._server import Received
from tests.fakes.nhn_alimtalk import FakeNhnAlimtalk
from tests.fakes.sens import FakeSens

__all__ = ["FakeNhnAlimtalk", "FakeSens", "Received"]
