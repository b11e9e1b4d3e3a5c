#!/usr/bin/env bash
# Apache Kafka broker for the integration tests (DESIGN.md §9): the broker's runtime jars from
# Maven Central, collected by `mvn dependency:copy-dependencies` on the small pom in ./kafka, into
#   $DORAFLOW_CACHE/kafka/<version>/libs        (java -cp 'libs/*' kafka.Kafka ...)
#   $DORAFLOW_CACHE/kafka/<version>/config/log4j2.properties
#   $DORAFLOW_CACHE/kafka/current               (the version the test fixture should run)
# Maven's local repository lives in $DORAFLOW_CACHE/m2 so a warm run needs no network at all.
# Skipped when the jars are there for the same pom (seconds when warm).
# KAFKA_VERSION overrides the version (e.g. 3.9.1 if a client ever trips over a 4.x protocol change).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/kafka/pom.xml"
cache="${DORAFLOW_CACHE:-$HOME/.cache/doraflow}"
version="${KAFKA_VERSION:-4.1.1}"
home="$cache/kafka/$version"
libs="$home/libs"
# The marker records the pom's hash: editing the pom (another logging bridge, say) re-collects.
stamp="$(sha256sum "$pom" | cut -c1-16)-$version"

if [[ -f "$libs/.complete" && "$(cat "$libs/.complete")" == "$stamp" ]]; then
  echo "  kafka $version: cached ($(find "$libs" -name '*.jar' | wc -l) jars in $libs)"
else
  command -v mvn >/dev/null || { echo "  kafka: mvn not found (install Maven 3.8+)" >&2; exit 1; }
  command -v java >/dev/null || { echo "  kafka: java not found (Kafka 4.x needs Java 17+)" >&2; exit 1; }
  mkdir -p "$cache/m2" "$home"
  # Collect into a scratch directory and swap it in, so an interrupted run never looks complete.
  tmp="$(mktemp -d "$home/libs.tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # Maven's output goes to a log shown only on failure (even -q leaves terminal escape codes).
  if ! mvn -q -B -Dstyle.color=never -f "$pom" \
    -Dmaven.repo.local="$cache/m2" \
    -Dkafka.version="$version" \
    dependency:copy-dependencies \
    -DincludeScope=runtime \
    -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1; then
    cat "$tmp/mvn.log" >&2
    exit 1
  fi
  rm -f "$tmp/mvn.log"
  ls "$tmp"/kafka_2.13-"$version".jar >/dev/null  # the broker itself must be among them
  echo "$stamp" >"$tmp/.complete"
  rm -rf "$libs"
  mv "$tmp" "$libs"
  trap - EXIT
  echo "  kafka $version: collected $(find "$libs" -name '*.jar' | wc -l) jars into $libs"
fi

mkdir -p "$home/config"
cp "$here/kafka/log4j2.properties" "$home/config/log4j2.properties"
echo "$version" >"$cache/kafka/current"
echo "  kafka: version $version ($(ls "$libs" | grep -E '^(log4j-(core|slf4j-impl)|slf4j-api)-' | tr '\n' ' '))"
