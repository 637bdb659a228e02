"""The operator chat in the console: a trainer (or an admin trying a changed flow) accepts, takes,
answers, escalates and closes a case the way staff do in Telegram, through the same casework."""
from __future__ import annotations

from bot.cards import card_text
from bot.casework import Actor, CaseAction, Casework, Refused
from handlers.console.transport import ConsoleTransport
from storage import Database, Outcome, Role, Target, Transaction

STAFF_PREFIX = "!"
# The console plays one staff member who holds every role.
TRAINER = Actor(user_id=1, role=Role.ADMIN, alias="Trainer")
ACTIONS = {"accept": CaseAction.ACCEPT, "spam": CaseAction.SPAM, "urgent": CaseAction.URGENT,
           "take": CaseAction.TAKE, "escalate": CaseAction.ESCALATE, "convert": CaseAction.CONVERT}
ANSWERS = {"answer": Target.OPERATOR, "police": Target.POLICE}
HELP = f"""The operator chat, played here (you hold every role):
  !cases                  the queue: cases in progress, urgent first
  !card NUMBER            a case's card
  !{' NUMBER   !'.join(ACTIONS)} NUMBER
  !close NUMBER OUTCOME   OUTCOME: {', '.join(outcome.value for outcome in Outcome)}
  !answer NUMBER TEXT     the counsellor's answer to the child
  !police NUMBER TEXT     a police officer's answer (an escalated case whose child allowed police)"""


async def on_staff_line(db: Database, casework: Casework, out: ConsoleTransport, line: str) -> None:
    """One operator-chat command typed after "!"."""
    command, _, rest = line.partition(" ")
    number, _, argument = rest.strip().partition(" ")
    async with db.transaction() as tx:
        if command == "cases":
            await _queue(tx, out)
            return
        if command not in (*ACTIONS, *ANSWERS, "close", "card"):
            out.say(HELP)
            return
        case = await tx.cases.by_number(number) if number else None
        if case is None:
            out.say(f"(no case {number})" if number else HELP)
            return
        if command == "card":
            out.say(card_text(casework.engine, casework.lang, case, "—")[0])
            return
        if command in ANSWERS:
            refusal = await casework.answer_child(tx, TRAINER, case, ANSWERS[command], argument.strip() or None)
            if refusal:
                await casework.outbox.notice(tx, case, refusal, target=ANSWERS[command])
            return
        action, argument = (CaseAction.OUTCOME, argument.strip()) if command == "close" else (ACTIONS[command], "")
        try:
            await casework.act(tx, TRAINER, case, action, argument)
        except Refused as refusal:
            out.say(casework.engine.say(casework.lang, refusal.key))


async def _queue(tx: Transaction, out: ConsoleTransport) -> None:
    cases = await tx.cases.in_progress()
    if not cases:
        out.say("(no case in progress)")
    for case in cases:
        out.say(f"{'🔴 ' if case.urgent else ''}{case.number} · {case.kind} · {case.status} · {case.created_at:%Y-%m-%d %H:%M}")
