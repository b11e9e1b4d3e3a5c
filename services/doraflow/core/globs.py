"""The one glob dialect of `spec.scope` and of declared team repositories, translated once.

The collectors select repositories and projects with these globs in Python; the API remembers a
team's declared repository globs as PostgreSQL regular expressions, so that repositories collected
later are linked by the database as they arrive. Both read the same pattern, so both use the same
translation: a regular expression written with only what Python's `re` and PostgreSQL's advanced
regular expressions read alike (a literal is a backslash before anything not alphanumeric, classes
keep `-` for ranges).

The dialect: `*` and `?` stay within one path segment, so `acme/*` is the group's own projects and
not its subgroups' (GitLab nests groups); `**` crosses segments (`acme/**` includes subgroups);
`[abc]`/`[!abc]` are character classes as in fnmatch, and a `[` never closed is a literal.
Matching is case-insensitive, because GitHub, GitLab and Bitbucket treat repository paths so, and
people write Jira keys in either case; the whole name must match.
"""

from __future__ import annotations

import re


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The pattern as a compiled Python expression; use `fullmatch` (it is not anchored)."""
    return re.compile(_translate(pattern), re.IGNORECASE)


def glob_postgres_regex(pattern: str) -> str:
    """The pattern as an anchored PostgreSQL regular expression, to match with `~*` (which makes
    it case-insensitive as `glob_regex` is)."""
    return f"^{_translate(pattern)}$"


def glob_match(name: str, pattern: str) -> bool:
    return glob_regex(pattern).fullmatch(name) is not None


def literal_prefix(pattern: str) -> str:
    """The path segments before the first glob segment: the owner, group or workspace to list."""
    segments: list[str] = []
    for segment in pattern.split("/"):
        if is_glob(segment):
            break
        segments.append(segment)
    return "/".join(segments)


def _translate(pattern: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        char = pattern[index]
        if char == "[" and (end := _class_end(pattern, index)) is not None:
            out.append(_class_regex(pattern[index + 1 : end]))
            index = end + 1
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(_literal(char))
        index += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int | None:
    """Index of the `]` closing the class opened at `start` (a `]` right after `[` or `[!` is a
    member); None when it is never closed, and `[` is then a literal character."""
    index = start + 1
    if index < len(pattern) and pattern[index] == "!":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    end = pattern.find("]", index)
    return None if end == -1 else end


def _class_regex(members: str) -> str:
    """A class's members (between `[` and `]`) as a bracket expression, read as fnmatch reads
    them: `a-z` is a range, a `-` first or last is itself, and a reversed range (`z-a`) matches
    nothing (a class left empty by it never matches). A negated class never matches `/` either,
    as `?` does not."""
    negated = members.startswith("!")
    if negated:
        members = members[1:]
    parts: list[str] = []
    index = 0
    while index < len(members):
        if index + 2 < len(members) and members[index + 1] == "-":
            low, high = members[index], members[index + 2]
            if low <= high:
                parts.append(f"{_literal(low)}-{_literal(high)}")
            index += 3
        else:
            parts.append(_literal(members[index]))  # a lone `-` is escaped: `\-`
            index += 1
    if negated:
        return f"[^/{''.join(parts)}]"
    # `(?!x)x`: a regular expression both dialects read and nothing matches
    return f"[{''.join(parts)}]" if parts else "(?!x)x"


def _literal(char: str) -> str:
    """`char` matching itself: a backslash before anything not alphanumeric (in PostgreSQL's
    regular expressions a backslash before a letter or digit would start an escape, in Python's
    it is an error or a back-reference)."""
    return char if char.isalnum() else f"\\{char}"
