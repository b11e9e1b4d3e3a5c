"""Work trackers as sources of work items, transitions, sprints and incidents (issue 7).

`jira` (Cloud and Data Center), `linear` and `asana` implement the provider contract of
`doraflow.collectors.base`; the runtime, schedules, cursors, publishing and webhook routing are the
git collector's, reused as they are. `common` holds what the three share (the updated-time window
cursor, incident rules, status-name heuristics, HTTP failure → user-facing problem); `webhooks`
registers their webhook verifiers with the runtime's registry.
"""
