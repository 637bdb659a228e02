"""Recording what became of each send: sent, to be tried again, or given up - each only if the item
is still pending (one cancelled meanwhile, e.g. because the child erased their data, stays so).

Sends that finish together are recorded together, in one transaction; if that fails, each on its
own with retries, so that one item's trouble costs no other item its record. Until its outcome is
committed an item stays leased to this worker, so no other worker can send it meanwhile.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import Any

from bot.delivery.contract import DeliveryMetrics, Sent
from bot.delivery.health import ChatHealth, Outage
from bot.delivery.policy import KEEP_SECONDS, Verdict, as_send_error, decide, metrics_label
from bot.staff_chats import route_of
from bot.transport import Failure
from storage import Database, Kind, OutboxItem, Target, Transaction

log = logging.getLogger(__name__)

RECORD_TRIES = 3  # an outcome is written this many times before giving up
RECORD_BACKOFF = 0.5
REASON_LIMIT = 200

OnFailed = Callable[[Transaction, OutboxItem, str, Failure], Awaitable[None]]  # (…, reason, failure)
OnChatTrouble = Callable[[Target, str, str | None], Awaitable[None]]  # the target, why, the chat's region
OnChatBack = Callable[[Transaction, Outage], Awaitable[None]]
Write = Callable[[Transaction], Awaitable[bool]]


def short(reason: str) -> str:
    return reason if len(reason) <= REASON_LIMIT else reason[: REASON_LIMIT - 1] + "…"


def fields(item: OutboxItem) -> dict[str, Any]:
    """What a log line may say of an item: never text or platform ids."""
    return {"item": item.id, "case": item.case_id, "kind": str(item.kind)}


@dataclass(frozen=True, slots=True)
class LaneLease:
    """Whom the item behind a sent one is leased to, for how long, and how the worker holds it meanwhile."""

    owner: str
    seconds: float
    reserve: Callable[[OutboxItem], None]


@dataclass(frozen=True, slots=True)
class AfterSend:
    """A sent item's lane after its record: whether an item waits behind it, and that item, if it
    was leased to the sender's worker with the record."""

    lane_waits: bool
    following: OutboxItem | None = None


class Recorder:
    def __init__(self, db: Database, *, keep: float = KEEP_SECONDS, on_failed: OnFailed | None = None,
                 on_chat_trouble: OnChatTrouble | None = None, metrics: DeliveryMetrics | None = None,
                 health: ChatHealth | None = None, on_chat_back: OnChatBack | None = None) -> None:
        self.db, self.keep, self.metrics = db, keep, metrics
        self.on_failed, self.on_chat_trouble, self.on_chat_back = on_failed, on_chat_trouble, on_chat_back
        self.health = health or ChatHealth()
        self._batch: list[tuple[OutboxItem, Write, asyncio.Future[bool | None]]] = []
        self._writer: asyncio.Task[None] | None = None  # records the sent items of a batch

    async def sent(self, item: OutboxItem, sent: Sent | None, lease: LaneLease | None = None) -> AfterSend | None:
        """Record a sent item (with others that finished together); None if it could not be recorded.
        With `lease`, the item waiting behind it in its lane, if any, is leased to `lease.owner` in the
        same transaction (and `lease.reserve`d before that commits) and comes back with the record, to
        be sent next."""
        result = sent.to_json() if sent is not None else None
        after: AfterSend | None = None

        async def record(tx: Transaction) -> bool:
            nonlocal after
            # What a child was told is not kept once sent (their receipt code, an answer, the goodbye's address).
            marked = await tx.outbox.mark_sent(item.id, item.lane, result, wipe=item.target is Target.CHILD)
            if marked is None:
                return self._not_pending(item, "sent")
            if sent is not None:
                await _remember_messages(tx, item, sent.message_ids)
            following = None
            if marked.lane_waits and lease is not None:
                following = await tx.outbox.claim_next_in_lane(item.lane, tx.now, lease.owner, lease.seconds)
                if following is not None:
                    lease.reserve(following)  # before the commit: no round of this worker may start it too
                    if item.target is Target.CHILD:
                        following = replace(following, address=item.address)  # the same lane: the same child
            after = AfterSend(marked.lane_waits, following)
            return True

        recorded = asyncio.get_running_loop().create_future()
        self._batch.append((item, record, recorded))
        if len(self._batch) == 1:  # the first since the last batch was taken: it needs a writer
            self._writer = asyncio.create_task(self._record_together(), name="record-sent")
        if await recorded:
            self._count("delivered", item.kind)
        back = self.health.sent(item)
        if back is not None and self.on_chat_back is not None:
            await self._record(item, "chat back", partial(_told, self.on_chat_back, back), tries=1)
        return after

    async def failed(self, item: OutboxItem, error: BaseException) -> None:
        """Record a failed attempt as the retry policy decides."""
        problem = as_send_error(error)
        reason, attempt = short(problem.reason), item.attempts + 1
        age = (self.db.now - item.created_at).total_seconds()
        decision = decide(problem, item.target, attempt, age, self.keep,
                          others_get_through=self.health.getting_through(item))
        self.health.failed(item, problem.failure, reason)
        if decision.tell_admins and self.on_chat_trouble is not None:
            try:
                await self.on_chat_trouble(item.target, reason, route_of(item.lane))
            except Exception:  # noqa: BLE001 - telling admins is best effort; the item still waits
                log.exception("telling admins about a staff chat failed")
        if decision.verdict is Verdict.GIVE_UP:
            await self._give_up(item, reason, attempt, problem.failure)
            return

        async def record(tx: Transaction) -> bool:
            if not await tx.outbox.retry_later(item.id, tx.now + timedelta(seconds=decision.delay), reason):
                return self._not_pending(item, "retry")
            return True

        if await self._record(item, "retry", record):
            label = metrics_label(problem.failure)
            log.warning("delivery retry", extra={**fields(item), "attempt": attempt, "reason": reason,
                                                  "reason_class": label, "retry_in": round(decision.delay, 1)})
            self._count("retried", item.kind, label)

    async def drain(self) -> None:
        """Wait for the batch being written (what was sent is still recorded: a moment's work)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _record_together(self) -> None:
        batch, self._batch = self._batch, []
        try:
            async with self.db.transaction() as tx:
                outcomes = [await record(tx) for _item, record, _recorded in batch]
        except Exception:  # noqa: BLE001 - retried one by one below, each with its own log lines
            outcomes = [await self._record(item, "sent", record) for item, record, _recorded in batch]
        for (_item, _record, recorded), outcome in zip(batch, outcomes, strict=True):
            if not recorded.done():  # (its send was cancelled meanwhile, at shutdown)
                recorded.set_result(outcome)

    async def _give_up(self, item: OutboxItem, reason: str, attempt: int, failure: Failure) -> None:
        async def record(tx: Transaction, hook: bool = True) -> bool:
            if not await tx.outbox.mark_failed(item.id, reason):
                return self._not_pending(item, "failed")
            if hook and self.on_failed is not None:
                await self.on_failed(tx, item, reason, failure)
            return True

        hooked = self.on_failed is not None
        done = await self._record(item, "failed", record, tries=1 if hooked else RECORD_TRIES)
        if done is None and hooked:
            # The hook (or its transaction) failed: the item must still stop being retried.
            log.error("on_failed hook failed; marking the item failed without it", extra=fields(item))
            done = await self._record(item, "failed", lambda tx: record(tx, hook=False))
        if done:
            log.warning("delivery failed", extra={**fields(item), "attempt": attempt, "reason": reason})
            self._count("failed", item.kind)

    def _not_pending(self, item: OutboxItem, outcome: str) -> bool:
        """The outcome's UPDATE found the item finished meanwhile (e.g. cancelled because the child
        erased their data, or gone): say so; False, as nothing was recorded."""
        log.info("delivery outcome not recorded: item no longer pending",
                 extra={**fields(item), "outcome": outcome, "status": "not pending"})
        return False

    async def _record(self, item: OutboxItem, outcome: str, write: Write, tries: int = RECORD_TRIES) -> bool | None:
        """Run `write` in its own transaction, retrying a failing database; None if it never committed."""
        for attempt in range(1, tries + 1):
            try:
                async with self.db.transaction() as tx:
                    return await write(tx)
            except Exception as error:  # noqa: BLE001 - logged; the lease makes the item come back
                log.error("could not record a delivery outcome", exc_info=True, extra={
                    **fields(item), "outcome": outcome, "try": attempt, "reason": as_send_error(error).reason})
                if attempt < tries:
                    await asyncio.sleep(RECORD_BACKOFF * attempt)
        return None

    def _count(self, name: str, *args: str) -> None:
        if self.metrics is None:
            return
        try:
            getattr(self.metrics, name)(*args)
        except Exception:  # noqa: BLE001 - a metrics bug must not stop deliveries
            log.exception("delivery metrics failed")


async def _told(on_chat_back: OnChatBack, outage: Outage, tx: Transaction) -> bool:
    await on_chat_back(tx, outage)
    return True


async def _remember_messages(tx: Transaction, item: OutboxItem, message_ids: tuple[int, ...]) -> None:
    """The bot's messages in a child's chat (for a quick exit), and a child's relayed message with
    its copies in a staff topic (so that the child's later edit reaches the same case)."""
    if item.target is Target.CHILD and item.conversation_key:
        for message_id in message_ids:
            await tx.chat_messages.add(item.conversation_key, message_id, True)
    elif item.kind is Kind.RELAY and item.case_id is not None:
        for message_id in message_ids:
            await tx.case_messages.add(item.case_id, item.target, child_message_id=item.payload.get("child_message_id"),
                                       staff_message_id=message_id)
