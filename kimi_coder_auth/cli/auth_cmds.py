"""Placeholder command group; replaced by its owner."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register this group's commands."""
