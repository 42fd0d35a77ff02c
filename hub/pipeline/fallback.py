"""대체발송: a channel that declares `FallsBack` (AlimTalk) has what it cannot deliver sent on its fallback channel
(SMS/LMS) by the hub itself, as its own delivery (it dedups like a direct SMS).

Invariants: a delivery falls back only when its channel declares the capability, the failure allows it
(`PermanentError.fallback_ok`) and the request carries a fallback rendition (`falls_back`); the SMS is claimed
like any delivery, so one that was sent (DONE) or is being sent (BUSY) is not sent again; an SMS that cannot be
sent now goes to the SMS channel's retry tiers.
"""

from __future__ import annotations

from hub.core.dedup import Claim, delivery_id
from hub.core.delivery import DeliveryRequest
from hub.core.errors import PermanentError, StoreError
from hub.core.topics import Topics
from hub.pipeline.outcomes import Ledger, Outcomes, StatusMaker, Work, new_row
from hub.pipeline.ports import Capabilities, Gateway
from hub.pipeline.retry import Retries


def fallback_request(request: DeliveryRequest, channel: str = "sms") -> DeliveryRequest | None:
    """The SMS/LMS rendition of a delivery, as its own delivery on `channel` (it dedups like a direct SMS)."""
    if request.fallback is None:
        return None
    return request.model_copy(update={
        "delivery_id": delivery_id(request.notice_key, request.resident_id, channel),
        "channel": channel, "content": request.fallback, "fallback": None,
    })


def falls_back(capabilities: Capabilities, request: DeliveryRequest, error: PermanentError) -> bool:
    """Whether this failure of this request is sent again on the channel's fallback channel."""
    return capabilities.fallback_channel is not None and error.fallback_ok and request.fallback is not None


class Fallback:
    """Sends the fallback rendition of deliveries the primary channel could not deliver."""

    def __init__(self, *, channel: str, gateway: Gateway | None, ledger: Ledger, retries: Retries,
                 make: StatusMaker, topics: Topics) -> None:
        self.channel, self.gateway, self.ledger, self.retries = channel, gateway, ledger, retries
        self.make, self.topics = make, topics

    async def run(self, work: Work, error: PermanentError) -> Outcomes:
        """The primary delivery's "fallback" status and the SMS's own outcome (or its retry)."""
        sms = fallback_request(work.request, self.channel)
        assert sms is not None
        why = f"AlimTalk failed ({error}); sent as {sms.content.kind}"
        primary = self.make(work, "fallback", reason=why)
        sms_work = Work(None, sms, 1, self.topics.deliveries(self.channel))

        def only_primary(reason: str) -> Outcomes:
            return Outcomes([primary.model_copy(update={"reason": reason})])

        if self.gateway is None:
            return Outcomes.join([only_primary(f"{why}: queued for the SMS sender"),
                                  await self.retries.later(sms_work, error, channel=self.channel)])
        try:
            claim = (await self.ledger.claim([new_row(sms)]))[sms.delivery_id]
        except StoreError as e:  # not a reason to fail the batch, whose other calls were made: the SMS sender's
            # first retry tier claims and sends it once the store is back
            return Outcomes.join([only_primary(f"{why}: queued for the SMS sender ({e})"),
                                  await self.retries.later(sms_work, e, channel=self.channel)])
        if claim is Claim.DONE:
            return only_primary(f"AlimTalk failed ({error}); the SMS was already sent")
        if claim is Claim.BUSY:  # the SMS sender is sending this very SMS now (its own record covers it)
            return only_primary(f"AlimTalk failed ({error}); the SMS is being sent")
        try:
            result = await self.gateway.send(sms)
        except PermanentError as e:
            return Outcomes([self.make(work, "failed", reason=f"AlimTalk failed ({error}) and so did SMS ({e})"),
                             self.make(sms_work, "failed", reason=str(e), provider=self.gateway.provider)])
        except Exception as e:
            return Outcomes.join([Outcomes([primary]), await self.retries.later(sms_work, e, channel=self.channel)])
        return Outcomes([primary, self.make(sms_work, "sent", reason="대체발송 (fallback for AlimTalk)",
                                            provider_ref=result.provider_ref, provider=result.provider)])
