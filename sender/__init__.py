"""Senders: pull work from JetStream and deliver it through aiogram."""
