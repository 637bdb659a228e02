"""Shared fixtures: the fake Bot API server with the operator and police forum chats."""
from __future__ import annotations

import pytest

from tests.fakes.telegram_api import FakeTelegram
from tests.support import TOKEN, staff_world


@pytest.fixture
async def tg():
    async with FakeTelegram(token=TOKEN) as fake:
        staff_world(fake)
        yield fake
