#!/bin/sh
# Creates the modelgw topics on the compose fleet's broker (idempotent: an
# existing topic is left as it is; grow partitions with
# `kafka-topics.sh --alter --partitions N`, never shrink). Runs once as the
# compose service `kafka-init`, in the apache/kafka image.
#
# Partition counts bound parallelism: within the consumer group a partition is
# read by one worker at a time, so a tier with P partitions keeps at most P
# workers busy. Retention and compaction choices are explained in
# docs/operations.md ("Topics").
set -eu

BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9092}"
RF="${REPLICATION_FACTOR:-1}"
KT=/opt/kafka/bin/kafka-topics.sh
DAY_MS=86400000

tries=0
until "$KT" --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "create-topics: broker $BOOTSTRAP did not answer" >&2
    exit 1
  fi
  sleep 2
done

# create NAME PARTITIONS CONFIG...
create() {
  name=$1 parts=$2
  shift 2
  set -- $(for c in "$@"; do printf -- '--config %s ' "$c"; done)
  "$KT" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$name" \
    --partitions "$parts" --replication-factor "$RF" "$@"
}

# Requests: deleted after 3 days; at most 1 MiB each (worker.max_request_bytes).
for tier in high normal low; do
  case $tier in
  high) parts="${HIGH_PARTITIONS:-12}" ;;
  normal) parts="${NORMAL_PARTITIONS:-12}" ;;
  low) parts="${LOW_PARTITIONS:-6}" ;;
  esac
  create "llm.requests.$tier" "$parts" cleanup.policy=delete \
    retention.ms=$((3 * DAY_MS)) max.message.bytes=1100000
done

OUT="${OUTPUT_PARTITIONS:-12}"
# Responses keyed by request id: compaction collapses redelivered duplicates;
# delete still bounds the topic's age. Compaction waits 1 h so that live
# consumers see every record.
create llm.responses "$OUT" cleanup.policy=compact,delete \
  retention.ms=$((3 * DAY_MS)) min.compaction.lag.ms=3600000 max.message.bytes=2100000
# Chunks share their request's key: never compact (it would keep only the last).
create llm.chunks "$OUT" cleanup.policy=delete retention.ms=$DAY_MS
# Usage is the billing record: kept 30 days, every event (consumers de-duplicate
# by request id).
create llm.usage "$OUT" cleanup.policy=delete retention.ms=$((30 * DAY_MS))
# Dead letters: kept 14 days for investigation and replay.
create llm.dlq "${DLQ_PARTITIONS:-3}" cleanup.policy=delete retention.ms=$((14 * DAY_MS)) \
  max.message.bytes=2100000

"$KT" --bootstrap-server "$BOOTSTRAP" --describe --topic 'llm\..*' | grep PartitionCount || true
echo "create-topics: done"
