"""Lambda sender: drains the SQS email queue and sends each message through SES v2.

Deployed as the folder ``lambda_sender/`` with the handler string
``lambda_sender.handler.handler``; the message schema travels inside the folder.
"""

from __future__ import annotations

__all__: list[str] = []
