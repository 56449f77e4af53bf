"""A confluent-kafka (librdkafka) group consumer: subscribe, read COUNT messages, commit
synchronously after processing, close. Prints `partition offset value` per message.

Usage: group_consumer.py BOOTSTRAP GROUP TOPIC COUNT
"""
import sys
import time

from confluent_kafka import Consumer, KafkaException


def main():
    bootstrap, group, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
    })
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 50
    while seen < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            raise KafkaException(message.error())
        print(message.partition(), message.offset(), message.value().decode(), flush=True)
        seen += 1
    if seen < count:
        sys.exit(f"only {seen} of {count} messages within the deadline")
    consumer.commit(asynchronous=False)
    consumer.close()


if __name__ == "__main__":
    main()
