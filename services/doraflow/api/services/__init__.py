"""Business logic of the API: routes call these, these talk to the database, cache and bus.
Every function takes the caller's organization id and never returns another organization's rows."""
