"""SNS topics an AWS service publishes to, encrypted with a key of their own.

AWS managed ``alias/aws/sns`` cannot be used for these: its key policy lets no
service principal (CloudWatch, SES) use the key and cannot be changed, so the
service's publish fails and alarms or bounce events are silently lost (AWS re:Post,
"configure a CloudWatch alarm with an encrypted SNS topic").
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

__all__ = ["create_service_topic", "topic_key_policy"]


def create_service_topic(
    *,
    key_name: str,
    topic_name: str,
    publisher: str,
    publisher_sid: str,
    description: str,
    arn_in_account: pulumi.Output[str],
    opts: pulumi.ResourceOptions,
) -> tuple[aws.kms.Key, aws.sns.Topic]:
    """A rotated KMS key that ``publisher`` may use, and the SNS topic it encrypts.

    Args:
        key_name: logical name of the key.
        topic_name: logical name of the topic.
        publisher: the service principal, e.g. ``"ses.amazonaws.com"``.
        publisher_sid: the Sid of that principal's statement in the key policy.
        description: the key's description.
        arn_in_account: any ARN in the stack's account: partition and account come from it.
        opts: the children's options (``parent=`` the calling component).
    """
    partition_and_account = arn_in_account.apply(lambda arn: arn.split(":")[1:5:3])
    key = aws.kms.Key(
        key_name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=partition_and_account.apply(
            lambda p: json.dumps(topic_key_policy(p[1], p[0], publisher, publisher_sid))
        ),
        opts=opts,
    )
    topic = aws.sns.Topic(topic_name, kms_master_key_id=key.arn, opts=opts)
    return key, topic


def topic_key_policy(
    account_id: str, partition: str, publisher: str, publisher_sid: str
) -> dict[str, Any]:
    """Key policy of a topic's own key, for the service that publishes to it.

    The account keeps administering the key through IAM (KMS's default key policy);
    the publishing service may only generate data keys and decrypt, which publishing
    to the encrypted topic needs, and only on behalf of this account: the
    ``aws:SourceAccount`` condition keeps another account's alarm or configuration
    set from making the service use this key (IAM User Guide, "the confused deputy
    problem"; SNS Developer Guide, encrypted topics for AWS service event sources).
    In a key policy ``Resource: "*"`` means this key.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministersTheKeyThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": publisher_sid,
                "Effect": "Allow",
                "Principal": {"Service": publisher},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
        ],
    }
