"""The preferences form -> a preferences change (pure). What the page shows is what the form sends back, so a
field left out of the form is a field the resident did not change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from hub.core.events.common import CHANNELS
from hub.core.fields import describe
from hub.core.residents import Consents, PreferencesChange, Resident
from hub.http.web.i18n import LOCALES


class FormError(ValueError):
    """The form cannot be saved as sent; the message says why (a message key or a validation text)."""


def preferences_from_form(form: Mapping[str, Any], interests: Sequence[str], resident: Resident) -> PreferencesChange:
    order = [form.get(f"channel_{n}") or "" for n in (1, 2, 3)]
    channels = [c for i, c in enumerate(order) if c in CHANNELS and c not in order[:i]]
    advertising = form.get("advertising") == "on"
    quiet_start, quiet_end = (str(form.get(k) or "").strip() for k in ("quiet_start", "quiet_end"))
    if bool(quiet_start) != bool(quiet_end):
        raise FormError("pub.quiet.both")
    locale = str(form.get("locale") or resident.locale)
    values: dict[str, Any] = {
        "channels": channels or None,
        "interests": [i for i in interests if i],
        "consents": Consents(informational=form.get("news") == "on", advertising=advertising,
                             advertising_night=advertising and form.get("night") == "on"),
        "quiet_hours": {"start": quiet_start, "end": quiet_end} if quiet_start else None,
        "locale": locale if locale in LOCALES else resident.locale,
    }
    try:
        return PreferencesChange.model_validate(values)
    except ValidationError as e:
        raise FormError(describe(e)) from e
