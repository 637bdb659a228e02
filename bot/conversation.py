"""One child event: run the engine, store what it decided, queue what must be sent — in one transaction."""
from __future__ import annotations

import logging
import math
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.outbox import Outbox
from bot.privacy import Privacy
from bot.statistics.record import record_checkin_answered, record_rating, record_submitted, record_turn
from dialogs.engine import Engine
from dialogs.payloads import RATINGS
from dialogs.model import (
    Context, ConvertCase, DeleteIncoming, EventKind, FlagUrgent, Forget, Incoming, OpenCase, QuickExit, RateCase,
    Reconnect, RelayToCase, Say, State, SubmitCase,
)
from storage import KEEP, DuplicateNumber

log = logging.getLogger(__name__)

CASE_NUMBER_DIGITS = 6
RECEIPT_WORDS = 3
RECEIPT_TRIES_PER_DAY = 5
FLOOD_SWEEP_SECONDS = 5


@dataclass(frozen=True, slots=True)
class Child:
    """Who wrote, as the adapter knows it: never stored in clear."""

    channel: str
    platform_id: str | int
    address: dict[str, Any]  # how to reach them again, e.g. {"chat_id": 123}
    message_id: int | None = None  # the incoming message, for quick exit and image deletion


class ConversationService:
    """Channel-agnostic: the Telegram, Viber and console adapters all call `handle`."""

    def __init__(self, engine: Engine, privacy: Privacy, outbox: Outbox, settings: Any) -> None:
        self.engine, self.privacy, self.outbox, self.settings = engine, privacy, outbox, settings
        # Per child, when their per-minute message allowance is full again (GCRA: one number each).
        self._allowance_full_at: dict[str, float] = {}
        self._swept = time.monotonic()

    async def handle(self, tx: Any, child: Child, event: Incoming) -> None:
        key = self.privacy.pseudonym(child.channel, child.platform_id)
        conversation = await tx.conversations.get(key)
        state = State.from_dict(conversation.state) if conversation else None
        case = await tx.cases.open_for(key)
        outcome = self.engine.handle(state, event, _context(case, self._online(tx.now)))
        await record_turn(tx, state, outcome.state, child.channel)  # statistics
        await record_checkin_answered(tx, case)  # statistics
        turn = _Turn(self, tx, child, key, case)
        state = await turn.perform(outcome.state, outcome.actions, previous=state)
        if turn.forgotten:
            await tx.conversations.delete(key)
            await turn.flush(0)
            return
        # The address is sealed again only when it changed (a private chat's rarely does).
        address = KEEP if conversation and conversation.address == child.address else child.address
        await tx.conversations.save(
            key, child.channel, state.to_dict(), address,
            expected_version=conversation.version if conversation else None,
        )
        if child.message_id is not None:
            await tx.chat_messages.add(key, child.message_id, False)
        flood = self._flood(key) if event.kind in (EventKind.TEXT, EventKind.MEDIA, EventKind.UNSUPPORTED) else 0
        await turn.flush(flood)

    def _online(self, now: Any) -> bool:
        hours = self.engine.content.office_hours.get(self.settings.country)
        return hours is None or hours.is_open(now)

    def _flood(self, key: str) -> int:
        """How far past the per-minute message limit this child is (0: not flooding). Button presses
        do not count; past the limit everything is still stored and relayed, only replies pause.

        The generic cell rate algorithm: each message moves the child's "full again" time one
        interval (a minute / limit) later; a child whose full-again time lies more than a minute
        ahead has sent more than `limit` in a burst. One float per child who wrote lately."""
        now, interval = time.monotonic(), 60.0 / self.settings.child_messages_per_minute
        full_at = max(self._allowance_full_at.get(key, now), now) + interval
        self._allowance_full_at[key] = full_at
        if now - self._swept > FLOOD_SWEEP_SECONDS:  # children whose allowance is full are forgotten
            self._swept = now
            for idle in [k for k, at in self._allowance_full_at.items() if at <= now]:
                del self._allowance_full_at[idle]
        return max(0, math.ceil(round((full_at - now - 60.0) / interval, 6)))


def _context(case: Any, online: bool = True) -> Context:
    if case is None:
        return Context(online=online)
    return Context(OpenCase(case.number, case.status, case.reply_wanted, case.category), online)


class _Turn:
    """Carries out one outcome's actions; collects the child's messages to queue at the end."""

    def __init__(self, service: ConversationService, tx: Any, child: Child, key: str, case: Any) -> None:
        self.service, self.tx, self.child, self.key, self.case = service, tx, child, key, case
        self.replies: list[Say] = []
        self.slots: dict[str, str] = {}
        self.forgotten = False
        self.deletions: list[int] = []
        self.quick_exit = False
        self.lang = service.engine.default_language

    async def perform(self, state: State, actions: tuple, previous: State | None) -> State:
        self.lang = state.lang
        for action in actions:
            match action:
                case Say():
                    self.replies.append(action)
                case SubmitCase():
                    if not await self._submit(action):
                        return previous or state  # over the daily cap: the draft stays as it was
                case RelayToCase():
                    await self._relay(action)
                case FlagUrgent():
                    await self._flag_urgent()
                case Forget():
                    await self._forget()
                case QuickExit():
                    self.quick_exit = True
                    self.deletions += await self.tx.chat_messages.for_conversation(self.key)
                    self.deletions += [self.child.message_id] if self.child.message_id else []
                    await self.tx.chat_messages.delete_for(self.key)
                case DeleteIncoming():
                    self.deletions += [self.child.message_id] if self.child.message_id else []
                case Reconnect():
                    state = await self._reconnect(state, action.code)
                case RateCase():
                    await self._rate(action.score)
                case ConvertCase():
                    await self._convert(action.agreed)
        return state

    async def flush(self, flood: int) -> None:
        outbox, child = self.service.outbox, self.child
        if self.deletions or self.quick_exit:
            # Quick exit always queues this: channels that cannot delete send their advice instead.
            payload = {"message_ids": self.deletions, "lang": self.lang}
            await outbox.to_child(self.tx, child.channel, self.key, "delete_messages", payload, address=child.address)
        replies = self.replies
        if flood:  # one kind word when the flood starts, then quiet until it ends
            replies = [Say(self.service.engine.say(self.lang, "common.slow_down"))] if flood == 1 else []
        for say in replies:
            await outbox.say_to_child(self.tx, child.channel, self.key, self._fill(say.text), say.buttons,
                                      address=child.address, forgotten=self.forgotten)

    def _fill(self, text: str) -> str:
        for name, value in self.slots.items():
            text = text.replace("{" + name + "}", value)
        return text

    async def _submit(self, action: SubmitCase) -> bool:
        settings, tx = self.service.settings, self.tx
        count = await tx.conversations.count_report(self.key, tx.now.date().isoformat())
        if count > settings.daily_report_cap:
            self.replies = [Say(self.service.engine.say(action.language, "common.daily_cap"))]
            return False
        receipt = self._receipt_code(action.language)
        answers = dict(action.answers, media=[media.to_dict() for media in action.media])
        for _ in range(20):
            number = "".join(secrets.choice("0123456789") for _ in range(CASE_NUMBER_DIGITS))
            try:
                self.case = await tx.cases.create(
                    number=number, kind=action.kind, conversation_key=self.key, channel=self.child.channel,
                    category=action.answers.get("category"), age_group=action.answers.get("age_group"),
                    language=action.language, country=settings.country, consent=action.consent,
                    reply_wanted=action.reply_wanted, urgent=action.urgent, status="new", answers=answers,
                    receipt_hash=self.service.privacy.secret_hash(_normalise(receipt)),
                    checkin_due_at=tx.now + timedelta(days=settings.checkin_days) if action.reply_wanted else None,
                )
                break
            except DuplicateNumber:
                continue
        await self.service.outbox.case_card(tx, self.case)
        if action.kind == "link" and action.consent == "police":
            await self.service.outbox.case_card(tx, self.case, target="police")  # the child allowed it
        await tx.audit.add(self.case.id, "child", None, "submitted")
        await record_submitted(tx, self.case)  # statistics
        log.info("case submitted", extra={"case": self.case.number, "urgent": action.urgent})
        self.slots.update(case_number=self.case.number, receipt_code=receipt)
        return True

    def _receipt_code(self, lang: str) -> str:
        words = self.service.engine.say(lang, "receipt.words").split()
        return "-".join(secrets.choice(words) for _ in range(RECEIPT_WORDS))

    async def _relay(self, action: RelayToCase) -> None:
        if self.case is None:
            return
        await self.service.outbox.relay_from_child(
            self.tx, self.case, text=action.text, media=action.media.to_dict() if action.media else None,
            edited=action.edited, child_message_id=self.child.message_id,
        )

    async def _flag_urgent(self) -> None:
        if self.case is not None and not self.case.urgent:
            self.case = await self.tx.cases.update(self.case.id, urgent=True)
            await self.service.outbox.case_changed(self.tx, self.case, notice="operator.notice.urgent_child")
            await self.tx.audit.add(self.case.id, "child", None, "urgent")

    async def _forget(self) -> None:
        self.forgotten = True
        for case in await self.tx.cases.detach_conversation(self.key):
            if case.status not in ("closed", "spam"):
                await self.service.outbox.case_changed(self.tx, case, notice="operator.notice.forgotten")
            await self.tx.audit.add(case.id, "child", None, "forget")
        await self.tx.outbox.cancel_for_conversation(self.key)
        await self.tx.chat_messages.delete_for(self.key)

    async def _reconnect(self, state: State, code: str) -> State:
        engine, today = self.service.engine, self.tx.now.date().isoformat()
        state.receipt_failures = [day for day in state.receipt_failures if day == today]
        if len(state.receipt_failures) >= RECEIPT_TRIES_PER_DAY:
            # A receipt code opens a child's case: guessing must not be possible, even slowly.
            self.replies.append(Say(engine.say(state.lang, "receipt.too_many")))
            outcome = engine.show(state, "menu")
            self.replies += [action for action in outcome.actions if isinstance(action, Say)]
            return outcome.state
        case = await self.tx.cases.by_receipt(self.service.privacy.secret_hash(_normalise(code)))
        if case is None or case.status in ("closed", "spam"):
            state.receipt_failures.append(today)
            self.replies.append(Say(engine.say(state.lang, "receipt.bad")))
            outcome = engine.show(state, "receipt_entry")
        else:
            self.case = await self.tx.cases.update(case.id, conversation_key=self.key, channel=self.child.channel)
            await self.tx.audit.add(case.id, "child", None, "reconnected")
            await self.service.outbox.notice(self.tx, self.case, "operator.notice.reconnected")
            self.replies.append(Say(engine.say(state.lang, "receipt.ok", case_number=case.number)))
            outcome = engine.show(state, "menu", _context(self.case))
        self.replies += [action for action in outcome.actions if isinstance(action, Say)]
        return outcome.state

    async def _convert(self, agreed: bool) -> None:
        """The child's answer to "may your question become a report?": nothing changes without a yes."""
        case = self.case
        if case is None or case.kind != "consultation":
            return
        if agreed:
            self.case = case = await self.tx.cases.update(case.id, kind="report")
        await self.tx.audit.add(case.id, "child", None, "converted" if agreed else "not_converted")
        await self.service.outbox.case_changed(
            self.tx, case, notice="operator.notice.converted" if agreed else "operator.notice.not_converted")

    async def _rate(self, score: int) -> None:
        case = await self.tx.cases.latest_for(self.key)
        if case is not None and case.rating is None:
            await self.tx.cases.update(case.id, rating=score)
            await record_rating(self.tx, case, score)  # statistics
            label = self.service.engine.say(self.service.engine.default_language, RATINGS[score])
            await self.service.outbox.notice(self.tx, case, "operator.notice.rating", score=label)


def _normalise(code: str) -> str:
    """Receipt codes match whatever separators, spaces or capitals the child types."""
    return "-".join(re.findall(r"\w+", code.lower()))
