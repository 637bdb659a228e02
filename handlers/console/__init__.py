"""The terminal channel: a child's dialog and the operator chat, played in one terminal."""
from handlers.console.channel import ConsoleChannel, run_console
from handlers.console.transport import OPERATOR_CHAT, POLICE_CHAT, ConsoleTransport

__all__ = ["OPERATOR_CHAT", "POLICE_CHAT", "ConsoleChannel", "ConsoleTransport", "run_console"]
