"""GraphQL documents the GitHub client sends, one named operation each.

Why GraphQL for history: one request returns a page of 100 pull requests *with* their reviews,
review-comment counts, commit SHAs and merge information, where REST needs one call per pull request
for reviews and another for commits. Nested connections are sized so that almost every pull request
fits in the outer page; the few that overflow are paged on their own (`PULL_REQUEST_COMMITS`,
`PULL_REQUEST_REVIEWS`).

Every operation asks for `rateLimit { cost remaining resetAt }`, GitHub's point budget for
GraphQL, so the client knows its budget without a separate call. Sizes are variables (not literals)
so the client can shrink a page when GitHub times out on a heavy query.

Field names follow GitHub's GraphQL reference (objects Commit, PullRequest, PullRequestReview,
PageInfo, RateLimit, Ref, Release, Tag). `changedFilesIfAvailable` replaced `changedFiles` on Commit; older
Enterprise Server versions only know the latter, hence the `_LEGACY` variants that alias it (every
operation that selects commit fields: the history and a pull request's own commits).
"""

from __future__ import annotations

RATE_LIMIT_FIELDS = "rateLimit { cost remaining resetAt }"

_COMMIT_FIELDS = """
        oid
        message
        authoredDate
        committedDate
        additions
        deletions
        {changed_files}
        author {{ name email user {{ login }} }}
        parents(first: 5) {{ nodes {{ oid }} }}
"""

_COMMIT_HISTORY = """
query CommitHistory($owner: String!, $name: String!, $rev: String!, $since: GitTimestamp,
                    $after: String, $pageSize: Int!) {{
  {rate_limit}
  repository(owner: $owner, name: $name) {{
    object(expression: $rev) {{
      ... on Commit {{
        oid
        history(first: $pageSize, after: $after, since: $since) {{
          pageInfo {{ hasNextPage endCursor }}
          nodes {{{commit_fields}      }}
        }}
      }}
    }}
  }}
}}
"""

COMMIT_HISTORY = _COMMIT_HISTORY.format(
    rate_limit=RATE_LIMIT_FIELDS,
    commit_fields=_COMMIT_FIELDS.format(changed_files="changedFilesIfAvailable"),
)
COMMIT_HISTORY_LEGACY = _COMMIT_HISTORY.format(
    rate_limit=RATE_LIMIT_FIELDS,
    commit_fields=_COMMIT_FIELDS.format(changed_files="changedFilesIfAvailable: changedFiles"),
)

_PERSON = "author { login ... on User { name } }"

_REVIEW_NODE = f"databaseId id state submittedAt {_PERSON} comments {{ totalCount }}"
# A pull request's own commits carry the same fields as the default branch's history: a squash-merged
# pull request's commits are published as commits of their own (lead time starts at them), and a
# commit also on the default branch must not lose fields when it arrives from either side.
_COMMIT_NODE = "__COMMIT_NODE__"  # where the commit selection goes in the pull-request operations
_PR_COMMIT_NODE = "commit {{{commit_fields}        }}"


def _with_commit_fields(document: str, changed_files: str) -> str:
    fields = _COMMIT_FIELDS.format(changed_files=changed_files)
    return document.replace(_COMMIT_NODE, _PR_COMMIT_NODE.format(commit_fields=fields))


_PULL_REQUESTS = f"""
query PullRequests($owner: String!, $name: String!, $pageSize: Int!, $after: String,
                   $commitsFirst: Int!, $reviewsFirst: Int!) {{
  {RATE_LIMIT_FIELDS}
  repository(owner: $owner, name: $name) {{
    pullRequests(first: $pageSize, after: $after, orderBy: {{field: UPDATED_AT, direction: DESC}}) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        number
        title
        url
        state
        createdAt
        updatedAt
        mergedAt
        closedAt
        headRefName
        baseRefName
        additions
        deletions
        changedFiles
        {_PERSON}
        mergeCommit {{ oid }}
        commits(first: $commitsFirst) {{
          totalCount
          pageInfo {{ hasNextPage endCursor }}
          nodes {{ __COMMIT_NODE__ }}
        }}
        reviews(first: $reviewsFirst) {{
          totalCount
          pageInfo {{ hasNextPage endCursor }}
          nodes {{ {_REVIEW_NODE} }}
        }}
      }}
    }}
  }}
}}
"""

_PULL_REQUEST_COMMITS = f"""
query PullRequestCommits($owner: String!, $name: String!, $number: Int!, $after: String, $pageSize: Int!) {{
  {RATE_LIMIT_FIELDS}
  repository(owner: $owner, name: $name) {{
    pullRequest(number: $number) {{
      commits(first: $pageSize, after: $after) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{ __COMMIT_NODE__ }}
      }}
    }}
  }}
}}
"""

PULL_REQUESTS = _with_commit_fields(_PULL_REQUESTS, "changedFilesIfAvailable")
PULL_REQUESTS_LEGACY = _with_commit_fields(_PULL_REQUESTS, "changedFilesIfAvailable: changedFiles")
PULL_REQUEST_COMMITS = _with_commit_fields(_PULL_REQUEST_COMMITS, "changedFilesIfAvailable")
PULL_REQUEST_COMMITS_LEGACY = _with_commit_fields(
    _PULL_REQUEST_COMMITS, "changedFilesIfAvailable: changedFiles"
)

PULL_REQUEST_REVIEWS = f"""
query PullRequestReviews($owner: String!, $name: String!, $number: Int!, $after: String, $pageSize: Int!) {{
  {RATE_LIMIT_FIELDS}
  repository(owner: $owner, name: $name) {{
    pullRequest(number: $number) {{
      reviews(first: $pageSize, after: $after) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{ {_REVIEW_NODE} }}
      }}
    }}
  }}
}}
"""

# Tags newest first with the dates REST's tag listing lacks: the tagger date of an annotated tag,
# the commit date of a lightweight one, and the tagged commit's oid either way.
TAGS = f"""
query Tags($owner: String!, $name: String!, $pageSize: Int!, $after: String) {{
  {RATE_LIMIT_FIELDS}
  repository(owner: $owner, name: $name) {{
    refs(refPrefix: "refs/tags/", first: $pageSize, after: $after,
         orderBy: {{field: TAG_COMMIT_DATE, direction: DESC}}) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        name
        target {{
          __typename
          oid
          ... on Tag {{
            message
            tagger {{ date name email }}
            target {{ __typename oid ... on Commit {{ committedDate message }} }}
          }}
          ... on Commit {{ committedDate message }}
        }}
      }}
    }}
  }}
}}
"""

# Deployment statuses older than 90 days are deleted by GitHub, but a deployment keeps its `state`;
# one `nodes` query recovers the outcome of up to 100 such deployments.
DEPLOYMENT_STATES = f"""
query DeploymentStates($ids: [ID!]!) {{
  {RATE_LIMIT_FIELDS}
  nodes(ids: $ids) {{
    ... on Deployment {{
      id
      databaseId
      state
      updatedAt
      latestStatus {{ state createdAt }}
    }}
  }}
}}
"""

# Branches with their head commit and its date, and the repository's default branch (its own flag:
# the scope listing may be older). Branch protection is not asked for: `Ref.branchProtectionRule`
# needs admin rights on the repository, and a token without them would fail the whole listing.
BRANCHES = f"""
query Branches($owner: String!, $name: String!, $pageSize: Int!, $after: String) {{
  {RATE_LIMIT_FIELDS}
  repository(owner: $owner, name: $name) {{
    defaultBranchRef {{ name }}
    refs(refPrefix: "refs/heads/", first: $pageSize, after: $after,
         orderBy: {{field: ALPHABETICAL, direction: ASC}}) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        name
        target {{ __typename oid ... on Commit {{ committedDate }} }}
      }}
    }}
  }}
}}
"""

# Releases newest first. Drafts are listed to tokens with push access only.
RELEASES = f"""
query Releases($owner: String!, $name: String!, $pageSize: Int!, $after: String) {{
  {RATE_LIMIT_FIELDS}
  repository(owner: $owner, name: $name) {{
    releases(first: $pageSize, after: $after, orderBy: {{field: CREATED_AT, direction: DESC}}) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        id
        databaseId
        name
        tagName
        createdAt
        publishedAt
        isDraft
        isPrerelease
        url
        author {{ login name }}
      }}
    }}
  }}
}}
"""
