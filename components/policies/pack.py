"""The pack: every rule, in the order ``docs/policies.md`` lists them."""

from __future__ import annotations

from . import aws_alarms, aws_iam, aws_resources, cloudflare, vercel
from .engine import ADVISORY, Policy, resource_rule, stack_rule

POLICIES: list[Policy] = [
    resource_rule(
        "iam-no-not-elements",
        "No Allow statement uses NotAction, NotResource or NotPrincipal.",
        aws_iam.iam_no_not_elements,
    ),
    resource_rule(
        "iam-no-wildcard-actions",
        "Allowed actions contain no '*' or '?' (KMS default key policy aside).",
        aws_iam.iam_no_wildcard_actions,
    ),
    resource_rule(
        "iam-no-wildcard-resources",
        "Allowed resources contain no '*' or '?' (documented AWS requirements aside).",
        aws_iam.iam_no_wildcard_resources,
    ),
    resource_rule(
        "iam-ses-send-requires-from-address",
        "Every SES send permission is limited by ses:FromAddress to the domain.",
        aws_iam.iam_ses_send_from_address,
    ),
    resource_rule(
        "iam-oidc-trust-pinned",
        "Web-identity trust: the exact action, a named provider, aud and sub pinned.",
        aws_iam.iam_oidc_trust_pinned,
    ),
    resource_rule(
        "iam-no-broad-managed-policies",
        "No AWS managed admin, power-user or full-access policy is attached.",
        aws_iam.iam_no_broad_managed_policies,
    ),
    stack_rule(
        "iam-access-key-rotation",
        "Every IAM access key is rotated on a schedule of at most 90 days.",
        aws_iam.iam_access_key_rotation,
    ),
    resource_rule(
        "resource-policy-no-public-principal",
        "Queue, topic, key, trust policies and Lambda permissions allow no Principal '*'.",
        aws_resources.resource_policy_no_public_principal,
    ),
    resource_rule(
        "resource-policy-service-principal-scoped",
        "Service principals in resource policies are limited by aws:SourceArn/SourceAccount.",
        aws_resources.resource_policy_service_principal_scoped,
    ),
    stack_rule(
        "sqs-redrive-to-dlq",
        "Every queue that is not a DLQ redrives to one after 3 to 10 receives.",
        aws_resources.sqs_redrive_to_dlq,
    ),
    stack_rule(
        "sqs-dlq-retention-14-days",
        "Dead-letter queues keep messages 14 days.",
        aws_resources.sqs_dlq_retention,
    ),
    resource_rule(
        "sqs-encryption-at-rest",
        "SQS queues are encrypted at rest (SSE-SQS or KMS).",
        aws_resources.sqs_encryption,
    ),
    stack_rule(
        "sqs-visibility-timeout-6x-function-timeout",
        "A queue's visibility timeout is at least 6x its consuming function's timeout.",
        aws_resources.sqs_visibility_timeout,
    ),
    resource_rule(
        "lambda-sqs-report-batch-item-failures",
        "SQS event source mappings report batch item failures.",
        aws_resources.lambda_sqs_batch_item_failures,
    ),
    resource_rule(
        "lambda-sqs-maximum-concurrency",
        "SQS event source mappings cap their concurrency (2 to 1000).",
        aws_resources.lambda_sqs_maximum_concurrency,
    ),
    stack_rule(
        "lambda-log-retention",
        "Every function logs to a log group with a retention period.",
        aws_resources.lambda_log_retention,
    ),
    resource_rule(
        "lambda-arm64",
        "Functions run on arm64 (Graviton).",
        aws_resources.lambda_arm64,
        ADVISORY,
    ),
    resource_rule(
        "ses-dkim-rsa-2048",
        "SES identities sign with Easy DKIM using a 2048-bit key.",
        aws_resources.ses_dkim_rsa_2048,
    ),
    resource_rule(
        "ses-configuration-set-suppression-and-tls",
        "SES configuration sets suppress bounces and complaints and require TLS.",
        aws_resources.ses_configuration_set,
    ),
    stack_rule(
        "ses-dkim-and-dmarc-published",
        "Every DKIM token has a DNS-only CNAME in Cloudflare and a DMARC record exists.",
        aws_resources.dkim_records_in_cloudflare,
    ),
    stack_rule(
        "ses-reputation-alarms",
        "SES bounce and complaint rates alarm at or below 5% / 0.1%, guarded by send volume.",
        aws_alarms.ses_reputation_alarms,
    ),
    stack_rule(
        "ses-events-topic-subscribed",
        "The SNS topic a configuration set publishes events to has a subscription.",
        aws_alarms.ses_events_topic_subscribed,
    ),
    stack_rule(
        "sqs-consumed-queue-age-alarm",
        "Every queue feeding a Lambda function has an ApproximateAgeOfOldestMessage alarm.",
        aws_alarms.sqs_consumed_queue_age_alarm,
    ),
    stack_rule(
        "sqs-dlq-depth-alarm",
        "Every dead-letter queue has a depth (ApproximateNumberOfMessagesVisible) alarm.",
        aws_alarms.sqs_dlq_depth_alarm,
    ),
    stack_rule(
        "lambda-errors-and-throttles-alarms",
        "Every Lambda function has an Errors and a Throttles alarm.",
        aws_alarms.lambda_errors_and_throttles_alarms,
    ),
    stack_rule(
        "cloudwatch-alarm-actions-to-stack-topic",
        "Every CloudWatch alarm's alarm_actions name an SNS topic of the stack.",
        aws_alarms.alarm_actions_to_stack_topic,
    ),
    resource_rule(
        "cloudflare-queue-consumer-dlq-and-retries",
        "Cloudflare queue consumers have a DLQ and at most 100 retries.",
        cloudflare.cloudflare_consumer_dlq_and_retries,
    ),
    resource_rule(
        "cloudflare-queue-consumer-max-concurrency",
        "Cloudflare queue consumers cap their concurrency (1 to 250).",
        cloudflare.cloudflare_consumer_max_concurrency,
    ),
    resource_rule(
        "cloudflare-worker-secret-bindings",
        "Worker bindings holding a secret (by value or by name) are secret_text.",
        cloudflare.cloudflare_worker_secret_bindings,
    ),
    resource_rule(
        "vercel-secret-env-sensitive",
        "Vercel variables holding secrets (by value or by key) are sensitive.",
        vercel.vercel_secret_env_sensitive,
    ),
    resource_rule(
        "vercel-development-secret-env",
        "Secrets in development-only Vercel variables (which cannot be sensitive) are flagged.",
        vercel.vercel_development_secret_env,
        ADVISORY,
    ),
]
"""Every rule of the pack, in the order ``docs/policies.md`` lists them."""
