"""Entry point of the serverless-mail component provider (run by the Pulumi engine)."""

from __future__ import annotations

from pulumi.provider.experimental import component_provider_host
from serverless_mail.provider import PACKAGE_NAME, PACKAGE_VERSION, provider_components

if __name__ == "__main__":
    component_provider_host(provider_components(), PACKAGE_NAME, version=PACKAGE_VERSION)
