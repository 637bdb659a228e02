"""Who may do what to whose case: every staff action's rule, in one table, checked in one place.

A role alone is never enough where a case has a holder: a counsellor acts only on the case they
hold (or, for taking and raising one, on a case nobody holds yet); moderators triage and close;
admins may do everything; police only answer, and only on escalated cases whose child consented to
police. Card actions happen only in the operator chat; answers in the chat the staff member is in.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from storage import Case, CaseKind, CaseStatus, Consent, Role, Target

ADMIN, MODERATOR, COUNSELLOR, POLICE = Role.ADMIN, Role.MODERATOR, Role.COUNSELLOR, Role.POLICE


class CaseAction(StrEnum):
    ACCEPT = "accept"
    SPAM = "spam"
    URGENT = "urgent"
    TAKE = "take"
    ESCALATE = "escalate"
    CLOSE = "close"  # shows the outcomes
    OUTCOME = "outcome"  # closes with the outcome in the argument
    CANCEL = "cancel"
    CONVERT = "convert"  # asks the child whether their question may become a report
    ANSWER = "answer"  # a message (or /canned, /tip) to the child
    TRANSFER = "transfer"  # /transfer REGION: the case goes on in another region's operator chat


class Holding(StrEnum):
    """What a counsellor must be to the case (other roles allowed by a rule never need to hold it)."""

    ANY = "any"  # no need to hold it
    HOLDER_OR_NOBODY = "holder_or_nobody"  # they hold it, or nobody does yet
    HOLDER = "holder"  # they hold it


@dataclass(frozen=True, slots=True)
class Rule:
    roles: frozenset[Role]
    holding: Holding = Holding.ANY
    condition: Callable[[Case], bool] = lambda case: True


def _consented_to_police(case: Case) -> bool:
    return case.consent == Consent.POLICE


def _in_the_police_chat(case: Case) -> bool:
    """Police see a case escalated with the child's consent, or a link report the child sent to police."""
    return _consented_to_police(case) and (case.status is CaseStatus.ESCALATED or case.kind is CaseKind.LINK)


TRIAGE, HANDLING, HOLDING = frozenset({ADMIN, MODERATOR}), frozenset({ADMIN, COUNSELLOR}), frozenset({ADMIN, MODERATOR, COUNSELLOR})
# (action, the chat it is done in): who may do it. A pair that is not here is refused to everyone.
RULES: dict[tuple[CaseAction, Target], Rule] = {
    (CaseAction.ACCEPT, Target.OPERATOR): Rule(TRIAGE),
    (CaseAction.SPAM, Target.OPERATOR): Rule(TRIAGE),
    (CaseAction.URGENT, Target.OPERATOR): Rule(HOLDING, Holding.HOLDER_OR_NOBODY),
    (CaseAction.TAKE, Target.OPERATOR): Rule(HANDLING, Holding.HOLDER_OR_NOBODY),
    (CaseAction.ESCALATE, Target.OPERATOR): Rule(HANDLING, Holding.HOLDER, _consented_to_police),
    (CaseAction.CLOSE, Target.OPERATOR): Rule(HOLDING, Holding.HOLDER),
    (CaseAction.OUTCOME, Target.OPERATOR): Rule(HOLDING, Holding.HOLDER),
    (CaseAction.CANCEL, Target.OPERATOR): Rule(HOLDING, Holding.HOLDER),
    (CaseAction.CONVERT, Target.OPERATOR): Rule(HANDLING, Holding.HOLDER),
    (CaseAction.ANSWER, Target.OPERATOR): Rule(HANDLING, Holding.HOLDER),
    (CaseAction.ANSWER, Target.POLICE): Rule(frozenset({ADMIN, POLICE}), Holding.ANY, _in_the_police_chat),
    (CaseAction.TRANSFER, Target.OPERATOR): Rule(HOLDING, Holding.HOLDER),
}
SEE_QUEUE = TRIAGE  # /queue in a staff chat's General topic: every case waiting there, and who holds what


def may(role: Role, user_id: int, action: CaseAction, case: Case, chat: Target) -> bool:
    """Whether a staff member with `role` may do `action` to `case` from `chat`."""
    rule = RULES.get((action, chat))
    if rule is None or role not in rule.roles or not rule.condition(case):
        return False
    if role is not COUNSELLOR:
        return True
    if rule.holding is Holding.HOLDER:
        return case.assignee_id == user_id
    if rule.holding is Holding.HOLDER_OR_NOBODY:
        return case.assignee_id in (None, user_id)
    return True


def roles_for(action: CaseAction, chat: Target = Target.OPERATOR) -> frozenset[Role]:
    """The roles that may ever do `action` in `chat` (e.g. to tell a stranger's press from a holder's)."""
    rule = RULES.get((action, chat))
    return rule.roles if rule is not None else frozenset()
