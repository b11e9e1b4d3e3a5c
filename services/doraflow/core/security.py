"""Secrets derived from `DORAFLOW_API_SECRET_KEY`, shared by the API (which checks them) and the
operator (which presents them), so a cluster needs exactly one shared secret."""

from __future__ import annotations

import hashlib
import hmac

SERVICE_TOKEN_SCHEME = "dfs"  # noqa: S105 - a prefix, not a secret
SERVICE_TOKEN_CONTEXT = b"doraflow/bootstrap-token/v1"


def derive_service_token(secret: str) -> str:
    """The bootstrap token that authorises registering organizations:
    `"dfs_" + hex(HMAC-SHA256(secret, "doraflow/bootstrap-token/v1"))`."""
    digest = hmac.new(secret.encode(), SERVICE_TOKEN_CONTEXT, hashlib.sha256).hexdigest()
    return f"{SERVICE_TOKEN_SCHEME}_{digest}"
