"""Which `SourceClient` serves which `Integration.spec.provider`.

Entries are import paths, not classes, for two reasons: a collector process imports only the one
provider it runs (the git collector never loads the Jira client and its dependencies), and adding a
provider is one line here that cannot create an import cycle with the runtime. Tests and plug-ins
can also `register()` a class directly.
"""

from __future__ import annotations

import importlib

from doraflow.collectors.base import SourceClient
from doraflow.core.resources import Integration

# provider → "module:Class". Adding a provider is one line.
PROVIDERS: dict[str, str] = {
    "git": "doraflow.collectors.git.local:LocalGitClient",
    "jira": "doraflow.collectors.work.jira:JiraClient",
    "linear": "doraflow.collectors.work.linear:LinearClient",
    "asana": "doraflow.collectors.work.asana:AsanaClient",
    "github": "doraflow.collectors.git.github:GitHubClient",
    "gitlab": "doraflow.collectors.git.gitlab:GitLabClient",
    "bitbucket": "doraflow.collectors.git.bitbucket:BitbucketClient",
}

_registered: dict[str, type[SourceClient]] = {}


class UnknownProviderError(LookupError):
    """No client is registered for a provider (or its module does not define the class)."""


def register(provider: str, client_class: type[SourceClient]) -> None:
    """Register a class directly (tests, out-of-tree providers); wins over `PROVIDERS`."""
    _registered[provider] = client_class


def client_class(provider: str) -> type[SourceClient]:
    if provider in _registered:
        return _registered[provider]
    target = PROVIDERS.get(provider)
    if target is None:
        known = ", ".join(sorted({*PROVIDERS, *_registered}))
        raise UnknownProviderError(f"no collector for provider {provider!r} (available: {known})")
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    found = getattr(module, class_name, None)
    if not (isinstance(found, type) and issubclass(found, SourceClient)):
        raise UnknownProviderError(f"{target} is not a SourceClient subclass")
    return found


def create_client(integration: Integration, credentials: str | None) -> SourceClient:
    """The client for `integration.spec.provider`, constructed with the integration's credentials."""
    return client_class(integration.spec.provider.value)(integration, credentials)
