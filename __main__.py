"""The stack program: validated stage config in, one TransactionalEmail, outputs out."""

import pulumi
from serverless_mail import TransactionalEmail, TransactionalEmailArgs, load_stage_config

config = load_stage_config()
mail = TransactionalEmail("mail", TransactionalEmailArgs.from_stage(config))
for key, value in mail.outputs.items():
    pulumi.export(key, value)
