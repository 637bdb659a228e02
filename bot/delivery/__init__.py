"""The outbox's delivery: a worker made of parts with one job each (see worker.py), and the courier
that turns items into a channel's transport calls."""
from bot.delivery.alarm import AdminAlarm
from bot.delivery.contract import DeliveryMetrics, ItemSender, Sent
from bot.delivery.courier import Courier
from bot.delivery.policy import Decision, Verdict, backoff_seconds, decide
from bot.delivery.worker import DeliveryWorker, default_owner

__all__ = [
    "AdminAlarm", "Courier", "Decision", "DeliveryMetrics", "DeliveryWorker", "ItemSender", "Sent", "Verdict",
    "backoff_seconds", "decide", "default_owner",
]
