"""The stack's security and reliability rules, as CrossGuard policies.

The rules live here, importable, so that three callers share them: the policy
pack in ``policy/`` (``pulumi preview --policy-pack policy``), the offline plan
(:func:`evaluate` on a mocks recording) and the tests. Building a ``PolicyPack``
starts a server, so only ``policy/__main__.py`` does that.

Modules: :mod:`.engine` (reading properties, secretness, :func:`evaluate`),
:mod:`.documents` (IAM documents normalised once), :mod:`.aws_iam`,
:mod:`.aws_resources`, :mod:`.cloudflare`, :mod:`.vercel`, and :mod:`.pack`
(the ordered list of rules).
"""

from __future__ import annotations

from .aws_iam import MAX_ACCESS_KEY_AGE_DAYS, SES_SEND_ACTIONS
from .engine import (
    STACK_OUTPUTS_POLICY,
    SecretString,
    Violation,
    check_stack_outputs,
    enable_secret_awareness,
    evaluate,
    looks_secret,
    secret_awareness_enabled,
)
from .pack import POLICIES

__all__ = [
    "MAX_ACCESS_KEY_AGE_DAYS",
    "POLICIES",
    "SES_SEND_ACTIONS",
    "STACK_OUTPUTS_POLICY",
    "SecretString",
    "Violation",
    "check_stack_outputs",
    "enable_secret_awareness",
    "evaluate",
    "looks_secret",
    "secret_awareness_enabled",
]
