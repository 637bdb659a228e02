"""The deployment examples stay true to the code: .env.example names every setting, and the reverse
proxy passes on the webhook routes the bot serves and keeps /healthz and /metrics local."""
from __future__ import annotations

import re
from pathlib import Path

from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert named == {name.upper() for name in Settings.model_fields}


def test_the_proxy_passes_webhooks_and_keeps_health_and_metrics_local() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    assert "location = /tg/hook" in conf and "location /media/" in conf and "ssl_certificate" in conf
    assert "location = /healthz { deny all; }" in conf and "location = /metrics { deny all; }" in conf
    unit = (ROOT / "deploy" / "oberih.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/oberih/.venv/bin/python run_bot.py" in unit and "Restart=always" in unit
