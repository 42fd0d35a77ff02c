"""`hub consent`: the advertising-consent lifecycle (정보통신망법 제50조 ⑧)."""

from __future__ import annotations

import typer

from hub.cli.common import console, with_store
from hub.settings import Settings

app = typer.Typer(no_args_is_help=True, help="The advertising-consent lifecycle (reconfirmation every 2 years).")


@app.command("due")
def consent_due() -> None:
    """Residents due a reconfirmation of their advertising consent (2 years from the consent or the last
    reconfirmation, less HUB_CONSENT_RECONFIRM_LEAD_DAYS): masked contacts, times in KST. A running hub sends
    them in the daytime."""
    from hub.core.masking import mask_email, mask_phone
    from hub.core.time import kst, utcnow
    from hub.pipeline.consent import due
    from hub.store.ports import ConsentLedger

    settings = Settings()
    residents = with_store(lambda store: due(ConsentLedger(store), settings, utcnow()))
    for r, at in residents:
        contacts = ", ".join(c for c in (mask_phone(r.phone), mask_email(r.email)) if c) or "-"
        since = kst(at) if at else "unknown (no evidence)"
        console.print(f"{r.resident_id:12}  consented {since:22}  {contacts}", markup=False, highlight=False,
                      soft_wrap=True)
    console.print(f"{len(residents)} resident(s) due a reconfirmation")
