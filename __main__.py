"""The stack program: validated stage config in, one TransactionalEmail, outputs out."""

import pulumi
from serverless_mail import TransactionalEmail, load_stage_config

config = load_stage_config()
mail = TransactionalEmail("mail", config.args)
for key, value in mail.outputs.items():
    pulumi.export(key, value)
