"""Receipt codes (README, Security: receipts): made for a new case, checked when a child types one.

A code is 18 digits read in groups of three ("482 915 …"): 17 random digits (56 bits) and a Damm
check digit, which catches every single wrong digit and every swap of two neighbours, so a typo is
answered "check the code" and never counts as a guess. Spaces, dashes and dots are ignored.

Only a slow hash is stored: scrypt with a salt derived from the pepper (ID_PEPPER), one for the whole
deployment. A per-case salt would need a lookup index beside the hash, and a fast keyed index would
let whoever holds the pepper test codes at HMAC speed, skipping scrypt; with the derived salt the one
stored value is both the index and the proof, and testing a code always costs one scrypt. Without
the pepper nothing can be tested at all; with it, 2**56 codes at one scrypt each is out of reach.

Guessing online is stopped twice, before anything is looked up: per sender (TRIES_PER_DAY wrong codes
in 24 hours, counted under a keyed hash of the platform id of its own, in a table /forget does not
touch) and for everyone (RECEIPT_WRONG_CODES_PER_HOUR: past it, receipt entry pauses until the hour's
count falls, and staff are told once in General). Word codes of cases sent before stay valid.
"""
from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from datetime import timedelta

from bot.outbox import Outbox
from bot.privacy import Privacy
from dialogs.actions import ReceiptOutcome
from storage import FINISHED, Case, Transaction

RANDOM_DIGITS = 17
GROUP = 3
TRIES_PER_DAY = 5
RECEIPT_WINDOW = timedelta(hours=24)  # wrong codes count against their sender this long
FLOOD_WINDOW = timedelta(hours=1)
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LENGTH = 2**10, 8, 1, 28  # 1 MiB and about 2 ms per code (README, Security)
READY_AHEAD = 4  # codes hashed ahead of need (a burst of reports takes them without waiting)
OLD_WORDS = 3  # a word code of a case sent before digit codes
PREFIX = "s1:"  # a digit code's hash; the old word codes' keyed hashes are bare hex
IGNORED = re.compile(r"[\s\-‐‑‒–—―_.·,/]+")
# Damm's quasigroup of order 10: each row and column holds every digit once, no weak anti-symmetry.
DAMM = ("0317598642", "7092154863", "4206871359", "1750983426", "6123045978",
        "3674209581", "5869720134", "8945362017", "9438617205", "2581436790")


def damm(digits: str) -> int:
    """The Damm check digit of `digits`; of digits that end with their own check digit, 0."""
    interim = 0
    for digit in digits:
        interim = int(DAMM[interim][int(digit)])
    return interim


def new_code() -> str:
    """17 random digits and their check digit, in groups of three."""
    body = f"{secrets.randbelow(10 ** RANDOM_DIGITS):0{RANDOM_DIGITS}d}"
    digits = body + str(damm(body))
    return " ".join(digits[start:start + GROUP] for start in range(0, len(digits), GROUP))


def digits_of(text: str) -> str | None:
    """The code's digits however they were typed; None if the text is no digit code at all (a word code)."""
    bare = IGNORED.sub("", text)
    if not any(char.isdigit() for char in bare):
        return None
    return "".join(str(int(char)) if char.isdigit() else char for char in bare)  # other scripts' digits too


def well_formed(digits: str) -> bool:
    return len(digits) == RANDOM_DIGITS + 1 and digits.isascii() and digits.isdigit() and damm(digits) == 0


def _words(code: str) -> str:
    """An old word code as it was hashed: whatever separators, spaces or capitals the child types."""
    return "-".join(re.findall(r"\w+", code.lower()))


class Receipts:
    """Codes made and checked; wrong ones counted per sender and overall."""

    def __init__(self, privacy: Privacy, outbox: Outbox, wrong_codes_per_hour: int) -> None:
        self.privacy, self.outbox, self.per_hour = privacy, outbox, wrong_codes_per_hour
        self._salt = privacy.derived("receipt codes")
        self._ready: list[tuple[str, str]] = []  # codes hashed ahead, in memory only, each given out once
        self._making: asyncio.Task[None] | None = None

    async def new(self) -> tuple[str, str]:
        """A new code to say to the child once, and the hash to store. Codes are hashed ahead, beside the
        event loop, so a child sending a report does not wait for scrypt inside its transaction."""
        pair = self._ready.pop() if self._ready else await self._make()
        if self._making is None or self._making.done():
            self._making = asyncio.get_running_loop().create_task(self._make_ahead())
        return pair

    async def _make(self) -> tuple[str, str]:
        code = new_code()
        return code, await self.hash(IGNORED.sub("", code))

    async def _make_ahead(self) -> None:
        while len(self._ready) < READY_AHEAD:
            self._ready.append(await self._make())

    async def hash(self, digits: str) -> str:
        """The slow hash, in a thread: scrypt releases the GIL, so its milliseconds of CPU run beside the
        event loop instead of holding every other child's answer back."""
        return await asyncio.to_thread(self._scrypt, digits)

    def _scrypt(self, digits: str) -> str:
        scrypt = hashlib.scrypt(digits.encode(), salt=self._salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                                dklen=SCRYPT_LENGTH)
        return PREFIX + scrypt.hex()

    def sender(self, channel: str, platform_id: object) -> str:
        """Whom wrong codes are counted against: a keyed hash that matches no conversation's key."""
        return self.privacy.pseudonym(f"receipt:{channel}", platform_id)

    async def check(self, tx: Transaction, sender: str, text: str) -> tuple[ReceiptOutcome, Case | None]:
        """The open case the code opens (FOUND), or why not. Past a limit nothing is looked up."""
        digits = digits_of(text)
        if (not well_formed(digits)) if digits is not None else _words(text).count("-") != OLD_WORDS - 1:
            return ReceiptOutcome.CHECK_CODE, None  # a typo (or no code at all), not a guess
        if await tx.receipt_failures.count(tx.now - RECEIPT_WINDOW, sender) >= TRIES_PER_DAY:
            return ReceiptOutcome.TOO_MANY, None
        if await tx.receipt_failures.count(tx.now - FLOOD_WINDOW) >= self.per_hour:
            return ReceiptOutcome.PAUSED, None
        stored = await self.hash(digits) if digits is not None else self.privacy.secret_hash(_words(text))
        case = await tx.cases.by_receipt(stored)
        if case is not None and case.status not in FINISHED:
            return ReceiptOutcome.FOUND, case
        await tx.receipt_failures.add(sender)
        if await tx.receipt_failures.count(tx.now - FLOOD_WINDOW) == self.per_hour:  # the pause begins: said once
            await self.outbox.general(tx, "operator.notice.receipts_paused", count=self.per_hour)
        return ReceiptOutcome.NOT_FOUND, None
