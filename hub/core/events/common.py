"""What the data of every event shares: the county's districts and the channels, the recipients an event names,
and the base models of notices (`DirectNotice`, `Addressed`). Pure."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, field_validator, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from hub.core.fields import EMAIL_PATTERN, EMAIL_RE, PHONE_PATTERN, Id, Integer, Timestamp, mobile_number

DISTRICTS: tuple[str, ...] = (
    "양평읍", "강상면", "강하면", "양서면", "옥천면", "서종면",
    "단월면", "청운면", "양동면", "지평면", "용문면", "개군면",
)

Channel = Literal["kakao", "sms", "email"]
CHANNELS: tuple[Channel, ...] = ("kakao", "sms", "email")


# --------------------------------------------------------------------------- recipients


class Recipient(BaseModel):
    """A resident named by the event, with the contact points the department system knows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resident_id: Id = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=50)
    phone: str | None = Field(default=None, description="Mobile number, digits only or with hyphens or spaces.",
                              json_schema_extra={"anyOf": [{"type": "string", "pattern": PHONE_PATTERN},
                                                           {"type": "null"}]})
    email: str | None = Field(default=None, max_length=254,
                              json_schema_extra={"anyOf": [{"type": "string", "maxLength": 254, "pattern": EMAIL_PATTERN},
                                                           {"type": "null"}]})
    channels: list[Channel] | None = Field(
        default=None, description="Preferred channels, best first; the hub's default order when absent."
    )
    locale: str = Field(default="ko", pattern=r"^[a-z]{2}$")

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else mobile_number(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_RE.fullmatch(value):
            raise ValueError("전자우편 주소 형식이 아닙니다 (not an e-mail address)")
        return value



class DirectNotice(BaseModel):
    """Data of an event addressed to named residents: `recipients` (or one `recipient`)."""

    model_config = ConfigDict(extra="forbid")

    recipients: list[Recipient] = Field(default_factory=list, max_length=1000)
    send_at: Timestamp | None = Field(
        default=None, description="Hold the notice until this time (RFC 3339 with offset); default: at once."
    )

    @classmethod
    def __get_pydantic_json_schema__(cls, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """The rules the validators below apply, for the published schema (hub/core/schemas.py)."""
        schema = handler(core)
        cls._schema_rules(handler.resolve_ref_schema(schema))
        return schema

    @classmethod
    def _schema_rules(cls, schema: dict[str, Any]) -> None:
        schema["properties"]["recipient"] = {**schema["properties"]["recipients"]["items"],  # the Recipient $ref
                                             "description": "One recipient: the same as one more in recipients."}
        schema.setdefault("allOf", []).append(
            {"if": {"required": ["recipient"]}, "then": {"properties": {"recipients": {"maxItems": 999}}}})

    @model_validator(mode="before")
    @classmethod
    def _single_recipient(cls, value: Any) -> Any:
        """`recipient` is one more of `recipients`; `recipients` that is not a list is left for the field's own
        validation to name (joining it would raise a TypeError, outside validation)."""
        if isinstance(value, dict) and "recipient" in value:
            value = dict(value)
            single = value.pop("recipient")
            rest = value.get("recipients", [])
            value["recipients"] = [*rest, single] if isinstance(rest, list) else rest
        return value


class Addressed(DirectNotice):
    """A notice to one resident's own business (an application, a booking, a bill): recipients required."""

    @model_validator(mode="after")
    def _needs_recipients(self) -> Addressed:
        if not self.recipients:
            raise ValueError("recipients: at least one recipient is required")
        return self

    @classmethod
    def _schema_rules(cls, schema: dict[str, Any]) -> None:
        super()._schema_rules(schema)
        schema["allOf"].append({"anyOf": NAMED})


NAMED: list[dict[str, Any]] = [{"required": ["recipient"]},
                                {"required": ["recipients"], "properties": {"recipients": {"minItems": 1}}}]


def example_config(data: dict[str, Any]) -> ConfigDict:
    resident: dict[str, Any] = {"resident_id": "R-0001", "name": "홍길동", "phone": "010-0000-0001", "email": "hong@example.org"}
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [{"recipient": resident, **data}]})


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=50)
    quantity: Integer = Field(default=1, ge=1, le=999)

