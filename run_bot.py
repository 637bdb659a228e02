"""Oberih's one entry point: `python run_bot.py [run|console|check-content|diagram|stats]` (app/cli.py)."""
import gc
import sys

# Importing aiogram builds hundreds of pydantic models: collections during it find no garbage and
# add half a second to the start. app/cli.py turns collection back on.
gc.disable()

from app.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
