"""Real servers for the test suite, started on loopback (DESIGN.md §9).

Each module here is a pytest plugin with session-scoped fixtures for one server.
Provisioning (downloads, builds) is `scripts/testenv`; these modules only start what
it cached, so a test never waits on the network.
"""
