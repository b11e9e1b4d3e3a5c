"""A real Apache Kafka broker for the integration tests (DESIGN.md §9).

`scripts/testenv.d/10-kafka.sh` puts the broker's jars from Maven Central into
`$DORAFLOW_CACHE/kafka/<version>/libs`; this plugin runs them with the machine's Java 17 as one
KRaft node (broker and controller in one process) on free loopback ports, with its data in a
temporary directory, once per test session. `DORAFLOW_TEST_KAFKA_BOOTSTRAP=host:port` uses an
existing broker instead and starts nothing; `DORAFLOW_TEST_KAFKA_HEAP` changes the heap (512m).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testenv.common import ManagedProcess, cache_dir, free_port, port_open, unavailable, wait_until

logger = logging.getLogger(__name__)

BOOTSTRAP_ENV = "DORAFLOW_TEST_KAFKA_BOOTSTRAP"
HEAP_ENV = "DORAFLOW_TEST_KAFKA_HEAP"
START_TIMEOUT_S = 120.0
REPO_LOG4J2 = Path(__file__).resolve().parents[2] / "scripts" / "testenv.d" / "kafka" / "log4j2.properties"


def kafka_home() -> Path | None:
    """The cached Kafka to run: the version 10-kafka.sh last provisioned (`kafka/current`)."""
    root = cache_dir() / "kafka"
    current = root / "current"
    if not current.is_file():
        return None
    home = root / current.read_text().strip()
    if not (home / "libs" / ".complete").is_file():
        return None
    return home


def server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    """A single-node KRaft configuration tuned for tests: every internal topic with replication
    1 (the only broker), one partition for the internal topics (a group coordinator is ready in
    well under a second instead of loading 50 partitions), no group join delay, no topic
    auto-creation (as in production, so a missing `ensure_topics` shows up in tests) and a small
    log-cleaner buffer (the default 128 MB would take a quarter of the test heap)."""
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"log.dirs={data_dir}",
            "num.partitions=1",
            "default.replication.factor=1",
            "min.insync.replicas=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "share.coordinator.state.topic.num.partitions=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "delete.topic.enable=true",
            "log.cleaner.dedupe.buffer.size=8388608",
            "num.network.threads=2",
            "num.io.threads=4",
            "",
        ]
    )


def random_cluster_id() -> str:
    """What `kafka-storage.sh random-uuid` prints (a UUID4 in unpadded URL-safe base64), made
    here to save a JVM start; Kafka rejects ids that start with '-', so those are redrawn."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _broker_answers(bootstrap: str) -> bool:
    """True once the broker serves metadata naming itself and a controller, i.e. clients can
    work. Runs aiokafka on a private event loop in a worker thread: this is called from a sync
    fixture, and the test session's own loop must stay untouched."""

    async def probe() -> bool:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.list_topics()
            cluster = await admin.describe_cluster()
            return bool(cluster.get("brokers")) and cluster.get("controller_id", -1) >= 0
        finally:
            await admin.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, probe()).result(timeout=30)


def start_broker(home: Path, work: Path) -> tuple[ManagedProcess, str]:
    """Format a fresh KRaft log directory and start the broker; return it once it answers."""
    java = shutil.which("java")
    if java is None:
        unavailable("java not found on PATH (Kafka needs Java 17+)")
    port, controller_port = free_port(), free_port()
    data_dir = work / "data"
    properties = work / "server.properties"
    properties.write_text(server_properties(data_dir, port, controller_port))
    log4j2 = home / "config" / "log4j2.properties"
    if not log4j2.is_file():
        log4j2 = REPO_LOG4J2
    heap = os.environ.get(HEAP_ENV, "512m")
    jvm = [
        java,
        f"-Xmx{heap}",
        "-Xms128m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        # C1 only: about a second faster to start on 2 cores, and a test broker never runs long
        # enough for C2's optimisations to pay off.
        "-XX:TieredStopAtLevel=1",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j2}",
        "-cp",
        str(home / "libs" / "*"),
    ]
    started = time.monotonic()
    cluster_id = random_cluster_id()
    fmt = subprocess.run(
        [*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if fmt.returncode != 0:
        raise RuntimeError(
            f"formatting the Kafka log directory failed:\n{fmt.stdout[-2000:]}\n{fmt.stderr[-2000:]}"
        )
    broker = ManagedProcess("kafka", [*jvm, "kafka.Kafka", str(properties)], work / "kafka.log", cwd=work)
    bootstrap = f"127.0.0.1:{port}"

    def ready() -> bool:
        broker.check_alive()  # a crashed JVM fails at once with its log, not after the timeout
        # The cheap port check first: a Kafka client against a closed port retries and logs errors.
        return port_open(port) and _broker_answers(bootstrap)

    try:
        wait_until(ready, timeout=START_TIMEOUT_S, what=f"Kafka broker on {bootstrap}", interval=0.25)
    except BaseException as exc:
        broker.stop()
        raise RuntimeError(f"{exc}\n--- broker log ---\n{broker.tail(60)}") from exc
    elapsed = time.monotonic() - started
    logger.info(
        "Kafka (%s) ready on %s in %.1fs (heap %s, log %s)",
        home.name,
        bootstrap,
        elapsed,
        heap,
        broker.log_path,
    )
    return broker, bootstrap


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`host:port` of a Kafka broker for the whole session (stopped at its end)."""
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        yield external
        return
    home = kafka_home()
    if home is None:
        unavailable(f"Kafka jars not in {cache_dir() / 'kafka'}: run `scripts/testenv kafka` first")
    broker, bootstrap = start_broker(home, tmp_path_factory.mktemp("kafka"))
    try:
        yield bootstrap
    finally:
        broker.stop(timeout=30)
