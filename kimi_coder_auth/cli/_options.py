"""Options several commands share, defined once so their choices and help never drift apart."""

from __future__ import annotations

import argparse

__all__ = ["CREDENTIAL_CHOICES", "REGION_HELP", "add_credentials_option", "add_region_option", "credentials_pin"]

CREDENTIAL_CHOICES = ("auto", "env", "kimi-cli", "kimi-code")


def add_credentials_option(parser: argparse.ArgumentParser) -> None:
    """``--credentials SOURCE``: the same choices and wording on every command."""
    parser.add_argument(
        "--credentials",
        choices=CREDENTIAL_CHOICES,
        default=None,
        metavar="SOURCE",
        help="use only this credential source: env (KIMI_CODER_API_KEY), kimi-cli or kimi-code; "
        "auto (default) = $KIMI_CODER_CREDENTIALS, else env, then kimi-cli, then kimi-code",
    )


def credentials_pin(value: str | None) -> str | None:
    """The ``credentials=`` pin for a ``--credentials`` value (``auto`` = no pin)."""
    return None if value in (None, "auto") else value


REGION_HELP = (
    "mainland-cn (alias cn; auth.kimi.com) or global (alias intl; auth.kimi.ai, for kimi.ai "
    "subscribers); default: $KIMI_CODER_REGION, else the OAuth host variables, else Kimi Code's "
    "config.toml / region file, else mainland-cn"
)


def add_region_option(parser: argparse.ArgumentParser) -> None:
    """``--region REGION``: which login slot and API host, with the same help on every command."""
    parser.add_argument("--region", default=None, metavar="REGION", help=REGION_HELP)
