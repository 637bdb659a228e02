"""One child event: run the engine, carry out what it asks, feed the results back, queue what must
be sent — in one transaction."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.flood import FloodGauge
from bot.outbox import Outbox
from bot.privacy import Privacy
from bot.receipts import Receipts
from bot.reconnect import Reconnection, chats_of
from bot.statistics.record import record_checkin_answered, record_rating, record_submitted, record_turn
from dialogs.actions import (
    CaseSubmitted, ConvertCase, DeleteIncoming, Disown, FlagUrgent, Forget, Outcome, QuickExit, RateCase, ReceiptChecked,
    Reconnect, RelayToCase, ServiceEvent, SubmitCase, SubmitRefused, UrgentReason, UrgentWithdrawn,
)
from dialogs.engine import Engine
from dialogs.model import Context, EventKind, Incoming, NewsKind, OpenCase, Say, State
from dialogs.payloads import RATINGS
from storage import FINISHED, KEEP, Case, CaseKind, CaseStatus, Consent, DuplicateNumber, Transaction
from storage.repositories.cases import OpenCaseNews

log = logging.getLogger(__name__)

CASE_NUMBER_DIGITS = 6
URGENT_NOTICES = {UrgentReason.DANGER_WORDS: "operator.notice.urgent_child",
                  UrgentReason.SAID_NOT_SAFE: "operator.notice.urgent_not_safe"}


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
        self.receipts = Receipts(privacy, outbox, settings.receipt_wrong_codes_per_hour)
        self.reconnection = Reconnection(engine, outbox)
        # Past the per-minute limit everything is still stored and relayed; only replies pause.
        self.flood = FloodGauge(settings.child_messages_per_minute)

    async def handle(self, tx: Transaction, child: Child, event: Incoming) -> None:
        key = self.privacy.pseudonym(child.channel, child.platform_id)
        conversation, may_have_cases = await tx.conversations.for_step(key)
        previous = State.from_dict(conversation.state) if conversation else None
        cases = await tx.cases.open_with_news(key) if may_have_cases else []
        turn = _Turn(self, tx, child, key, cases)
        outcome = self.engine.handle(previous, event, turn.context())
        await record_turn(tx, previous, outcome.state, child.channel)  # statistics
        for news in cases:
            await record_checkin_answered(tx, news.case)  # statistics
        state = await turn.perform(outcome)
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
        typed = event.kind in (EventKind.TEXT, EventKind.MEDIA, EventKind.UNSUPPORTED)  # button presses don't count
        flood = self.flood.excess(key) if typed else 0
        await turn.flush(flood)

    def online(self, now: datetime) -> tuple[bool, tuple[tuple[str, bool], ...]]:
        """Whether counsellors answer now: the country's office hours, and each region's own."""
        hours = self.engine.content.office_hours.get(self.settings.country)
        regions = tuple((r.key, r.office_hours.is_open(now)) for r in self.engine.flows.regions if r.office_hours)
        return hours is None or hours.is_open(now), regions


class _Turn:
    """Carries out one outcome's actions, feeding results back to the engine; collects the child's messages."""

    def __init__(self, service: ConversationService, tx: Transaction, child: Child, key: str,
                 cases: list[OpenCaseNews]) -> None:
        self.service, self.tx, self.child, self.key, self.cases = service, tx, child, key, cases
        self.replies: list[Say] = []
        self.forgotten = False
        self.deletions: list[int] = []
        self.quick_exit = False
        self.lang = service.engine.default_language

    def context(self) -> Context:
        return Context(tuple(_open_case(news) for news in self.cases), *self.service.online(self.tx.now))

    async def perform(self, outcome: Outcome) -> State:
        state = outcome.state
        self.lang = state.lang
        for action in outcome.actions:
            match action:
                case Say():
                    self.replies.append(action)
                case SubmitCase():
                    state = await self._feed(state, await self._submit(action))
                case Reconnect():
                    state = await self._feed(state, await self._reconnect(action.code))
                case Disown():
                    case = self._by_number(action.case_number)
                    if case is not None:
                        await self.service.reconnection.disown(self.tx, case, self.key)
                case RelayToCase():
                    await self._relay(action)
                case FlagUrgent():
                    await self._flag_urgent(action.reason)
                case UrgentWithdrawn():
                    for case in self._open(urgent=True):
                        await self.service.outbox.notice(self.tx, case, "operator.notice.misunderstood")
                case Forget():
                    await self._forget()
                case QuickExit():
                    self.quick_exit = True
                    self.deletions += await self.tx.chat_messages.for_conversation(self.key)
                    self.deletions += [self.child.message_id] if self.child.message_id else []
                    await self.tx.chat_messages.delete_for(self.key)
                case DeleteIncoming():
                    self.deletions += [self.child.message_id] if self.child.message_id else []
                case RateCase():
                    await self._rate(action)
                case ConvertCase():
                    await self._convert(action)
        return state

    async def _feed(self, state: State, result: ServiceEvent) -> State:
        """Tell the engine what came of its request; it says the rest (the case number, a code's result)."""
        return await self.perform(self.service.engine.handle(state, result, self.context()))

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
            await outbox.say_to_child(self.tx, child.channel, self.key, say.text, say.buttons,
                                      address=child.address, forgotten=self.forgotten)

    def _open(self, urgent: bool | None = None) -> list[Case]:
        return [news.case for news in self.cases if urgent is None or news.case.urgent == urgent]

    def _by_number(self, number: str | None) -> Case | None:
        return next((case for case in self._open() if case.number == number), None)

    async def _submit(self, action: SubmitCase) -> CaseSubmitted | SubmitRefused:
        settings, tx = self.service.settings, self.tx
        if await tx.conversations.count_report(self.key, tx.now.date().isoformat()) > settings.daily_report_cap:
            return SubmitRefused()
        code, code_hash = await self.service.receipts.new()
        answers = dict(action.answers, media=[media.to_dict() for media in action.media])
        for _ in range(20):
            number = "".join(secrets.choice("0123456789") for _ in range(CASE_NUMBER_DIGITS))
            try:
                case = await tx.cases.create(
                    number=number, kind=action.kind, conversation_key=self.key, channel=self.child.channel,
                    category=action.answers.get("category"), age_group=action.answers.get("age_group"),
                    language=action.language, country=settings.country, region=action.region, consent=action.consent,
                    reply_wanted=action.reply_wanted, urgent=action.urgent, status=CaseStatus.NEW, answers=answers,
                    receipt_hash=code_hash,
                    checkin_due_at=tx.now + timedelta(days=settings.checkin_days) if action.reply_wanted else None,
                )
                break
            except DuplicateNumber:
                continue
        await self.service.outbox.case_card(tx, case)
        if action.kind == CaseKind.LINK and action.consent == Consent.POLICE:
            await self.service.outbox.case_card(tx, case, target="police")  # the child allowed it
        await tx.audit.add(case.id, "child", None, "submitted")
        await record_submitted(tx, case)  # statistics
        log.info("case submitted", extra={"case": case.number, "urgent": action.urgent})
        self.cases.append(OpenCaseNews(case, None, None))
        return CaseSubmitted(case.number, code)

    async def _reconnect(self, code: str) -> ReceiptChecked:
        receipts, child = self.service.receipts, self.child
        outcome, case = await receipts.check(self.tx, receipts.sender(child.channel, child.platform_id), code)
        if case is None:
            return ReceiptChecked(outcome)
        outcome = await self.service.reconnection.attach(self.tx, case, self.key, child.channel)
        self.cases = await self.tx.cases.open_with_news(self.key)
        return ReceiptChecked(outcome, case.number)

    async def _relay(self, action: RelayToCase) -> None:
        case = self._by_number(action.case_number)
        if case is None:
            return
        await self.service.outbox.relay_from_child(
            self.tx, case, text=action.text, media=action.media.to_dict() if action.media else None,
            edited=action.edited, child_message_id=self.child.message_id,
        )

    async def _flag_urgent(self, reason: UrgentReason) -> None:
        """Danger concerns the child, not one report: every open case of theirs is raised."""
        for case in self._open():
            if not case.urgent:
                raised = await self.tx.cases.update(case.id, urgent=True)
                self._replace(raised)
                await self.service.outbox.case_changed(self.tx, raised, notice=URGENT_NOTICES[reason])
                await self.tx.audit.add(case.id, "child", None, "urgent")
            elif reason is UrgentReason.SAID_NOT_SAFE:  # already urgent, but staff should hear it
                await self.service.outbox.notice(self.tx, case, URGENT_NOTICES[reason])

    def _replace(self, case: Case) -> None:
        self.cases = [OpenCaseNews(case, n.staff_action, n.staff_at) if n.case.id == case.id else n
                      for n in self.cases]

    async def _forget(self) -> None:
        self.forgotten = True
        cases = await self.tx.cases.detach_conversation(self.key)
        joined = await self.tx.case_chats.delete_for_conversation(self.key)  # opened here with a receipt code
        # What waited unprocessed (parked) goes too; staff learn that something of theirs was never read.
        lost = await self.tx.inbox.forget_lane(self.service.privacy.inbox_lane(self.child.channel, self.child.platform_id))
        for case in cases:
            if case.status not in FINISHED:
                notice = "operator.notice.forgotten_unread" if lost else "operator.notice.forgotten"
                await self.service.outbox.case_changed(self.tx, case, notice=notice)
            await self.tx.audit.add(case.id, "child", None, "forget")
        for case_id in joined:  # a case this chat opened with its code: staff hear only if no chat is left
            case = await self.tx.cases.get(case_id)
            if case is not None and case.status not in FINISHED and not await chats_of(self.tx, case):
                await self.service.outbox.case_changed(self.tx, case, notice="operator.notice.forgotten")
        theirs = [case.id for case in cases] + joined
        await self.tx.case_messages.delete_for_cases(theirs)
        await self.tx.outbox.forget_child(self.key, theirs)
        await self.tx.chat_messages.delete_for(self.key)

    async def _convert(self, action: ConvertCase) -> None:
        """The child's answer to "may your question become a report?": nothing changes without a yes."""
        questions = [case for case in self._open() if case.kind == CaseKind.CONSULTATION]
        case = self._by_number(action.case_number) if action.case_number else (questions[-1] if questions else None)
        if case is None or case.kind != CaseKind.CONSULTATION:
            return
        if action.agreed:
            case = await self.tx.cases.update(case.id, kind=CaseKind.REPORT)
        await self.tx.audit.add(case.id, "child", None, "converted" if action.agreed else "not_converted")
        await self.service.outbox.case_changed(
            self.tx, case, notice="operator.notice.converted" if action.agreed else "operator.notice.not_converted")

    async def _rate(self, action: RateCase) -> None:
        case = await (self.tx.cases.by_number(action.case_number) if action.case_number
                      else self.tx.cases.latest_for(self.key))
        if case is None or case.rating is not None:
            return
        if self.key in {chat.conversation_key for chat in await chats_of(self.tx, case)}:  # a chat of the case
            await self.tx.cases.update(case.id, rating=action.score)
            await record_rating(self.tx, case, action.score)  # statistics
            engine = self.service.engine
            label = engine.say(engine.default_language, RATINGS[action.score])
            await self.service.outbox.notice(self.tx, case, "operator.notice.rating", score=label)


def _open_case(news: OpenCaseNews) -> OpenCase:
    case = news.case
    kind = NewsKind.MESSAGE if news.staff_action == "answer" else NewsKind.CHANGE if news.staff_action else NewsKind.SENT
    when = news.staff_at if news.staff_at else case.created_at
    # A link report's kind (e.g. abuse material) is its category for the dialog: no picture is taken for it.
    category = case.category or case.answers.get("link_kind")
    return OpenCase(case.number, case.status, case.reply_wanted, category, case.kind, kind, when.date())

