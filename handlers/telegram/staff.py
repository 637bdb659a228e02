"""The operator and police chats: card buttons, staff answers in case topics, and admin commands."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import CallbackQuery, Message

from bot.cards import CardPress, card_buttons
from bot.casework import Casework, Refused
from bot.permissions import CaseAction
from bot.staff_chats import ChatPlace, StaffChats, topic_case
from dialogs.engine import Engine
from handlers.telegram.convert import media_ref
from handlers.telegram.regions import on_queue, on_transfer
from handlers.telegram.transport import markup
from storage import Case, Role, Target, Transaction

ROLES = tuple(role.value for role in Role)  # /grant ROLE: moderator, counsellor, police, coordinator, admin


class InStaffChat(Filter):
    """Passes only updates from a configured operator or police chat (a region's too), naming which one."""

    async def __call__(self, event: Message | CallbackQuery, staff_chats: StaffChats) -> bool | dict[str, Any]:
        chat = event.chat if isinstance(event, Message) else event.message.chat if event.message else None
        place = staff_chats.place_of(chat.id) if chat is not None else None
        return {"target": place.target, "place": place} if place is not None else False


async def card_press(callback: CallbackQuery) -> bool | dict[str, Any]:
    """Passes a card button's press, parsed (a coroutine: aiogram runs plain callables in a thread)."""
    press = CardPress.parse(callback.data)
    return {"press": press} if press is not None else False


async def on_case_button(callback: CallbackQuery, press: CardPress, tx: Transaction, casework: Casework,
                         staff_chats: StaffChats, target: Target, place: ChatPlace) -> None:
    actor = await casework.actor(tx, callback.from_user.id)
    case = await tx.cases.get(press.case_id)
    action = press.action
    refused = casework.engine.say(casework.lang, "operator.refused")
    if actor is None or case is None or staff_chats.route(target, case.region) != place.region:  # its own chat only
        _answer(tx, callback, refused)
        return
    try:
        casework.check(actor, action, case, target)
    except Refused:
        _answer(tx, callback, refused)
        return
    if action in (CaseAction.CLOSE, CaseAction.CANCEL):
        # Choosing an outcome is a two-tap menu on the card itself; nothing changes until an outcome is chosen.
        keyboard = markup(card_buttons(casework.engine, casework.lang, case, staff_chats.police_enabled,
                                       closing=action is CaseAction.CLOSE))
        tx.after_commit(lambda: _quietly(callback.message.edit_reply_markup(reply_markup=keyboard)))
        _answer(tx, callback)
        return
    try:
        await casework.act(tx, actor, case, action, press.argument, target)
    except Refused as refusal:
        _answer(tx, callback, casework.engine.say(casework.lang, refusal.key))
        return
    _answer(tx, callback)


async def on_grant(message: Message, command: CommandObject, tx: Transaction, casework: Casework) -> None:
    if not await _is_admin(message, tx, casework):
        return
    args = (command.args or "").split(maxsplit=1)
    member = message.reply_to_message.from_user if message.reply_to_message else None
    if not args or args[0] not in ROLES or member is None or member.is_bot:
        _reply(tx, message, casework.engine.say(casework.lang, "operator.grant.usage"))
        return
    alias = args[1].strip()[:32] if len(args) > 1 else member.first_name[:32]
    await tx.staff.grant(member.id, args[0], alias, message.from_user.id)
    await tx.audit.add(None, "admin", message.from_user.id, "grant", f"{alias}: {args[0]}")
    _reply(tx, message, casework.engine.say(casework.lang, "operator.grant.ok", alias=alias, role=args[0]))


async def on_revoke(message: Message, tx: Transaction, casework: Casework) -> None:
    if not await _is_admin(message, tx, casework):
        return
    member = message.reply_to_message.from_user if message.reply_to_message else None
    existing = await tx.staff.get(member.id) if member else None
    if existing is None:
        _reply(tx, message, casework.engine.say(casework.lang, "operator.revoke.usage"))
        return
    await tx.staff.revoke(member.id)
    await tx.audit.add(None, "admin", message.from_user.id, "revoke", existing.alias)
    _reply(tx, message, casework.engine.say(casework.lang, "operator.revoke.ok", alias=existing.alias))


async def on_staff(message: Message, tx: Transaction, casework: Casework) -> None:
    if not await _is_admin(message, tx, casework):
        return
    members = await tx.staff.all()
    say = casework.engine.say
    if not members:
        _reply(tx, message, say(casework.lang, "operator.staff.empty"))
        return
    listing = "\n".join(f"• {member.alias} — {member.role}" for member in members)
    _reply(tx, message, say(casework.lang, "operator.staff.list", list=listing))


async def on_audit(message: Message, command: CommandObject, tx: Transaction, casework: Casework,
                   target: Target, place: ChatPlace, staff_chats: StaffChats) -> None:
    if not await _is_admin(message, tx, casework):
        return
    case = await _topic_case(message, tx, place, staff_chats)
    if case is None and command.args:
        case = await tx.cases.by_number(command.args.strip())
    if case is None:
        _reply(tx, message, casework.engine.say(casework.lang, "operator.audit.usage"))
        return
    entries = await tx.audit.for_case(case.id)
    listing = "\n".join(f"{e.at:%Y-%m-%d %H:%M} · {e.actor_alias} · {e.action}" + (f" · {e.detail}" if e.detail else "")
                        for e in entries)
    _reply(tx, message, casework.engine.say(casework.lang, "operator.audit.title", case_number=case.number, list=listing))


async def on_reload(message: Message, tx: Transaction, casework: Casework,
                    reload_content: Callable[[], list[str]]) -> None:
    """Admins reload content/ after editing it; a broken file keeps the old content live."""
    if not await _is_admin(message, tx, casework):
        return
    mistakes = reload_content()
    say = casework.engine.say
    if mistakes:
        _reply(tx, message, say(casework.lang, "operator.reload.failed", count=len(mistakes),
                                list="\n".join(mistakes[:10])))
    else:
        _reply(tx, message, say(casework.lang, "operator.reload.ok"))


async def on_prepared(message: Message, command: CommandObject, tx: Transaction, casework: Casework,
                   target: Target, place: ChatPlace, staff_chats: StaffChats) -> None:
    """A prepared answer or a tip card from content/, sent to the child in their own language."""
    actor = await casework.actor(tx, message.from_user.id)
    case = await _topic_case(message, tx, place, staff_chats)
    if actor is None or case is None:
        return
    engine, name = casework.engine, (command.args or "").strip()
    if command.command == "canned":
        prefix, names = "operator.canned_texts.", _names(engine, "operator.canned_texts.")
        usage = "operator.canned.unknown" if name else "operator.canned.usage"
    else:
        prefix, names = "tips.", sorted({key.split(".")[1] for key in engine.content.texts[casework.lang]
                                          if key.startswith("tips.") and key.endswith(".card1")})
        usage = "operator.tip.usage"
    if name not in names:
        await casework.outbox.notice(tx, case, usage, target=target, list=", ".join(names))
        return
    text = engine.say(case.language, f"{prefix}{name}" if command.command == "canned" else f"tips.{name}.card1")
    refusal = await casework.answer_child(tx, actor, case, target, text)
    if refusal:
        await casework.outbox.notice(tx, case, refusal, target=target)


async def on_staff_edit(message: Message, tx: Transaction, casework: Casework,
                   target: Target, place: ChatPlace, staff_chats: StaffChats) -> None:
    case = await _topic_case(message, tx, place, staff_chats)
    if case is not None and await casework.actor(tx, message.from_user.id) is not None:
        await casework.outbox.notice(tx, case, "operator.notice.edit_not_relayed", target=target)


async def on_topic_message(message: Message, tx: Transaction, casework: Casework,
                   target: Target, place: ChatPlace, staff_chats: StaffChats) -> None:
    """A staff member writes in a case topic: it reaches the child, signed by role, never by name."""
    if message.from_user is None or message.from_user.is_bot:
        return
    actor = await casework.actor(tx, message.from_user.id)
    if actor is None:
        return  # not staff: never relayed
    case = await _topic_case(message, tx, place, staff_chats)
    if case is None:
        # Nothing goes to a child from General; say so to someone who answers the bot there.
        replied = message.reply_to_message
        if not message.is_topic_message and replied is not None and replied.from_user and replied.from_user.is_bot:
            _reply(tx, message, casework.engine.say(casework.lang, "operator.general_hint"))
        return
    if message.text is not None:
        if message.text.startswith("//"):
            return  # an internal note between staff
        refusal = await casework.answer_child(tx, actor, case, target, message.text)
    elif (media := media_ref(message.model_dump(by_alias=True, exclude_none=True))) is not None:
        file = {"message_id": message.message_id, "kind": str(media.kind), "file_ref": media.file_ref}
        refusal = await casework.answer_child(tx, actor, case, target, message.caption, file)
    else:
        refusal = "operator.notice.unsupported"
    if refusal:
        await casework.outbox.notice(tx, case, refusal, target=target)


async def _topic_case(message: Message, tx: Transaction, place: ChatPlace, chats: StaffChats) -> Case | None:
    """The case of the topic the message is in: each chat numbers its topics on its own."""
    if not message.is_topic_message or message.message_thread_id is None:
        return None
    return await topic_case(tx, place, chats, message.message_thread_id)


async def _is_admin(message: Message, tx: Transaction, casework: Casework) -> bool:
    actor = await casework.actor(tx, message.from_user.id) if message.from_user else None
    if actor is not None and actor.role is Role.ADMIN:
        return True
    _reply(tx, message, casework.engine.say(casework.lang, "operator.refused"))
    return False


def _names(engine: Engine, prefix: str) -> list[str]:
    return sorted(key.removeprefix(prefix) for key in engine.content.texts[engine.default_language] if key.startswith(prefix))


# Replies wait for the commit (Transaction.after_commit): a transaction never waits on the network, and
# nothing is said about an action that did not happen.
def _reply(tx: Transaction, message: Message, text: str) -> None:
    tx.after_commit(lambda: message.reply(text))


def _answer(tx: Transaction, callback: CallbackQuery, text: str | None = None) -> None:
    tx.after_commit(lambda: _quietly(callback.answer(text, show_alert=bool(text))))


async def _quietly(call: Awaitable[object]) -> None:
    try:
        await call
    except TelegramAPIError:
        pass  # a button's spinner times out by itself; an old card keeps its buttons


def staff_router() -> Router:
    """A fresh router (aiogram attaches a router to one dispatcher only)."""
    router = Router(name="staff")
    for observer in (router.message, router.edited_message, router.callback_query):
        observer.filter(InStaffChat())
    router.callback_query.register(on_case_button, card_press)
    router.message.register(on_grant, Command("grant"))
    router.message.register(on_revoke, Command("revoke"))
    router.message.register(on_staff, Command("staff"))
    router.message.register(on_audit, Command("audit"))
    router.message.register(on_reload, Command("reload"))
    router.message.register(on_prepared, Command("canned", "tip"))
    router.message.register(on_transfer, Command("transfer"))  # handlers/telegram/regions.py
    router.message.register(on_queue, Command("queue"))
    router.edited_message.register(on_staff_edit)
    router.message.register(on_topic_message)
    return router
