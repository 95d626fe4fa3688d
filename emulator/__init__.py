"""A Telegram Bot API emulator that enforces Telegram's limits, for tests and the demo."""
