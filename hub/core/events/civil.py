"""Civil applications (종이 없는 민원). Pure: the models of the department's events."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from hub.core.events.common import Addressed, example_config
from hub.core.fields import IsoDate


class CivilApplicationReceivedV1(Addressed):
    """민원 신청 접수."""

    model_config = example_config({"application_no": "CA-2026-05531", "title": "농지취득자격증명 발급",
                                   "department": "농업정책과", "expected_date": "2026-11-28"})
    application_no: str = Field(min_length=1, max_length=30)
    title: str = Field(min_length=1, max_length=60)
    department: str = Field(min_length=1, max_length=40)
    expected_date: IsoDate | None = None


class CivilApplicationStatusChangedV1(Addressed):
    """민원 처리 상태 변경: 승인, 반려, 보완 요청."""

    model_config = example_config({"application_no": "CA-2026-05531", "title": "농지취득자격증명 발급",
                                   "department": "농업정책과", "status": "more_info_needed",
                                   "reason": "토지 이용계획서를 첨부해 주세요."})
    application_no: str = Field(min_length=1, max_length=30)
    title: str = Field(min_length=1, max_length=60)
    department: str = Field(min_length=1, max_length=40)
    status: Literal["approved", "rejected", "more_info_needed"]
    reason: str | None = Field(default=None, max_length=300)

    @model_validator(mode="after")
    def _reason_when_not_approved(self) -> CivilApplicationStatusChangedV1:
        if self.status != "approved" and not self.reason:
            raise ValueError("reason: required when the application is rejected or needs more information")
        return self

    @classmethod
    def _schema_rules(cls, schema: dict[str, Any]) -> None:
        super()._schema_rules(schema)
        schema["allOf"].append({"if": {"properties": {"status": {"const": "approved"}}},
                                "else": {"required": ["reason"],
                                         "properties": {"reason": {"type": "string", "minLength": 1}}}})
