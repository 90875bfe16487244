"""IAM access keys that rotate: two overlapping keys on ``time.Rotating`` schedules.

Used wherever the stack has to hand a long-lived key to something outside AWS (the
Worker, a Vercel app without OIDC). Each key lives two periods; the second schedule
starts one period after the first, so the keys are replaced alternately, one period
apart, and the holder always gets the key replaced last: the key being replaced is
never the one in use, and the previous key stays valid a full period after the
holder moves on (time for a Vercel redeploy, in-flight Worker requests).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pulumi
import pulumi_aws as aws
import pulumiverse_time as time

__all__ = [
    "ACCESS_KEY_SLOTS",
    "MAX_ACCESS_KEY_ROTATION_DAYS",
    "RotatingAccessKeys",
    "active_key_slot",
    "rotating_access_keys",
]

ACCESS_KEY_SLOTS = ("a", "b")
"""The user's two access keys, replaced in turn (IAM allows two per user)."""

MAX_ACCESS_KEY_ROTATION_DAYS = 45
"""Each key lives two periods: 45 keeps every key under the 90 days of the CIS AWS
Foundations Benchmark (and the pack's ``iam-access-key-rotation`` rule)."""


@dataclass(frozen=True)
class RotatingAccessKeys:
    """The two keys, their schedules, and the id and secret of the key to hand out."""

    keys: tuple[aws.iam.AccessKey, aws.iam.AccessKey]
    rotations: tuple[time.Rotating, time.Rotating]
    active_id: pulumi.Output[str]
    active_secret: pulumi.Output[str]


def rotating_access_keys(
    *,
    user: aws.iam.User,
    days: int,
    key_name: str,
    rotation_name: str,
    parent: pulumi.Resource,
    previous_key_name: str | None = None,
) -> RotatingAccessKeys:
    """Two keys of ``user``, ``<key_name>-a``/``-b``, on ``<rotation_name>-a``/``-b``.

    ``previous_key_name`` names the single key a component had before, kept as key
    ``a`` (an alias) so upgrading does not replace it. The schedules carry
    ``triggers={"user": <user name>}``, which ties them to the user for the pack's
    ``iam-access-key-rotation`` rule. Rotation happens on the first update that
    refreshes a due schedule (``pulumi up --refresh``).
    """
    child = pulumi.ResourceOptions(parent=parent)
    first = time.Rotating(
        f"{rotation_name}-a",
        rotation_days=2 * days,
        triggers={"user": user.name},
        opts=child,
    )
    # The second schedule's base is fixed at creation (ignore_changes): the first
    # key's rotation must not move it, or both keys would be replaced together.
    second = time.Rotating(
        f"{rotation_name}-b",
        rotation_days=2 * days,
        triggers={"user": user.name},
        rfc3339=first.rfc3339.apply(lambda base: _shift(base, days)),
        opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["rfc3339"]),
    )
    aliases = [pulumi.Alias(name=previous_key_name)] if previous_key_name else None
    # A due schedule is dropped from the state on refresh and created anew, not
    # replaced (terraform-provider-time#118), so `replace_with` would never fire: the
    # key is replaced when its schedule's base timestamp changes, which both a
    # rotation and a replaced schedule do. IAM allows two keys per user: a due key
    # is deleted before its successor exists.
    keys = (
        aws.iam.AccessKey(
            f"{key_name}-a",
            user=user.name,
            opts=pulumi.ResourceOptions(
                parent=parent,
                replacement_trigger=first.rfc3339,
                delete_before_replace=True,
                aliases=aliases,
            ),
        ),
        aws.iam.AccessKey(
            f"{key_name}-b",
            user=user.name,
            opts=pulumi.ResourceOptions(
                parent=parent, replacement_trigger=second.rfc3339, delete_before_replace=True
            ),
        ),
    )
    slot = pulumi.Output.all(first.rotation_rfc3339, second.rotation_rfc3339).apply(active_key_slot)
    a, b = keys
    return RotatingAccessKeys(
        keys=keys,
        rotations=(first, second),
        active_id=pulumi.Output.all(slot, a.id, b.id).apply(lambda v: v[1 + v[0]]),
        active_secret=pulumi.Output.all(slot, a.secret, b.secret).apply(lambda v: v[1 + v[0]]),
    )


def active_key_slot(rotations: list[str]) -> int:
    """Index of the key to hand out: the one whose schedule replaces it last.

    ``rotations`` are the two schedules' ``rotation_rfc3339``. The other key is the
    next to be replaced, so replacing it never touches the key in use; right after a
    replacement the new key is the one replaced last, and the holder moves to it
    while the old one stays valid for another period.
    """
    first, second = (_parse_rfc3339(r) for r in rotations)
    return 0 if first > second else 1


def _parse_rfc3339(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _shift(rfc3339: str, days: int) -> str:
    shifted = _parse_rfc3339(rfc3339).astimezone(UTC) + timedelta(days=days)
    return shifted.strftime("%Y-%m-%dT%H:%M:%SZ")
