"""Entry point of `herald-bot`."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    # The component's loop lands with its own change; until then say so instead of idling.
    sys.exit("herald-bot: this component is not implemented in this version of Herald")


if __name__ == "__main__":
    main()
