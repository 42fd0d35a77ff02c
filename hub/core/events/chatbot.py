"""The chatbot (AI 민원챗봇): answered inquiries. Pure: the models of the department's events."""

from __future__ import annotations

from pydantic import Field

from hub.core.events.common import Addressed, example_config


class ChatbotInquiryAnsweredV1(Addressed):
    """챗봇에서 담당 공무원에게 넘긴 문의에 답변 등록."""

    model_config = example_config({"inquiry_no": "Q-2026-1207", "topic": "대형폐기물 수거 요일",
                                   "department": "청소과", "answer_url": "https://talk.yp.example.kr/q/1207"})
    inquiry_no: str = Field(min_length=1, max_length=30)
    topic: str = Field(min_length=1, max_length=60)
    department: str = Field(min_length=1, max_length=40)
    answer_url: str | None = Field(default=None, max_length=300, pattern=r"^https://")
