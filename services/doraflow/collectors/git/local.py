"""The local git provider (`provider: git`): history straight from a repository with the `git` command.

It powers the embedded mode (`doraflow up` on the repository in the current directory) and works
offline. Each `scope.repositories` entry is a local path (read in place; globs such as
`/src/*` expand to the repositories they match) or a clone URL (`https://`, `ssh://`, `git@host:`,
`file://`), which is mirrored into a cache directory with `git clone --mirror` and refreshed with
`git fetch --prune` at most once a minute.

Decisions:

* **Streaming.** History is read from one `git log -z --numstat` subprocess, parsed chunk by chunk and
  published in batches of 500: memory stays flat on a repository of any size. Nothing holds a list
  of all commits — not even of their SHAs.
* **Which commits.** Everything reachable from the branches (`refs/heads`, and `refs/remotes` of a
  working clone) committed within the back-fill horizon (`spec.backfillDays`, by committer date),
  newest first. Commits reachable only from a tag are not walked (the cursor would have to carry
  every tag).
* **Merges** are published (with both parents, so the processor sees the topology) with 0 additions,
  deletions and files changed: what a merge brings in was already counted on the commits it merges,
  and counting it again would double the churn of every merged branch. Conflict resolutions are the
  price of that choice.
* **Line counts** come from `--numstat` with rename detection (a moved file is not a full delete plus
  a full add, as on GitHub); a binary file counts as changed with 0 lines.
* **Identities** honour the repository's `.mailmap`, as `git shortlog` does.
* **Deployments** are tags matching `spec.deployments.tagPattern` (default: release versions, not
  pre-releases): successful production deployments at the tagger date of an annotated tag, or the
  tagged commit's committer date for a lightweight one. Each ships the commits reachable from it and
  not from the previous deployment tag in deployment-time order (`git rev-list tag ^previous`).
  The first tag of a repository ships its history committed within `backfillDays` before the tag —
  a bound anchored on the tag, so the event is identical whenever it is collected; lead time still
  works because the bound is at least the collection horizon. A deployment lists at most 10,000
  commits (the newest; the rest is logged) to stay well under Kafka's 1 MB message limit.
  `is_hotfix` when the tag name or the first line of an annotated tag's message or of a shipped
  commit's message matches `hotfixPattern` (the rule of every git provider, `git.common.is_hotfix`);
  `is_rollback` when the tag ships nothing new and points to an ancestor of the previous deployment.
  `deployment_id` is the tag name, `revision` the tagged commit, `service` the repository name.
* **Cursors.** Commits: the branch tips of the last completed walk (`{"tips": {ref: sha}}`) plus, while
  a walk is running, the walk itself (pinned SHAs, horizon and how many commits were published), so
  a restart continues with `git log --skip` where it stopped and a finished walk is never repeated;
  the next walk is `new tips ^old tips`. Deployments: the newest deployment published (`upper`) and,
  during the first back-fill (newest first), the oldest published (`lower`).
* **Branches and tags** (`branches_and_tags`): every branch with its head commit and that commit's
  committer time — local branches (`refs/heads`; in a mirror, the remote's branches), and in a
  working clone also the remote-tracking branches that have no local branch of the same name
  (`origin` first), so a fresh clone shows its remote's branches. The default branch is the remote's
  (`refs/remotes/origin/HEAD`) when the clone knows it, else the checked-out branch. Every tag of a
  commit, annotated ones peeled to their commit with the tagger, tagger date and message. Each run
  lists them in full; refs gone since the previous complete listing are published as `deleted`
  (`git.common.RefSnapshot`, which is the cursor).
* **Contributors** (`contributors`): the authors of the default branch's whole history with their
  commit counts (`git shortlog -s -n -e`, so `.mailmap` applies), one per email.
"""

from __future__ import annotations

import asyncio
import base64
import glob
import hashlib
import logging
import math
import os
import re
import shutil
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from doraflow.collectors.base import Batch, CollectorError, Resource, ScopeRef, SourceClient
from doraflow.collectors.common import (
    Clock,
    backfill_horizon,
    matches_any,
    parse_time,
    parse_time_or_none,
    person,
    person_or_none,
    utc_now,
)
from doraflow.collectors.git.common import RefSnapshot, branch_data, is_hotfix
from doraflow.core.events import (
    CommitData,
    ContributorData,
    DeploymentData,
    EventData,
    PersonRef,
    RepositoryRef,
    TagData,
)
from doraflow.core.resources import Integration

logger = logging.getLogger(__name__)

PROVIDER = "git"
BATCH_SIZE = 500
DEPLOYMENT_BATCH_SIZE = 50
MAX_SHIPPED_COMMITS = 10_000
FETCH_INTERVAL_SECONDS = 60.0
CHUNK_SIZE = 256 * 1024
COMMIT_MARK = b"\x1e"
# sha, parents, author name, author email, authored (strict ISO 8601), committed, raw message.
COMMIT_FORMAT = "%x1e%H%x00%P%x00%aN%x00%aE%x00%aI%x00%cI%x00%B"
HEADER_FIELDS = 7
TAG_FORMAT = (
    "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)%00"
    "%(taggerdate:iso-strict)%00%(committerdate:iso-strict)%00%(*committerdate:iso-strict)%00"
    "%(taggername)%00%(taggeremail)%00%(contents)%00"
)
TAG_FIELDS = 11
BRANCH_FORMAT = "%(refname)%00%(objectname)%00%(objecttype)%00%(symref)%00%(committerdate:iso-strict)"
DEFAULT_REMOTE = "origin"
# Output that must not depend on the user's or the repository's configuration.
LOG_OPTIONS = (
    "-c",
    "log.showRoot=true",
    "-c",
    "log.showSignature=false",
    "-c",
    "diff.renames=true",
)
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:(?!//)")
_URL_CREDENTIALS = re.compile(r"(//)[^/@\s]+@")


# -- git subprocesses ------------------------------------------------------------------------------


class GitError(Exception):
    """A git command failed for a reason that may go away (network, lock, …)."""

    def __init__(self, command: str, returncode: int, stderr: str) -> None:
        super().__init__(f"git {command} failed ({returncode}): {stderr.strip()[-500:]}")
        self.returncode = returncode
        self.stderr = stderr


def redact(text: str) -> str:
    """Strip `user:password@` from any URL in `text` (git echoes URLs in its errors)."""
    return _URL_CREDENTIALS.sub(r"\1", text)


class Git:
    """Runs `git` with a fixed, prompt-free environment (credentials via env config, never argv)."""

    def __init__(self, extra_env: Mapping[str, str] | None = None) -> None:
        self.env = {
            **os.environ,
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",  # never hang on a password prompt
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
            **(extra_env or {}),
        }

    async def run(
        self, args: Sequence[str], *, cwd: Path | None = None, stdin: bytes | None = None, check: bool = True
    ) -> tuple[int, bytes, str]:
        process = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd,
            env=self.env,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await process.communicate(stdin)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        stderr = redact(err.decode("utf-8", "replace"))
        returncode = process.returncode if process.returncode is not None else -1
        if check and returncode != 0:
            raise GitError(_command_name(args), returncode, stderr)
        return returncode, out, stderr

    async def stream(
        self, args: Sequence[str], *, cwd: Path | None = None, stdin: bytes | None = None
    ) -> AsyncGenerator[list[bytes], None]:
        """NUL-separated output as lists of tokens, one list per chunk read. The process is killed
        if the consumer stops early (a stopping collector must not leave a `git log` behind)."""
        process = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd,
            env=self.env,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=CHUNK_SIZE,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        stderr_task = asyncio.create_task(_tail(process.stderr))
        try:
            if stdin is not None:
                assert process.stdin is not None
                process.stdin.write(stdin)
                await process.stdin.drain()
                process.stdin.close()
            pending = b""
            while chunk := await process.stdout.read(CHUNK_SIZE):
                tokens = (pending + chunk).split(b"\0")
                pending = tokens.pop()
                if tokens:
                    yield tokens
            if pending:
                yield [pending]
            returncode = await process.wait()
            stderr = redact((await stderr_task).decode("utf-8", "replace"))
            if returncode != 0:
                raise GitError(_command_name(args), returncode, stderr)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            stderr_task.cancel()


async def _tail(stream: asyncio.StreamReader, keep: int = 8192) -> bytes:
    """Drain stderr concurrently (a full pipe would block git) and keep its end for errors."""
    tail = b""
    while chunk := await stream.read(65536):
        tail = (tail + chunk)[-keep:]
    return tail


def _command_name(args: Sequence[str]) -> str:
    return next((a for a in args if not a.startswith("-") and "=" not in a), "?")


# -- repository locations --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Location:
    """Where a repository is. `url` may hold credentials and is never logged or published; `id`
    (the URL without credentials, or the absolute path) is what events and cursors use."""

    name: str
    id: str
    url: str | None = None
    path: Path | None = None

    @property
    def public_url(self) -> str | None:
        return redact(self.url) if self.url else None


def _strip_git(name: str) -> str:
    name = name.rstrip("/")
    return name[:-4] if name.endswith(".git") else name


def parse_location(entry: str) -> Location:
    """A scope entry → Location. Names: `owner/name` for forge URLs (as the GitHub/GitLab providers
    name them, so the same repository keys the same way), the directory name for paths."""
    entry = entry.strip()
    if _SCP_LIKE.match(entry):  # git@github.com:acme/api.git
        remote_path = entry.split(":", 1)[1]
        return Location(_strip_git(remote_path.lstrip("/")) or entry, entry, url=entry)
    if "://" in entry:
        parts = urlsplit(entry)
        if parts.scheme == "file":
            path = Path(parts.path)
            return Location(_strip_git(path.name) or entry, f"file://{path}", url=entry)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        public = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        name = _strip_git(parts.path.lstrip("/")) or host
        return Location(name, public, url=entry)
    path = Path(entry).expanduser().resolve()
    return Location(_strip_git(path.name) or str(path), str(path), path=path)


def _is_repository(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def _clone_url(location: Location) -> str:
    """The URL git is given. An https URL loses its `user:token@` (it is sent as a header instead,
    see `_auth_env`), because git writes the clone URL into the mirror's config file in clear text."""
    assert location.url is not None
    return location.id if location.url.startswith("https://") else location.url


def _auth_env(url: str | None, credentials: str | None) -> dict[str, str]:
    """HTTP credentials for git as environment config (not argv, which `ps` shows), scoped to the
    URL's origin: the Integration's credentials, else the `user:password@` of the URL itself.
    `user:password`, or a token (sent as GitHub's `x-access-token` user)."""
    if not url or not url.startswith("https://"):
        return {}
    parts = urlsplit(url)
    if not credentials and parts.username:
        credentials = parts.username + (f":{parts.password}" if parts.password is not None else "")
    if not credentials:
        return {}
    origin = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    user, sep, password = credentials.partition(":")
    basic = f"{user}:{password}" if sep else f"x-access-token:{credentials}"
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{origin}/.extraHeader",
        "GIT_CONFIG_VALUE_0": "Authorization: Basic " + base64.b64encode(basic.encode()).decode(),
    }


# -- parsing ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class ParsedCommit:
    header: list[bytes] = field(default_factory=list)
    additions: int = 0
    deletions: int = 0
    files: int = 0


class CommitStreamParser:
    """Parses `git log -z --numstat --format=COMMIT_FORMAT` output, fed token by token.

    Layout per commit: `\\x1e<sha>`, six more header tokens (the last is the raw message), then one
    token per changed file, `added\\tdeleted\\tpath` (the first preceded by a newline; `-\\t-` for a
    binary file); a rename is `added\\tdeleted\\t` followed by two path tokens.
    """

    def __init__(self) -> None:
        self._current: ParsedCommit | None = None
        self._skip_paths = 0

    def feed(self, tokens: Iterable[bytes]) -> list[ParsedCommit]:
        done: list[ParsedCommit] = []
        for token in tokens:
            current = self._current
            if current is not None and len(current.header) < HEADER_FIELDS:
                current.header.append(token)
            elif self._skip_paths:
                self._skip_paths -= 1
            elif token.startswith(COMMIT_MARK):
                if current is not None:
                    done.append(current)
                self._current = ParsedCommit(header=[token[1:]])
            elif current is not None:
                self._numstat(current, token.lstrip(b"\n"))
        return done

    def finish(self) -> list[ParsedCommit]:
        current, self._current = self._current, None
        return [current] if current is not None and len(current.header) == HEADER_FIELDS else []

    def _numstat(self, commit: ParsedCommit, token: bytes) -> None:
        if not token:
            return
        parts = token.split(b"\t", 2)
        if len(parts) != 3:
            return
        added, deleted, path = parts
        commit.files += 1
        if added.isdigit():
            commit.additions += int(added)
        if deleted.isdigit():
            commit.deletions += int(deleted)
        if not path:
            self._skip_paths = 2  # rename/copy: old and new path follow


def _text(value: bytes, limit: int | None = None) -> str | None:
    text = value.decode("utf-8", "replace")
    if limit is not None:
        text = text[:limit]
    return text or None


def to_commit(parsed: ParsedCommit, repository: RepositoryRef) -> CommitData:
    sha, parents, name, email, authored, committed, message = parsed.header
    parent_list = parents.decode().split()
    merge = len(parent_list) > 1
    return CommitData(
        repository=repository,
        sha=sha.decode(),
        author=person(_text(name), _text(email)),
        authored_at=parse_time(authored.decode()),
        committed_at=parse_time(committed.decode()),
        message=_text(message.rstrip(b"\n")),
        additions=0 if merge else parsed.additions,
        deletions=0 if merge else parsed.deletions,
        files_changed=0 if merge else parsed.files,
        parents=parent_list,
    )


# -- cursors ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Walk:
    """One `git log` over pinned SHAs; `done` commits of it are published."""

    include: list[str]
    exclude: list[str]
    since: str  # git date, e.g. "2024-01-01 00:00:00 +0000"
    tips: dict[str, str]  # the branch tips it was started from: the cursor once it completes
    done: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "include": self.include,
            "exclude": self.exclude,
            "since": self.since,
            "tips": self.tips,
            "done": self.done,
        }

    @classmethod
    def from_json(cls, value: Any) -> Walk | None:
        if not isinstance(value, dict):
            return None
        try:
            return cls(
                include=[str(s) for s in value["include"]],
                exclude=[str(s) for s in value["exclude"]],
                since=str(value["since"]),
                tips={str(k): str(v) for k, v in value["tips"].items()},
                done=int(value["done"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def _git_date(moment: datetime) -> str:
    """A `--since` date git parses the same whatever its locale and time zone."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000")


def _commit_cursor(tips: Mapping[str, str], walk: Walk | None) -> dict[str, Any]:
    return {"tips": dict(tips), "walk": walk.to_json() if walk else None}


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    sha: str  # the tagged commit
    time: datetime  # the deployment time
    annotated: bool
    message: str | None
    tagger: PersonRef | None

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.time, self.name)


def _key_json(key: tuple[datetime, str] | None) -> list[str] | None:
    return [key[0].astimezone(UTC).isoformat(), key[1]] if key else None


def _key_from(value: Any) -> tuple[datetime, str] | None:
    if isinstance(value, list) and len(value) == 2:
        try:
            return (datetime.fromisoformat(str(value[0])), str(value[1]))
        except ValueError:
            return None
    return None


# -- the client ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Repository:
    location: Location
    cwd: Path
    ref: RepositoryRef
    default_revision: str = "HEAD"  # the default branch's ref (the remote's, in a working clone)


class LocalGitClient(SourceClient):
    provider: ClassVar[str] = PROVIDER
    resources: ClassVar[tuple[Resource, ...]] = (
        Resource.COMMITS,
        Resource.DEPLOYMENTS,
        Resource.BRANCHES_AND_TAGS,
        Resource.CONTRIBUTORS,
    )

    def __init__(
        self,
        integration: Integration,
        credentials: str | None,
        *,
        cache_dir: Path | None = None,
        batch_size: int = BATCH_SIZE,
        fetch_interval: float = FETCH_INTERVAL_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(integration, credentials)
        self._cache_dir = cache_dir
        self.batch_size = batch_size
        self._fetch_interval = fetch_interval
        self._clock = clock or utc_now
        rules = integration.spec.deployments
        self.tag_pattern = re.compile(rules.tag_pattern)
        self.hotfix_pattern = re.compile(rules.hotfix_pattern)
        self._locations: dict[str, Location] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._fetched: dict[str, float] = {}

    def __repr__(self) -> str:  # credentials stay out of reprs and tracebacks
        return f"LocalGitClient({self.integration.key!r})"

    @property
    def cache_dir(self) -> Path:
        if self._cache_dir is None:
            override = os.environ.get("DORAFLOW_GIT_CACHE_DIR")
            if override:
                self._cache_dir = Path(override)
            else:
                from doraflow.core.settings import get_settings

                self._cache_dir = get_settings().home / "git"
        return self._cache_dir

    # -- scopes ----------------------------------------------------------------------------------

    async def list_scopes(self) -> list[ScopeRef]:
        scope = self.integration.spec.scope
        if not scope.repositories:
            raise CollectorError(
                "no repositories to collect",
                hint="list local paths or clone URLs in spec.scope.repositories",
            )
        found: dict[str, ScopeRef] = {}
        for entry in scope.repositories:
            for location in self._expand(entry):
                if matches_any((location.name, location.id), scope.exclude):
                    continue
                self._locations[location.id] = location
                found.setdefault(
                    location.id,
                    ScopeRef(
                        name=location.name,
                        id=location.id,
                        attributes={"url": location.public_url, "path": str(location.path or "") or None},
                    ),
                )
        return list(found.values())

    @staticmethod
    def _expand(entry: str) -> list[Location]:
        location = parse_location(entry)
        if location.path is not None and glob.has_magic(entry):
            matches = sorted(glob.glob(os.path.expanduser(entry)))
            return [parse_location(m) for m in matches if _is_repository(Path(m))]
        return [location]

    # -- collection ------------------------------------------------------------------------------

    async def collect(
        self, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None
    ) -> AsyncIterator[Batch]:
        location = self._locations.get(scope.id) or parse_location(scope.id)
        git = Git(_auth_env(location.url, self.credentials))
        repository = await self._prepare(git, location)
        if resource is Resource.COMMITS:
            batches = self._commits(git, repository, cursor)
        elif resource is Resource.DEPLOYMENTS:
            batches = self._deployments(git, repository, cursor)
        elif resource is Resource.BRANCHES_AND_TAGS:
            batches = self._refs(git, repository, cursor)
        elif resource is Resource.CONTRIBUTORS:
            batches = self._contributors(git, repository)
        else:
            return
        # aclosing: when the runtime stops early, the nested generators (and their git processes)
        # are closed now, not whenever the garbage collector gets to them.
        async with aclosing(batches):
            async for batch in batches:
                yield batch

    async def _prepare(self, git: Git, location: Location) -> _Repository:
        """The repository ready to read: a local path as it is, a URL cloned or fetched."""
        lock = self._locks.setdefault(location.id, asyncio.Lock())
        async with lock:
            if location.path is not None:
                cwd = location.path
                if not cwd.exists():
                    raise CollectorError(
                        f"{cwd} does not exist",
                        hint="fix the path in spec.scope.repositories or mount the repository there",
                    )
                await self._check(git, ["rev-parse", "--git-dir"], cwd, location)
            else:
                cwd = await self._mirror(git, location)
            default_branch, default_revision = await _default_branch(git, cwd)
        ref = RepositoryRef(
            provider=PROVIDER,
            id=location.id[:255],
            name=location.name[:255],
            url=location.public_url,
            default_branch=default_branch[:100] if default_branch else None,
        )
        return _Repository(location, cwd, ref, default_revision)

    async def _check(self, git: Git, args: list[str], cwd: Path, location: Location) -> None:
        try:
            await git.run(args, cwd=cwd)
        except GitError as exc:
            raise _explain(exc, location) from None

    async def _mirror(self, git: Git, location: Location) -> Path:
        assert location.url is not None
        digest = hashlib.sha256(location.id.encode()).hexdigest()[:12]
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", location.name)[-80:]
        target = self.cache_dir / f"{safe}-{digest}.git"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            logger.info("cloning repository", extra={"repository": location.name, "url": location.public_url})
            try:
                await git.run(["clone", "--mirror", "--quiet", _clone_url(location), str(partial)])
            except GitError as exc:
                shutil.rmtree(partial, ignore_errors=True)
                raise _explain(exc, location) from None
            partial.rename(target)
            self._fetched[location.id] = time.monotonic()
        elif time.monotonic() - self._fetched.get(location.id, -math.inf) >= self._fetch_interval:
            try:
                await git.run(["fetch", "--prune", "--quiet", "origin"], cwd=target)
            except GitError as exc:
                raise _explain(exc, location) from None
            self._fetched[location.id] = time.monotonic()
        return target

    # -- commits ---------------------------------------------------------------------------------

    async def _branch_tips(self, git: Git, repository: _Repository) -> dict[str, str]:
        _, out, _ = await git.run(
            [
                "for-each-ref",
                "--format=%(objectname)%00%(refname)%00%(symref)%00%(objecttype)",
                "refs/heads",
                "refs/remotes",
            ],
            cwd=repository.cwd,
        )
        tips: dict[str, str] = {}
        for line in out.decode("utf-8", "replace").splitlines():
            sha, ref, symref, kind = [*line.split("\0"), "", "", ""][:4]
            if not symref and kind == "commit":
                tips[ref] = sha
        return tips

    async def _existing(self, git: Git, repository: _Repository, shas: Iterable[str]) -> set[str]:
        """The SHAs that name commits in the repository (force-pushed history may be gone)."""
        wanted = sorted(set(shas))
        if not wanted:
            return set()
        _, out, _ = await git.run(
            ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
            cwd=repository.cwd,
            stdin=("\n".join(wanted) + "\n").encode(),
        )
        rows = (line.split() for line in out.decode().splitlines())
        return {parts[0] for parts in rows if parts[-1] == "commit"}

    async def _commits(
        self, git: Git, repository: _Repository, cursor: dict[str, Any] | None
    ) -> AsyncGenerator[Batch, None]:
        cursor = cursor or {}
        raw_tips = cursor.get("tips")
        tips: dict[str, str] = (
            {str(k): str(v) for k, v in raw_tips.items()} if isinstance(raw_tips, dict) else {}
        )
        walk = Walk.from_json(cursor.get("walk"))
        if walk is not None:
            present = await self._existing(git, repository, [*walk.include, *walk.exclude])
            if not set(walk.include) <= present:
                logger.warning(
                    "interrupted walk refers to commits that are gone; starting a new one",
                    extra={"repository": repository.ref.name},
                )
                walk = None
            else:
                walk.exclude = [sha for sha in walk.exclude if sha in present]
        while True:
            if walk is None:
                current = await self._branch_tips(git, repository)
                if current == tips:
                    return
                previous = await self._existing(git, repository, tips.values())
                horizon = backfill_horizon(self.integration, self._clock())
                walk = Walk(
                    include=sorted(set(current.values())),
                    exclude=sorted(previous),
                    since=_git_date(horizon),
                    tips=current,
                )
            async with aclosing(self._walk(git, repository, walk)) as commits:
                async for events in commits:
                    walk.done += len(events)
                    yield Batch(events, cursor=_commit_cursor(tips, walk))
            tips, walk = walk.tips, None
            yield Batch([], cursor=_commit_cursor(tips, None))
            # Loop: branches may have moved while a resumed walk ran; a fresh walk ends at once.

    async def _walk(
        self, git: Git, repository: _Repository, walk: Walk
    ) -> AsyncGenerator[list[EventData], None]:
        if not walk.include:
            return
        args = [
            *LOG_OPTIONS,
            "log",
            "--stdin",
            "-z",
            "--numstat",
            "--diff-merges=off",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--encoding=UTF-8",
            f"--since={walk.since}",
            f"--skip={walk.done}",
            f"--format={COMMIT_FORMAT}",
        ]
        revisions = [*walk.include, *(f"^{sha}" for sha in walk.exclude)]
        parser = CommitStreamParser()
        batch: list[EventData] = []
        stream = git.stream(args, cwd=repository.cwd, stdin=("\n".join(revisions) + "\n").encode())
        try:
            async for tokens in stream:
                for parsed in parser.feed(tokens):
                    batch.append(self._commit(parsed, repository))
                    if len(batch) >= self.batch_size:
                        yield batch
                        batch = []
        except GitError as exc:
            raise _explain(exc, repository.location) from None
        finally:
            await stream.aclose()
        for parsed in parser.finish():
            batch.append(self._commit(parsed, repository))
        if batch:
            yield batch

    def _commit(self, parsed: ParsedCommit, repository: _Repository) -> CommitData:
        try:
            return to_commit(parsed, repository.ref)
        except (ValidationError, ValueError) as exc:
            # One malformed commit (a broken date, a mangled identity) must not block the repository
            # forever; it is published with what is certain. The SHA is logged, never the content.
            sha = parsed.header[0].decode("ascii", "replace")
            logger.warning(
                "malformed commit; publishing it without its identity details",
                extra={"repository": repository.ref.name, "sha": sha, "error": type(exc).__name__},
            )
            return _fallback_commit(parsed, repository.ref)

    # -- branches, tags and contributors -----------------------------------------------------------

    async def _branches(self, git: Git, repository: _Repository) -> dict[str, tuple[str, datetime | None]]:
        """Branch name → (head commit, its committer time): local branches, then remote-tracking
        ones without a local branch of the same name (the default remote's first)."""
        _, out, _ = await git.run(
            ["for-each-ref", f"--format={BRANCH_FORMAT}", "refs/heads", "refs/remotes"], cwd=repository.cwd
        )
        local: dict[str, tuple[str, datetime | None]] = {}
        remote: list[tuple[bool, str, str, tuple[str, datetime | None]]] = []
        for line in out.decode("utf-8", "replace").splitlines():
            refname, sha, kind, symref, committed = [*line.split("\0"), "", "", "", ""][:5]
            if symref or kind != "commit":
                continue  # `origin/HEAD` points at a branch listed anyway; a ref to a tree is no branch
            head = (sha, parse_time_or_none(committed))
            if refname.startswith("refs/heads/"):
                local[refname.removeprefix("refs/heads/")] = head
            else:
                remote_name, _, name = refname.removeprefix("refs/remotes/").partition("/")
                if name:
                    remote.append((remote_name != DEFAULT_REMOTE, remote_name, name, head))
        branches = dict(local)
        for _, _, name, head in sorted(remote):
            branches.setdefault(name, head)
        return {name: head for name, head in branches.items() if len(name) <= 255}

    async def _refs(
        self, git: Git, repository: _Repository, cursor: dict[str, Any] | None
    ) -> AsyncGenerator[Batch, None]:
        """Every branch and tag, then those gone since the previous complete listing (the snapshot
        is the cursor, saved with the last batch only)."""
        snapshot = RefSnapshot(cursor)
        branches = await self._branches(git, repository)
        events: list[EventData] = [
            branch_data(repository.ref, name, sha, updated_at=committed)
            for name, (sha, committed) in sorted(branches.items())
        ]
        events += [
            TagData(
                repository=repository.ref,
                name=tag.name,
                sha=tag.sha,
                annotated=tag.annotated,
                tagged_at=tag.time,
                tagger=tag.tagger,
                message=tag.message.rstrip("\n") or None if tag.message else None,
            )
            for tag in await self._tags(git, repository)
        ]
        for start in range(0, len(events), self.batch_size):
            chunk = events[start : start + self.batch_size]
            snapshot.saw(chunk)
            yield Batch(chunk)
        yield Batch(snapshot.deleted(repository.ref), cursor=snapshot.dump())

    async def _contributors(self, git: Git, repository: _Repository) -> AsyncGenerator[Batch, None]:
        """Authors of the default branch with their commit counts, one per email (the first name
        `shortlog` gives it, the one with the most commits), in one batch: a person listed under
        several identities is then summed by the processor as one listing."""
        code, _, _ = await git.run(
            ["rev-parse", "--verify", "--quiet", f"{repository.default_revision}^{{commit}}"],
            cwd=repository.cwd,
            check=False,
        )
        if code != 0:
            return  # no commit yet
        _, out, _ = await git.run(
            ["shortlog", "-s", "-n", "-e", repository.default_revision, "--"], cwd=repository.cwd
        )
        counts: dict[str, tuple[str | None, str | None, int]] = {}
        for line in out.decode("utf-8", "replace").splitlines():
            parsed = _shortlog_line(line)
            if parsed is None:
                continue
            count, name, email = parsed
            key = (email or name or "").lower()
            earlier = counts.get(key)
            counts[key] = (earlier[0], earlier[1], earlier[2] + count) if earlier else (name, email, count)
        events: list[EventData] = []
        for name, email, count in counts.values():
            who = person_or_none(name, email)
            if who is not None:
                events.append(ContributorData(repository=repository.ref, person=who, contributions=count))
        if events:
            yield Batch(events)

    # -- deployments -----------------------------------------------------------------------------

    async def _tags(
        self, git: Git, repository: _Repository, pattern: re.Pattern[str] | None = None
    ) -> list[Tag]:
        """Tags of commits whose name matches `pattern` (all when None), oldest first by (tag
        time, name)."""
        _, out, _ = await git.run(["for-each-ref", f"--format={TAG_FORMAT}", "refs/tags"], cwd=repository.cwd)
        fields = out.split(b"\0")
        tags: list[Tag] = []
        for start in range(0, len(fields) - TAG_FIELDS + 1, TAG_FIELDS):
            record = [f.decode("utf-8", "replace") for f in fields[start : start + TAG_FIELDS]]
            tag = await self._tag(git, repository, [record[0].lstrip("\n"), *record[1:]], pattern)
            if tag is not None:
                tags.append(tag)
        tags.sort(key=lambda t: t.key)
        return tags

    async def _tag(
        self, git: Git, repository: _Repository, record: list[str], pattern: re.Pattern[str] | None
    ) -> Tag | None:
        refname, kind, sha, peeled_kind, peeled, tagger_date, commit_date, peeled_date = record[:8]
        tagger, email, text = record[8:]
        name = refname.removeprefix("refs/tags/")
        if (pattern is not None and not pattern.search(name)) or not name or len(name) > 255:
            return None
        if kind == "commit":
            return Tag(name, sha, parse_time(commit_date), False, None, None)
        if kind != "tag":
            return None  # a tag of a tree or a blob deploys nothing
        if peeled_kind != "commit":  # a tag of a tag: peel all the way
            peel = ["log", "-1", "--format=%H%x00%cI", f"{refname}^{{commit}}", "--"]
            code, out, _ = await git.run(peel, cwd=repository.cwd, check=False)
            if code != 0 or b"\0" not in out:
                return None
            peeled, peeled_date = out.decode().strip().split("\0")
        when = parse_time(tagger_date or peeled_date)
        return Tag(name, peeled, when, True, text or None, person_or_none(tagger, email.strip("<>")))

    async def _deployments(
        self, git: Git, repository: _Repository, cursor: dict[str, Any] | None
    ) -> AsyncGenerator[Batch, None]:
        tags = await self._tags(git, repository, self.tag_pattern)
        previous = {tag.name: tags[i - 1] if i else None for i, tag in enumerate(tags)}
        cursor = cursor or {}
        upper = _key_from(cursor.get("upper"))
        lower = _key_from(cursor.get("lower"))
        complete = bool(cursor.get("complete"))
        if upper is None:  # nothing published yet: back-fill everything within the horizon
            upper, lower, complete = (tags[-1].key if tags else None), None, not tags

        def state() -> dict[str, Any]:
            return {"upper": _key_json(upper), "lower": _key_json(lower), "complete": complete}

        # New deployments first, oldest to newest, so `upper` only ever moves forward.
        fresh = [tag for tag in tags if upper is not None and tag.key > upper]
        for start in range(0, len(fresh), DEPLOYMENT_BATCH_SIZE):
            chunk = fresh[start : start + DEPLOYMENT_BATCH_SIZE]
            events: list[EventData] = [
                await self._deployment(git, repository, tag, previous[tag.name]) for tag in chunk
            ]
            upper = chunk[-1].key
            yield Batch(events, cursor=state())
        if complete:
            return
        # Then the back-fill, newest first, down to the horizon.
        horizon = backfill_horizon(self.integration, self._clock())
        bound = lower
        older = [
            tag
            for tag in reversed(tags)
            if tag.time >= horizon
            and (tag.key < bound if bound is not None else upper is not None and tag.key <= upper)
        ]
        for start in range(0, len(older), DEPLOYMENT_BATCH_SIZE):
            chunk = older[start : start + DEPLOYMENT_BATCH_SIZE]
            events = [await self._deployment(git, repository, tag, previous[tag.name]) for tag in chunk]
            lower = chunk[-1].key
            yield Batch(events, cursor=state())
        complete = True
        yield Batch([], cursor=state())

    async def _deployment(
        self, git: Git, repository: _Repository, tag: Tag, previous: Tag | None
    ) -> DeploymentData:
        shipped, hotfix_commit = await self._shipped(git, repository, tag, previous)
        hotfix = hotfix_commit or is_hotfix(self.hotfix_pattern, [tag.name], [tag.message])
        rollback = False
        if not shipped and previous is not None and previous.sha != tag.sha:
            code, _, _ = await git.run(
                ["merge-base", "--is-ancestor", tag.sha, previous.sha], cwd=repository.cwd, check=False
            )
            rollback = code == 0
        return DeploymentData(
            repository=repository.ref,
            deployment_id=tag.name,
            service=repository.ref.name,
            environment="production",
            is_production=True,
            status="success",
            started_at=tag.time,
            finished_at=tag.time,
            revision=tag.sha,
            commit_shas=shipped,
            deployed_by=tag.tagger,
            is_hotfix=hotfix,
            is_rollback=rollback,
        )

    async def _shipped(
        self, git: Git, repository: _Repository, tag: Tag, previous: Tag | None
    ) -> tuple[list[str], bool]:
        """The commits `tag` ships (newest first, capped) and whether one of them is a fix."""
        args = [*LOG_OPTIONS, "log", "--stdin", "-z", "--no-color", "--encoding=UTF-8", "--format=%H%x00%B"]
        revisions = [tag.sha]
        if previous is not None:
            revisions.append(f"^{previous.sha}")
        else:
            args.append(f"--since={_git_date(backfill_horizon(self.integration, tag.time))}")
        shipped: list[str] = []
        hotfix = False
        total = 0
        pending: bytes | None = None
        stream = git.stream(args, cwd=repository.cwd, stdin=("\n".join(revisions) + "\n").encode())
        try:
            async for tokens in stream:
                for token in tokens:
                    if pending is None:
                        pending = token
                        continue
                    total += 1
                    if len(shipped) < MAX_SHIPPED_COMMITS:
                        shipped.append(pending.decode().strip())
                    if not hotfix and is_hotfix(self.hotfix_pattern, (), [token.decode("utf-8", "replace")]):
                        hotfix = True
                    pending = None
        except GitError as exc:
            raise _explain(exc, repository.location) from None
        finally:
            await stream.aclose()
        if pending is not None:  # the last commit's message may end the output without a NUL
            total += 1
            if len(shipped) < MAX_SHIPPED_COMMITS:
                shipped.append(pending.decode().strip())
        if total > MAX_SHIPPED_COMMITS:
            logger.warning(
                "deployment ships more commits than an event carries; keeping the newest",
                extra={"repository": repository.ref.name, "tag": tag.name, "commits": total},
            )
        return shipped, hotfix


async def _default_branch(git: Git, cwd: Path) -> tuple[str | None, str]:
    """(default branch name, the ref to read it from): the default remote's default branch in a
    working clone that knows it (a checkout may be on any branch), else the checked-out branch."""
    code, out, _ = await git.run(
        ["symbolic-ref", "--quiet", f"refs/remotes/{DEFAULT_REMOTE}/HEAD"], cwd=cwd, check=False
    )
    target = out.decode().strip()
    prefix = f"refs/remotes/{DEFAULT_REMOTE}/"
    if code == 0 and target.startswith(prefix):
        return target.removeprefix(prefix), target
    code, out, _ = await git.run(["symbolic-ref", "--quiet", "--short", "HEAD"], cwd=cwd, check=False)
    checked_out = out.decode().strip() if code == 0 else ""
    return checked_out or None, "HEAD"


_SHORTLOG_LINE = re.compile(r"^\s*(\d+)\t(.*?)\s*(?:<([^<>]*)>)?\s*$")


def _shortlog_line(line: str) -> tuple[int, str | None, str | None] | None:
    """`  12\tJane Doe <jane@acme.com>` → (12, "Jane Doe", "jane@acme.com")."""
    match = _SHORTLOG_LINE.match(line)
    if match is None:
        return None
    count, name, email = match.groups()
    return int(count), name or None, email or None


def _fallback_commit(parsed: ParsedCommit, repository: RepositoryRef) -> CommitData:
    header = parsed.header
    sha = header[0].decode("ascii", "replace")
    parents = header[1].decode("ascii", "replace").split()
    epoch = datetime.fromtimestamp(0, UTC)
    authored = epoch
    for raw in (header[4], header[5]):
        try:
            authored = parse_time(raw.decode())
            break
        except ValueError:
            continue
    return CommitData(
        repository=repository,
        sha=sha,
        author=PersonRef(),
        authored_at=authored,
        parents=parents,
    )


def _explain(exc: GitError, location: Location) -> Exception:
    """Turn git's stderr into a `CollectorError` with a hint when a user must act; otherwise keep
    the `GitError` (retried with back-off)."""
    text = exc.stderr.lower()
    where = location.public_url or str(location.path)
    if "dubious ownership" in text:
        return CollectorError(
            f"git refuses {where}: owned by another user",
            hint="add it to safe.directory in the collector's global git config, or fix its owner",
        )
    if "authentication failed" in text or "could not read username" in text or "permission denied" in text:
        return CollectorError(
            f"cannot authenticate to {where}",
            hint="put a token (or user:password) with read access in the credentials Secret",
        )
    if (
        "not a git repository" in text
        or "does not appear to be a git repository" in text
        or "repository not found" in text
        or ("repository" in text and "not found" in text)
    ):
        return CollectorError(
            f"{where} is not a git repository",
            hint="fix the path or URL in spec.scope.repositories",
        )
    if "could not resolve host" in text:
        return CollectorError(f"cannot resolve the host of {where}", hint="check the URL and the network/DNS")
    return exc
