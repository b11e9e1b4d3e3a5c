"""Test suite entry: each real server is a plugin under tests/testenv (DESIGN.md §9)."""

pytest_plugins = [
    "tests.testenv.postgres",
    "tests.testenv.redis",
    "tests.testenv.kafka",
    "tests.testenv.kubernetes",
]
