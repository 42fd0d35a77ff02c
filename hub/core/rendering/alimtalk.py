"""KakaoTalk AlimTalk: templates as registered with Kakao (`kakao.toml`), checked against Kakao's limits, and
rendered to the code and parameters the gateway sends (plus the text, to check its length). Pure but for reading
the template file at start-up."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jinja2 import Template
from pydantic import BaseModel, ConfigDict, Field

from hub.core.errors import RenderError

KAKAO_MAX_CHARS = 1000
KAKAO_MAX_VARIABLES = 30
KAKAO_MAX_BUTTONS = 5
KAKAO_TEMPLATE_CODE_MAX = 20
KAKAO_BUTTON_TYPES = frozenset({"WL", "AL", "DS", "BK", "MD"})

_KAKAO_VAR = re.compile(r"#\{([^{}\s]+)\}")


class KakaoContent(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["alimtalk"] = "alimtalk"
    template_code: str
    parameters: dict[str, str]
    text: str
    buttons: list[dict[str, str]] = Field(default_factory=list)


@dataclass(frozen=True)
class KakaoTemplate:
    template_code: str
    text: str
    parameters: dict[str, Template]
    buttons: list[dict[str, Template]]


def load_kakao(path: Path, compile_expression: Callable[[str], Template]) -> KakaoTemplate:
    """A `kakao.toml`, its parameters and buttons compiled by `compile_expression` (the renderer's sandbox)."""
    spec = tomllib.loads(path.read_text(encoding="utf-8"))
    code, text = str(spec["template_code"]), str(spec["text"]).strip()
    if not code or len(code) > KAKAO_TEMPLATE_CODE_MAX:
        raise RenderError(f"template_code {code!r} must be 1-{KAKAO_TEMPLATE_CODE_MAX} characters")
    params: dict[str, str] = dict(spec.get("parameters", {}))
    variables = set(_KAKAO_VAR.findall(text))
    if len(variables) > KAKAO_MAX_VARIABLES:
        raise RenderError(f"{len(variables)} variables; AlimTalk allows {KAKAO_MAX_VARIABLES}")
    if missing := variables - params.keys():
        raise RenderError(f"variables without a parameter: {sorted(missing)}")
    if unused := params.keys() - variables:
        raise RenderError(f"parameters not in the text: {sorted(unused)}")
    buttons = list(spec.get("buttons", []))
    if len(buttons) > KAKAO_MAX_BUTTONS:
        raise RenderError(f"{len(buttons)} buttons; AlimTalk allows {KAKAO_MAX_BUTTONS}")
    for button in buttons:
        if not isinstance(button, dict):
            raise RenderError(f"each [[buttons]] entry must be a table, not {button!r}")
        if button.get("type") not in KAKAO_BUTTON_TYPES:
            raise RenderError(f"button type {button.get('type')!r} is not one of {sorted(KAKAO_BUTTON_TYPES)}")
    return KakaoTemplate(
        template_code=code,
        text=text,
        parameters={k: compile_expression(str(v)) for k, v in params.items()},
        buttons=[{k: compile_expression(str(v)) for k, v in b.items()} for b in buttons],
    )


def render_kakao(tpl: KakaoTemplate, ctx: Mapping[str, Any]) -> KakaoContent:
    params = {name: expr.render(ctx).strip() for name, expr in tpl.parameters.items()}
    text = _KAKAO_VAR.sub(lambda m: params[m.group(1)], tpl.text)
    if len(text) > KAKAO_MAX_CHARS:
        raise RenderError(f"AlimTalk text is {len(text)} characters; the limit is {KAKAO_MAX_CHARS}")
    buttons = [{k: v.render(ctx).strip() for k, v in b.items()} for b in tpl.buttons]
    return KakaoContent(template_code=tpl.template_code, parameters=params, text=text, buttons=buttons)
