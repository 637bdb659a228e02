"""A child's typed text and button presses are read straight from the update's JSON; anything
else goes through aiogram's dispatcher. Both ways must see the same child and the same event."""
from __future__ import annotations

from aiogram.types import Update

from dialogs.model import EventKind
from handlers.telegram.child import child_turn
from handlers.telegram.convert import message_event
from handlers.telegram.inbound import update_lane

CHILD = {"id": 42, "is_bot": False, "first_name": "Marta", "language_code": "uk"}
PRIVATE = {"id": 42, "type": "private", "first_name": "Marta"}
GROUP = {"id": -100, "type": "supergroup", "title": "Operators"}


def message(text: str | None = "hello", chat: dict = PRIVATE, person: dict = CHILD, **more: object) -> dict:
    body = {"message_id": 7, "date": 1, "chat": chat, "from": person, **more}
    if text is not None:
        body["text"] = text
    return {"update_id": 1, "message": body}


def button(data: str = "menu:report", chat: dict = PRIVATE) -> dict:
    bot_message = {"message_id": 6, "date": 1, "chat": chat, "from": {"id": 1, "is_bot": True, "first_name": "Oberih"},
                   "text": "Pick one"}
    return {"update_id": 2, "callback_query": {"id": "99", "from": CHILD, "chat_instance": "1", "message": bot_message,
                                               "data": data}}


def test_typed_text_and_commands_read_as_aiogram_reads_them() -> None:
    for text in ("hello", "/start", "/start@oberih_bot now", "/"):
        turn = child_turn(message(text))
        assert turn is not None and turn.callback_id is None
        assert (turn.child.platform_id, turn.child.address, turn.child.message_id) == (42, {"chat_id": 42}, 7)
        parsed = Update.model_validate(message(text)).message
        assert turn.event == message_event(parsed)


def test_a_button_press_with_its_spinner() -> None:
    turn = child_turn(button())
    assert turn is not None and turn.callback_id == "99"
    assert (turn.event.kind, turn.event.text, turn.event.language_hint) == (EventKind.BUTTON, "menu:report", "uk")
    assert (turn.child.platform_id, turn.child.address, turn.child.message_id) == (42, {"chat_id": 42}, None)


def test_everything_else_goes_through_aiogram() -> None:
    assert child_turn(message("hi", chat=GROUP)) is None  # a staff chat or a stray group
    assert child_turn(message("hi", person={**CHILD, "is_bot": True})) is None
    assert child_turn(message(None, photo=[{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}])) is None
    assert child_turn(button(chat=GROUP)) is None  # a card's button in the operator chat
    edited = message("hi")
    edited["edited_message"] = edited.pop("message")
    assert child_turn(edited) is None
    assert child_turn({"update_id": 3, "my_chat_member": {"chat": PRIVATE}}) is None


def test_lanes_name_the_chat() -> None:
    def pseudonym(_kind: str, chat_id: object) -> str:
        return f"{chat_id}".ljust(30, "x")

    assert update_lane(message(), pseudonym) == update_lane(button(), pseudonym)  # the child's chat
    assert update_lane(message(chat=GROUP), pseudonym) != update_lane(message(), pseudonym)
    assert update_lane({"update_id": 4, "my_chat_member": {"chat": GROUP, "from": CHILD}}, pseudonym) \
        == update_lane(message(chat=GROUP), pseudonym)
