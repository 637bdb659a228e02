"""How long the crisis check takes per message: `python -m tests.crisis.measure` (prints, asserts nothing)."""
from __future__ import annotations

import time
from pathlib import Path

from dialogs.crisis import CrisisMatcher
from dialogs.validate import load_content

ROOT = Path(__file__).resolve().parent.parent.parent
MESSAGES = (
    "Привіт, мені 13 і я не знаю що робити. Один хлопець з інсти попросив мої фото, я скинула, а тепер він "
    "каже що розішле їх всім у класі якщо я не заплачу 500 гривень до вечора. Я боюся казати мамі 😭😭",
    "hi so basically theres this guy i met on discord and he keeps messaging me every day asking where i "
    "live and what school i go to and sending me weird pics and i told him to stop but he wont lol idk",
    "Sveiki, man ir 15 gadi. Klasesbiedri raksta sliktas lietas par mani grupas čatā un liek manas bildes "
    "ar smieklīgiem parakstiem. Es negribu iet uz skolu, bet mamma neklausās. Ko lai daru?",
    "Pershendetje, dikush krijoi nje profil fals me fotot e mia dhe po u shkruan shokeve te mi gjera te "
    "keqija. Kam frike se do e shohin prinderit. Si mund ta fshij?",
)


def main() -> None:
    started = time.perf_counter()
    matcher = CrisisMatcher(load_content(ROOT / "content").crisis_words)
    compiled = time.perf_counter() - started
    print(f"content load and crisis phrases compiled: {compiled * 1000:.0f} ms")
    long_message = " ".join(MESSAGES)
    for label, messages in (("a message of", MESSAGES), ("one long message of", (long_message,))):
        rounds = 4000 // len(messages) // 4
        # The best of five runs: on a shared machine the others measure the neighbours.
        best = min(_seconds(matcher, messages, rounds) for _ in range(5))
        length = sum(map(len, messages)) // len(messages)
        print(f"{label} about {length} characters: {best / (rounds * len(messages)) * 1e6:.0f} µs")


def _seconds(matcher: CrisisMatcher, messages: tuple[str, ...], rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        for message in messages:
            matcher.matches(message)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
