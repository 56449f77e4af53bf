"""Produces COUNT messages `kaos:<id>:python` to partition 0 of TOPIC with confluent-kafka's
idempotent producer (enable.idempotence, acks=all), waits for every delivery report, and prints
one JSON object: {"acked": [[id, offset], ...], "errors": [...], "fatal": str|null,
"remaining": int, "librdkafka": str}. Driven by broker/tests/idempotent_python.rs."""

import json
import sys

from confluent_kafka import Producer, libversion

bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
acked = []
errors = []
fatal = []


def on_delivery(err, msg):
    if err is not None:
        errors.append(str(err))
        return
    message_id = int(msg.value().decode().split(":")[1])
    acked.append([message_id, msg.offset()])


def on_error(err):
    if err.fatal():
        fatal.append(str(err))


producer = Producer(
    {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "batch.num.messages": 50,
        "retry.backoff.ms": 20,
        "message.timeout.ms": 60000,
        "error_cb": on_error,
    }
)
for message_id in range(count):
    for _ in range(100000):
        try:
            producer.produce(
                topic, value=f"kaos:{message_id}:python".encode(), partition=0, on_delivery=on_delivery
            )
            break
        except BufferError:
            producer.poll(0.01)
    producer.poll(0)
    if fatal:
        break
remaining = producer.flush(60)
print(
    json.dumps(
        {
            "acked": acked,
            "errors": errors[:10],
            "fatal": fatal[0] if fatal else None,
            "remaining": remaining,
            "librdkafka": libversion()[0],
        }
    )
)
