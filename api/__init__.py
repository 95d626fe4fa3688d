"""herald-api: transactional messages over HTTP, one message to one chat (docs/transactional.md)."""
