"""A child's files reach staff anonymous: documents under a neutral name, pictures without metadata."""
from __future__ import annotations

import io

from PIL import Image

from bot.files import clean
from tests.fakes.telegram_api import FakeTelegram
from tests.support import OPERATOR, Child, bot_settings, report, running_bot, settled

REVEALING = "Zlata_Kovalenko_7B_IMG_2231_GPS.jpg"


def photo_with_metadata() -> bytes:
    """A JPEG as a phone writes it: the camera, the place (GPS), a comment with a name, a colour profile."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Apple", "iPhone 13", 6  # make, model, orientation
    exif[0x8825] = {1: "N", 2: (50.0, 27.0, 1.5), 3: "E", 4: (30.0, 31.0, 2.5)}  # GPS: Kyiv
    out = io.BytesIO()
    Image.new("RGB", (60, 40), (10, 120, 200)).save(out, "JPEG", exif=exif.tobytes(), comment=b"Zlata Kovalenko",
                                                    icc_profile=b"ICC-PROFILE" * 20)
    return out.getvalue()


def uploaded(tg: FakeTelegram, message_data: dict) -> tuple[str | None, bytes]:
    document = message_data.get("document") or {}
    photo = (message_data.get("photo") or [{}])[-1]
    file = tg.files[document.get("file_id") or photo.get("file_id")]
    return document.get("file_name"), file.content


def test_a_picture_loses_its_metadata_and_its_name() -> None:
    cleaned = clean(photo_with_metadata(), "file-2")
    assert cleaned.name == "photo-2.jpg" and cleaned.picture
    for trace in (b"Apple", b"iPhone", b"Zlata", b"ICC-PROFILE", b"Exif"):
        assert trace not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as picture:
        assert picture.size == (40, 60) and not picture.getexif()  # turned upright, no EXIF left
    assert clean(b"%PDF-1.7 ...", "file-3").name == "file-3.pdf"
    assert clean(b"\x00\x01 whatever", "file-4").name == "file-4.bin"


async def test_screenshots_sent_as_files_reach_staff_under_neutral_names_without_metadata(tmp_path, tg) -> None:
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, 1501)
        evidence = photo_with_metadata()

        async def screenshots() -> None:
            tg.user_sends_document(1501, file_name=REVEALING, mime_type="image/jpeg", data=evidence)
            tg.user_sends_document(1501, file_name="Zlata_Kovalenko_school_report.pdf", data=b"%PDF-1.7 report")
            await settled(app, tg)

        await report(child, before_summary=screenshots)
        await settled(app, tg)
        files = [m for m in tg.messages_in(OPERATOR) if m.from_bot and ("document" in m.data or "photo" in m.data)]
        assert len(files) == 2
        names_and_bytes = [uploaded(tg, m.data) for m in files]
        assert [name for name, _ in names_and_bytes] == ["photo-1.jpg", "file-2.pdf"]
        picture = names_and_bytes[0][1]
        assert b"Exif" not in picture and b"Apple" not in picture and b"Zlata" not in picture
        everything = repr([m.data for m in tg.messages_in(OPERATOR)])
        assert "Zlata" not in everything and "Kovalenko" not in everything


async def test_a_file_sent_to_an_open_case_goes_under_a_neutral_name(tmp_path, tg) -> None:
    async with running_bot(bot_settings(tmp_path, tg)) as app:
        child = Child(app, tg, 1502)
        await report(child)
        await child.press("common.to_menu")
        await child.press("menu.report")
        await child.press("report.add_to_case")
        tg.user_sends_document(1502, file_name=REVEALING, mime_type="image/jpeg", data=photo_with_metadata(),
                               caption="this is him")
        await settled(app, tg)
        relayed = [m for m in tg.messages_in(OPERATOR) if m.from_bot and "document" in m.data][-1]
        name, data = uploaded(tg, relayed.data)
        assert name == "photo.jpg" and b"Exif" not in data and "this is him" in relayed.caption
