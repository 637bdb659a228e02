"""Everything a child does in their private chat is read straight from the update's JSON (the one way
in); anything else (staff chats, stray groups, membership changes) goes through aiogram's dispatcher."""
from __future__ import annotations

import pytest

from dialogs.model import EventKind, MediaKind
from handlers.telegram.child import child_turn
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


@pytest.mark.parametrize(("text", "kind", "read"), [
    ("hello", EventKind.TEXT, "hello"), ("/start", EventKind.COMMAND, "start"),
    ("/START@oberih_bot now", EventKind.COMMAND, "start"), ("/", EventKind.COMMAND, ""),
])
def test_typed_text_and_commands(text: str, kind: EventKind, read: str) -> None:
    turn = child_turn(message(text))
    assert turn is not None and turn.callback_id is None
    assert (turn.child.platform_id, turn.child.address, turn.child.message_id) == (42, {"chat_id": 42}, 7)
    assert (turn.event.kind, turn.event.text, turn.event.language_hint) == (kind, read, "uk")


PHOTO = [{"file_id": "small", "file_unique_id": "u1", "width": 1, "height": 1},
         {"file_id": "large", "file_unique_id": "u2", "width": 9, "height": 9}]


@pytest.mark.parametrize(("content", "kind", "file_ref"), [
    ({"photo": PHOTO, "caption": "look", "media_group_id": "g1"}, MediaKind.PHOTO, "large"),
    ({"document": {"file_id": "d", "file_unique_id": "u"}}, MediaKind.DOCUMENT, "d"),
    ({"voice": {"file_id": "v", "file_unique_id": "u", "duration": 3}}, MediaKind.VOICE, "v"),
    ({"video": {"file_id": "m", "file_unique_id": "u", "width": 1, "height": 1, "duration": 1}}, MediaKind.VIDEO, "m"),
    ({"animation": {"file_id": "a", "file_unique_id": "u", "width": 1, "height": 1, "duration": 1},
      "document": {"file_id": "a", "file_unique_id": "u"}}, MediaKind.ANIMATION, "a"),
])
def test_files_are_read_by_their_file_id(content: dict, kind: MediaKind, file_ref: str) -> None:
    turn = child_turn(message(None, **content))
    assert turn is not None and turn.event.kind is EventKind.MEDIA and turn.event.media is not None
    assert (turn.event.media.kind, turn.event.media.file_ref, turn.event.media.message_id) == (kind, file_ref, 7)
    assert turn.event.text == content.get("caption", "") and turn.event.media.group == content.get("media_group_id")


@pytest.mark.parametrize(("content", "kind"), [
    ({"sticker": {"file_id": "s"}}, MediaKind.STICKER), ({"location": {"latitude": 1, "longitude": 2}}, MediaKind.LOCATION),
    ({"contact": {"phone_number": "1", "first_name": "A"}}, MediaKind.CONTACT), ({"poll": {"id": "p"}}, MediaKind.POLL),
    ({"dice": {"emoji": "🎲", "value": 3}}, MediaKind.OTHER), ({}, MediaKind.OTHER),
])
def test_what_cannot_be_read_is_unsupported(content: dict, kind: MediaKind) -> None:
    turn = child_turn(message(None, **content))
    assert turn is not None and turn.event.kind is EventKind.UNSUPPORTED and turn.event.media.kind is kind


def test_an_edit_is_its_new_text() -> None:
    edited = message("I meant this")
    edited["edited_message"] = edited.pop("message")
    turn = child_turn(edited)
    assert turn is not None and (turn.event.kind, turn.event.text) == (EventKind.EDIT, "I meant this")
    assert turn.child.message_id is None


def test_a_button_press_with_its_spinner() -> None:
    turn = child_turn(button())
    assert turn is not None and turn.callback_id == "99"
    assert (turn.event.kind, turn.event.text, turn.event.language_hint) == (EventKind.BUTTON, "menu:report", "uk")
    assert (turn.child.platform_id, turn.child.address, turn.child.message_id) == (42, {"chat_id": 42}, None)


def test_everything_else_goes_through_aiogram() -> None:
    assert child_turn(message("hi", chat=GROUP)) is None  # a staff chat or a stray group
    assert child_turn(message("hi", person={**CHILD, "is_bot": True})) is None
    assert child_turn(message(None, chat=GROUP, photo=PHOTO)) is None  # a counsellor's photo
    assert child_turn(button(chat=GROUP)) is None  # a card's button in the operator chat
    edited = message("hi", chat=GROUP)
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
