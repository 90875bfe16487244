"""SES events processor: drains the events queue into the message history and signed
webhooks.

Deployed as the folder ``events/`` with the handler string ``events.handler.handler``.
"""

from __future__ import annotations

__all__: list[str] = []
