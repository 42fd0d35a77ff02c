"""The compose form: every field checked, with a Korean message beside the field it is about. A form with any
message is shown again as it was filled in, and nothing is saved or published."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from hub.core.errors import RenderError
from hub.core.events.common import DISTRICTS
from hub.core.events.notice import CountyNoticePublishedV1
from hub.core.fields import mobile_number
from hub.core.rendering.sms import euckr_len
from hub.core.time import KST

TARGETS = {"districts": "읍면 선택", "interests": "관심사", "everyone": "군 전체", "list": "명단 파일(CSV)"}
MAX_LIST = 10_000
MAX_CSV_BYTES = 1_000_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_INTEREST = re.compile(r"^[0-9A-Za-z가-힣_-]{1,30}$")


@dataclass
class NoticeForm:
    """What the form holds, as typed (to show it again) and as checked (`errors` empty: ready to save)."""

    title: str = ""
    summary: str = ""
    url: str = ""
    category: str = "informational"
    urgent: bool = False
    target: str = "districts"
    districts: list[str] = field(default_factory=list)
    interests: str = ""
    resident_ids: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    when: str = "now"
    send_at_text: str = ""
    send_at: datetime | None = None
    idempotency_key: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def audience(self) -> dict[str, Any]:
        interests = [i.strip() for i in self.interests.split(",") if i.strip()]
        return {"districts": self.districts if self.target == "districts" else [],
                "interests": interests if self.target == "interests" else [],
                "everyone": self.target == "everyone",
                "resident_ids": self.resident_ids if self.target == "list" else [],
                "phones": self.phones if self.target == "list" else []}

    def data(self, notice_id: str) -> dict[str, Any]:
        """The event's data (notice.published.v1)."""
        out: dict[str, Any] = {"notice_id": notice_id, "title": self.title, "summary": self.summary,
                               "category": self.category, "urgent": self.urgent, "audience": self.audience}
        if self.url:
            out["url"] = self.url
        if self.send_at is not None:
            out["send_at"] = self.send_at.isoformat()
        return out

    @classmethod
    def of_row(cls, row: Any) -> NoticeForm:
        audience = row.audience
        target = ("everyone" if audience.get("everyone") else "districts" if audience.get("districts") else
                  "interests" if audience.get("interests") else "list")
        return cls(title=row.title, summary=row.summary, url=row.url or "",
                   category="advertising" if row.advertising else "informational", urgent=row.urgent,
                   target=target, districts=list(audience.get("districts", [])),
                   interests=", ".join(audience.get("interests", [])),
                   resident_ids=list(audience.get("resident_ids", [])), phones=list(audience.get("phones", [])),
                   when="later" if row.send_at else "now",
                   send_at_text=f"{row.send_at.astimezone(KST):%Y-%m-%dT%H:%M}" if row.send_at else "",
                   send_at=row.send_at, idempotency_key=row.idempotency_key)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return _CONTROL.sub("", value).strip() if isinstance(value, str) else ""


async def read_form(form: FormData, now: datetime, *, keep: NoticeForm | None = None) -> NoticeForm:
    """The form, checked. `keep`: the draft being edited (its list stays when no new file is uploaded)."""
    f = NoticeForm(title=_text(form, "title"), summary=_text(form, "summary"), url=_text(form, "url"),
                   category=_text(form, "category") or "informational", urgent=form.get("urgent") == "on",
                   target=_text(form, "target") or "districts",
                   districts=[d for d in form.getlist("districts") if isinstance(d, str)],
                   interests=_text(form, "interests"), when=_text(form, "when") or "now",
                   send_at_text=_text(form, "send_at"), idempotency_key=_text(form, "idempotency_key"))
    _check_text(f)
    _check_target(f)
    upload = form.get("list_file")
    if f.target == "list":
        if isinstance(upload, UploadFile) and upload.filename:
            await _read_list(f, upload)
        elif keep is not None:
            f.resident_ids, f.phones = keep.resident_ids, keep.phones
        if not f.errors.get("list_file") and not (f.resident_ids or f.phones):
            f.errors["list_file"] = "주민 번호나 휴대전화 번호가 담긴 CSV 파일을 올려 주세요."
    _check_when(f, now)
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", f.idempotency_key):
        f.errors["form"] = "양식이 올바르지 않습니다. 새로 작성해 주세요."
    if not f.errors:
        _check_model(f)
    return f


def _check_text(f: NoticeForm) -> None:
    for name, label, limit in (("title", "제목", 60), ("summary", "내용", 500)):
        value = getattr(f, name)
        if not value:
            f.errors[name] = f"{label}을 입력해 주세요."
        elif len(value) > limit:
            f.errors[name] = f"{label}은 {limit}자 이하로 써 주세요 (지금 {len(value)}자)."
        else:
            try:
                euckr_len(value, what=label)
            except RenderError:
                bad = next(c for c in value if not _euckr(c))
                f.errors[name] = f"문자(SMS)로 보낼 수 없는 글자가 있습니다: '{bad}' (이모지 등). 빼거나 바꿔 주세요."
    if f.url and (not f.url.startswith("https://") or len(f.url) > 300 or " " in f.url):
        f.errors["url"] = "링크는 https:// 로 시작하는 300자 이하의 주소여야 합니다."
    if f.category not in ("informational", "advertising"):
        f.errors["category"] = "정보성 또는 광고성 중 하나를 골라 주세요."


def _euckr(c: str) -> bool:
    try:
        euckr_len(c)
        return True
    except RenderError:
        return False


def _check_target(f: NoticeForm) -> None:
    if f.target not in TARGETS:
        f.errors["target"] = "받는 사람을 골라 주세요."
    elif f.target == "districts":
        unknown = [d for d in f.districts if d not in DISTRICTS]
        if unknown or not f.districts:
            f.errors["districts"] = "읍면을 하나 이상 골라 주세요." if not unknown else "알 수 없는 읍면이 있습니다."
    elif f.target == "interests":
        interests = [i.strip() for i in f.interests.split(",") if i.strip()]
        if not interests or not all(_INTEREST.fullmatch(i) for i in interests) or len(interests) > 20:
            f.errors["interests"] = "관심사를 쉼표로 나누어 적어 주세요 (예: 농업, 축제; 각 30자 이하, 20개까지)."


async def _read_list(f: NoticeForm, upload: UploadFile) -> None:
    raw = await upload.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        f.errors["list_file"] = "파일이 너무 큽니다 (1MB 이하)."
        return
    for encoding in ("utf-8-sig", "cp949"):  # Excel saves Korean CSV as CP949 unless told UTF-8
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        f.errors["list_file"] = "CSV 파일을 읽을 수 없습니다 (UTF-8 또는 CP949로 저장해 주세요)."
        return
    ids: dict[str, None] = {}
    phones: dict[str, None] = {}
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        for cell in (c.strip() for c in row):
            if not cell or (line_no == 1 and cell.lower() in ("resident_id", "phone", "주민번호", "휴대전화")):
                continue
            if re.fullmatch(r"[0-9+\- ]{10,16}", cell):
                try:
                    phones[mobile_number(cell)] = None
                except ValueError:
                    f.errors["list_file"] = f"{line_no}번째 줄: 휴대전화 번호 형식이 아닙니다 ({cell[:20]})."
                    return
            elif len(cell) <= 64 and not _CONTROL.search(cell):
                ids[cell] = None
            else:
                f.errors["list_file"] = f"{line_no}번째 줄: 주민 번호는 64자 이하여야 합니다."
                return
    if len(ids) > MAX_LIST or len(phones) > MAX_LIST:
        f.errors["list_file"] = f"한 번에 {MAX_LIST:,}명까지 보낼 수 있습니다."
        return
    f.resident_ids, f.phones = list(ids), list(phones)


def _check_when(f: NoticeForm, now: datetime) -> None:
    if f.when == "now":
        return
    if f.when != "later":
        f.errors["send_at"] = "보낼 때를 골라 주세요."
        return
    try:
        local = datetime.strptime(f.send_at_text, "%Y-%m-%dT%H:%M")
    except ValueError:
        f.errors["send_at"] = "예약 시각을 '2026-11-28 09:00' 처럼 입력해 주세요 (한국 표준시)."
        return
    f.send_at = local.replace(tzinfo=KST)
    if f.send_at <= now + timedelta(minutes=1):
        f.errors["send_at"] = "예약 시각은 지금부터 1분 뒤 이후여야 합니다 (한국 표준시)."
    elif f.send_at > now + timedelta(days=90):
        f.errors["send_at"] = "예약은 90일 안으로만 할 수 있습니다."


def _check_model(f: NoticeForm) -> None:
    """The event model's own rules, last: what passes here is what the hub accepts."""
    try:
        CountyNoticePublishedV1.model_validate(f.data("C-check"))
    except ValidationError as e:
        f.errors["form"] = "입력한 내용으로는 소식을 만들 수 없습니다: " + "; ".join(
            str(err["msg"]) for err in e.errors())[:300]
