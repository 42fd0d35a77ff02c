"""A small message catalogue for the pages: Korean first, English and Vietnamese for residents who chose them.

Staff pages are Korean only. A key missing in a locale falls back to Korean, never to the key itself, so a
resident always reads a sentence; a key missing in Korean too is a bug and raises."""

from __future__ import annotations

from collections.abc import Mapping

LOCALES = ("ko", "en", "vi")

MESSAGES: dict[str, dict[str, str]] = {
    "ko": {
        "skip": "본문 바로가기",
        "error.title": "요청을 처리할 수 없습니다",
        "error.csrf": "보안 확인 값이 없거나 맞지 않습니다. 페이지를 새로 고친 뒤 다시 시도해 주세요.",
        "error.rate": "요청이 너무 많습니다. 잠시 후 다시 시도해 주세요.",
        "error.not_found": "찾으시는 페이지가 없습니다.",
        "error.back": "처음으로",
        "time.label": "한국 표준시(KST)",
    },
    "en": {
        "skip": "Skip to content",
        "error.title": "We could not process this request",
        "error.csrf": "The security check is missing or wrong. Reload the page and try again.",
        "error.rate": "Too many requests. Please try again in a moment.",
        "error.not_found": "There is no such page.",
        "error.back": "Home",
        "time.label": "Korea Standard Time (KST)",
    },
    "vi": {
        "skip": "Chuyển đến nội dung",
        "error.title": "Không thể xử lý yêu cầu",
        "error.csrf": "Mã xác thực bảo mật bị thiếu hoặc sai. Hãy tải lại trang và thử lại.",
        "error.rate": "Quá nhiều yêu cầu. Vui lòng thử lại sau giây lát.",
        "error.not_found": "Không có trang này.",
        "error.back": "Trang chủ",
        "time.label": "Giờ chuẩn Hàn Quốc (KST)",
    },
}


def locale_of(value: str | None) -> str:
    """A supported locale for a resident's stored locale or an Accept-Language tag ("vi-VN" -> "vi")."""
    tag = (value or "").strip().lower().replace("_", "-").split("-")[0]
    return tag if tag in LOCALES else "ko"


def t(key: str, locale: str = "ko", **values: object) -> str:
    """The message `key` in `locale` (Korean when that locale lacks it), formatted with `values`."""
    catalogue: Mapping[str, str] = MESSAGES.get(locale_of(locale), MESSAGES["ko"])
    text = catalogue.get(key) or MESSAGES["ko"][key]
    return text.format(**values) if values else text


def extend(messages: Mapping[str, Mapping[str, str]]) -> None:
    """An app adds its own messages (at import time); a key already defined with another text is a clash."""
    for locale, entries in messages.items():
        target = MESSAGES.setdefault(locale, {})
        for key, text in entries.items():
            if target.get(key, text) != text:
                raise ValueError(f"message {key!r} ({locale}) is defined twice with different texts")
            target[key] = text
