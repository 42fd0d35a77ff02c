"""`hub templates`: check and preview message templates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hub.cli.common import console, err, read_json
from hub.cli.errors import UsageProblem
from hub.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Check and preview message templates.")


def _sample_events() -> list[Any]:
    from hub.core.cloudevents import new_event
    from hub.core.events import CATALOGUE, sample_data, validate_event

    out = []
    for event_type in CATALOGUE:
        event = validate_event(new_event(event_type, sample_data(event_type), source="/sample", id="sample-1"))
        out.append((event, event.data.recipients[0]))
    return out


@app.command("check")
def templates_check() -> None:
    """Render every template against the catalogue's sample events; report every violation."""
    from hub.core.rendering.identity import Identity
    from hub.core.rendering.renderer import Renderer, check_all

    problems = check_all(Renderer(identity=Identity.of(Settings())), _sample_events())
    for problem in problems:
        err.print(f"[red]✗[/] {problem}")
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]all templates render within the channel limits[/] ({len(_sample_events())} event types)")


@app.command("preview")
def templates_preview(
    event_type: str,
    channel: Annotated[str, typer.Option(help="kakao, sms or email")] = "sms",
    data: Annotated[Path | None, typer.Option("--data", help="event data JSON (default: the sample)", exists=True,
                                              dir_okay=False)] = None,
    locale: Annotated[str, typer.Option(help="ko, en or vi (Korean where the locale has no template)")] = "ko",
    as_json: Annotated[bool, typer.Option("--json", help="the rendered message as JSON (with the HTML part)")] = False,
) -> None:
    """Show one rendered message as the resident gets it (with its byte count for SMS/LMS), rendered with the
    county of the settings (HUB_COUNTY_NAME, ...); advertising gets what the law adds."""
    from hub.core.cloudevents import new_event
    from hub.core.errors import HubError
    from hub.core.events import CATALOGUE, sample_data, validate_event
    from hub.core.events.common import Recipient
    from hub.core.rendering.identity import Identity
    from hub.core.rendering.renderer import Renderer

    if event_type not in CATALOGUE:
        raise UsageProblem(f"unknown event type {event_type!r}", "`hub schemas list` lists the event types")
    payload = read_json(data, "--data") if data else sample_data(event_type)
    renderer = Renderer(identity=Identity.of(Settings()))
    try:
        event = validate_event(new_event(event_type, payload, source="/preview", id="preview"))
        recipient = event.data.recipients[0] if event.data.recipients else Recipient(resident_id="preview")
        message = renderer.render(event, recipient.model_copy(update={"locale": locale}), channel)  # type: ignore[arg-type]  # typer checked it is a channel
    except HubError as e:
        err.print(f"[red]{type(e).__name__}[/]: {e}")
        raise typer.Exit(1) from e
    if as_json:
        typer.echo(message.model_dump_json(indent=2))
        return
    for line in preview_header(message):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.rule()
    console.print(message.text, markup=False, highlight=False, soft_wrap=True)


def preview_header(message: Any) -> list[str]:
    """What the text alone does not show: the kind and size, the subject, AlimTalk's template and buttons."""
    from hub.core.rendering.alimtalk import KAKAO_MAX_CHARS, KakaoContent
    from hub.core.rendering.sms import LMS_MAX_BYTES, SMS_MAX_BYTES, SmsContent

    if isinstance(message, SmsContent):
        limit = SMS_MAX_BYTES if message.kind == "SMS" else LMS_MAX_BYTES
        lines = [f"{message.kind}: {message.byte_count} bytes (EUC-KR; {message.kind} allows {limit:,})"]
        return [*lines, f"subject: {message.subject}"] if message.subject else lines
    if isinstance(message, KakaoContent):
        lines = [f"AlimTalk template {message.template_code}: {len(message.text)} characters "
                 f"(allowed {KAKAO_MAX_CHARS:,})"]
        return lines + [f"button: {b.get('name', '')} ({b.get('type', '')}) {b.get('url_mobile', '')}".rstrip()
                        for b in message.buttons]
    return ["email (text part below; --json shows the HTML part)", f"subject: {message.subject}"]
