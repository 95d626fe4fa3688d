"""The aiogram bot: subscribers and admin commands."""

from herald.telegram import imports as _imports

# Before any module of the bot imports aiogram (see the module).
_imports.defer_model_builds()
