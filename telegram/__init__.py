"""Telegram: what Herald knows about the Bot API, shared by every component that sends.

:mod:`herald.telegram.rendering` turns a broadcast's content and one recipient into one Bot
API call (pure); :mod:`herald.telegram.outcomes` names what can become of a call (pure);
:mod:`herald.telegram.client` makes the call through aiogram and translates every answer and
exception into an outcome, once. What a component does about an outcome is its own decision
(the sender's is :func:`herald.sender.outcomes.judge`).
"""
