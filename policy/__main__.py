"""The serverless-mail policy pack: ``pulumi preview --policy-pack policy``.

The rules live in :mod:`serverless_mail.policies` (shared with the offline plan
and the tests). Building the pack starts the analyzer server and never returns,
so nothing may import this file.
"""

from pulumi_policy import EnforcementLevel, PolicyPack
from serverless_mail.policies import POLICIES, enable_secret_awareness

# The secret rules judge values by their Pulumi secretness, which the analyzer
# drops unless told to keep it (pulumi/pulumi-policy#241).
enable_secret_awareness()
PolicyPack(
    name="serverless-mail",
    policies=POLICIES,
    enforcement_level=EnforcementLevel.MANDATORY,
)
