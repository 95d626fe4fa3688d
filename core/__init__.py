"""Shared core: the Broadcast contract, settings, wire formats and storage."""
