"""Work trackers as sources of work items, transitions, sprints and incidents (issue 7).

`jira` (Cloud and Data Center), `linear` and `asana` implement the provider contract of
`doraflow.collectors.base`; the runtime, schedules, cursors, publishing and webhook routing are the
git collector's, reused as they are, and so are times, scope globs, the "updated since" cursor and
the error hints (`collectors.common`). `common` holds what only the three share (incident rules,
status-name heuristics, custom-field values); `webhooks` registers their webhook verifiers with the
runtime's registry.
"""
