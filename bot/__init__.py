"""The aiogram bot: subscribers and admin commands."""
