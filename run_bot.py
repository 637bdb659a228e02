"""Oberih's one entry point: `python run_bot.py [run|console|check-content|diagram|stats]` (app/cli.py)."""
import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
