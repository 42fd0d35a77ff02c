"""County notices (소통홍보담당관): news or advertising, to named residents or a segment of the directory. Pure."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.core.events.common import DISTRICTS, NAMED, DirectNotice
from hub.core.fields import PHONE_PATTERN, Flag, Id, mobile_number


class Audience(BaseModel):
    """Who a county notice targets, beyond named recipients: districts, interests, or everyone."""

    model_config = ConfigDict(extra="forbid")

    districts: list[str] = Field(default_factory=list,
                                 json_schema_extra={"items": {"enum": list(DISTRICTS), "type": "string"}})
    interests: list[str] = Field(default_factory=list)
    everyone: Flag = False
    resident_ids: list[Annotated[Id, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=10000, description="Residents of the directory")
    phones: list[str] = Field(default_factory=list, max_length=10000, description="Mobile numbers, in the directory or not",
                              json_schema_extra={"items": {"type": "string", "pattern": PHONE_PATTERN}})

    @field_validator("phones")
    @classmethod
    def _phones(cls, value: list[str]) -> list[str]:
        return [mobile_number(p) for p in value]

    @field_validator("districts")
    @classmethod
    def _known_districts(cls, value: list[str]) -> list[str]:
        unknown = [d for d in value if d not in DISTRICTS]
        if unknown:
            raise ValueError(f"unknown district(s) {unknown}; the county's are {', '.join(DISTRICTS)}")
        return value

    @property
    def is_segment(self) -> bool:
        return self.everyone or bool(self.districts or self.interests)

    @property
    def uses_directory(self) -> bool:
        return self.is_segment or bool(self.resident_ids or self.phones)


class CountyNoticePublishedV1(DirectNotice):
    """군정 소식: 정보성 또는 광고성, 긴급 여부, 대상 읍면·관심사."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "notice_id": "N-2026-0311", "title": "양평 물맑은 김장축제 안내", "category": "informational",
            "summary": "11월 29일 양평읍 물맑은시장 일대에서 김장축제가 열립니다.",
            "url": "https://www.yp21.go.kr/notice/311", "urgent": False,
            "recipients": [{"resident_id": "R-0001", "name": "홍길동", "phone": "010-0000-0001"}],
        }]},
    )
    notice_id: str = Field(min_length=1, max_length=30)
    title: str = Field(min_length=1, max_length=60)
    summary: str = Field(min_length=1, max_length=500)
    url: str | None = Field(default=None, max_length=300, pattern=r"^https://")
    category: Literal["informational", "advertising"] = "informational"
    urgent: Flag = False
    audience: Audience = Field(default_factory=Audience)

    @model_validator(mode="after")
    def _someone(self) -> CountyNoticePublishedV1:
        if not self.recipients and not self.audience.uses_directory:
            raise ValueError("recipients or audience: a notice needs named recipients or a target segment")
        return self

    @classmethod
    def _schema_rules(cls, schema: dict[str, Any]) -> None:
        super()._schema_rules(schema)
        targets = [{"required": ["everyone"], "properties": {"everyone": {"const": True}}},
                   *({"required": [name], "properties": {name: {"minItems": 1}}}
                     for name in ("districts", "interests", "resident_ids", "phones"))]
        schema["allOf"].append({"anyOf": [*NAMED, {"required": ["audience"],
                                                     "properties": {"audience": {"anyOf": targets}}}]})
