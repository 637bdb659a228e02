"""`python -m storage [DATABASE_URL]`: migrate a database to the newest schema without starting the bot."""
from __future__ import annotations

import sys

from storage.migrate import main

raise SystemExit(main(sys.argv[1:]))
