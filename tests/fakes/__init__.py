"""Local stand-ins for third-party SaaS APIs (GitHub, GitLab, Bitbucket, Jira, Linear, Asana).

These are the only fakes in the suite: real HTTP over loopback, serving payloads shaped like each
provider's documented responses (field names, pagination, rate-limit headers, errors), so collectors
run their real HTTP client against them.
"""
