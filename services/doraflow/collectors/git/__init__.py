"""Git providers: GitHub, GitLab, Bitbucket (REST/GraphQL clients) and local git (the `git` command)."""
