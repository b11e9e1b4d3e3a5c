"""Where a collector's secrets come from: an environment variable or a file.

In a cluster the operator mounts the Integration's `credentialsSecretRef` (and the webhook
`secretRef`) from a Kubernetes Secret, either as an env var or as a file; a file is preferred there
because env vars leak into `kubectl describe pod` and crash dumps. Values are returned as plain
strings for the client to put into its HTTP headers, and are never logged — error messages name the
variable or the path, never the content.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CREDENTIALS_ENV = "DORAFLOW_CREDENTIALS"
CREDENTIALS_FILE_ENV = "DORAFLOW_CREDENTIALS_FILE"
WEBHOOK_SECRET_ENV = "DORAFLOW_WEBHOOK_SECRET"  # noqa: S105 - the variable's name, not a secret
WEBHOOK_SECRET_FILE_ENV = "DORAFLOW_WEBHOOK_SECRET_FILE"  # noqa: S105


class CredentialsError(ValueError):
    """A configured secret cannot be read; the message says which variable or file, never the value."""


def read_secret(value_env: str, file_env: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The secret from `$value_env`, else from the file named by `$file_env`, else None.

    Surrounding whitespace is stripped: `kubectl create secret --from-file` and editors leave a
    trailing newline that would otherwise end up inside an Authorization header.
    """
    env = os.environ if environ is None else environ
    value = env.get(value_env)
    if value and value.strip():
        return value.strip()
    path = env.get(file_env)
    if not path:
        return None
    try:
        content = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CredentialsError(f"{file_env}={path}: cannot read the file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise CredentialsError(f"{file_env}={path}: the file is not UTF-8 text") from None
    if not content:
        raise CredentialsError(f"{file_env}={path}: the file is empty")
    return content


def load_credentials(environ: Mapping[str, str] | None = None) -> str | None:
    """The provider credentials (`DORAFLOW_CREDENTIALS` or `DORAFLOW_CREDENTIALS_FILE`)."""
    return read_secret(CREDENTIALS_ENV, CREDENTIALS_FILE_ENV, environ)


def load_webhook_secret(environ: Mapping[str, str] | None = None) -> str | None:
    """The webhook secret (`DORAFLOW_WEBHOOK_SECRET` or `DORAFLOW_WEBHOOK_SECRET_FILE`)."""
    return read_secret(WEBHOOK_SECRET_ENV, WEBHOOK_SECRET_FILE_ENV, environ)
