"""confluent-kafka's transactional producer against BOOTSTRAP: COUNT transactions of SENDS
messages `kaos:<id>:python` over partitions 0 and 1 of TOPIC, every third one aborted, the others
committed; then a zombie: a producer with an open transaction is fenced by a second producer that
initialises the same transactional.id, and its commit must fail. Then reads the topic twice, at
read_committed and at read_uncommitted, to the end. Prints one JSON object: {"committed": [ids],
"aborted": [ids], "zombie": [ids], "zombie_error": str|null, "successor": [ids],
"read_committed": [ids], "read_uncommitted": [ids], "errors": [...], "librdkafka": str}.
Driven by broker/tests/txn_python.rs."""

import json
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, libversion

bootstrap, topic, count, sends = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
errors = []


def on_delivery(err, msg):
    if err is not None:
        errors.append(str(err))


def producer(txn_id):
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": txn_id,
            "transaction.timeout.ms": 60000,
            "linger.ms": 2,
        }
    )
    p.init_transactions(30)
    return p


def send(p, ids):
    for message_id in ids:
        p.produce(
            topic,
            value=f"kaos:{message_id}:python".encode(),
            partition=message_id % 2,
            on_delivery=on_delivery,
        )
        p.poll(0)


committed, aborted = [], []
main = producer("py-txn")
next_id = 0
for t in range(count):
    ids = list(range(next_id, next_id + sends))
    next_id += sends
    main.begin_transaction()
    send(main, ids)
    if t % 3 == 2:
        # Flushed first, so that the aborted records are in the log (read_uncommitted sees them);
        # an abort purges what is still queued.
        main.flush(30)
        main.abort_transaction(30)
        aborted.extend(ids)
    else:
        main.commit_transaction(30)
        committed.extend(ids)

# The zombie: an open transaction whose producer is fenced by a successor with the same id.
zombie = producer("py-zombie")
zombie_ids = list(range(next_id, next_id + sends))
next_id += sends
zombie.begin_transaction()
send(zombie, zombie_ids)
zombie.flush(30)
successor = producer("py-zombie")
successor_ids = list(range(next_id, next_id + sends))
next_id += sends
successor.begin_transaction()
send(successor, successor_ids)
successor.commit_transaction(30)
zombie_error = None
try:
    zombie.commit_transaction(30)
except KafkaException as e:
    zombie_error = e.args[0].name()


def read_all(isolation):
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"py-txn-{isolation}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "enable.partition.eof": True,
        }
    )
    c.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
    ids, eof = [], set()
    for _ in range(600):
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == -191:  # _PARTITION_EOF
                eof.add(msg.partition())
                if len(eof) == 2:
                    break
            continue
        ids.append(int(msg.value().decode().split(":")[1]))
    c.close()
    return sorted(ids)


print(
    json.dumps(
        {
            "committed": committed,
            "aborted": aborted,
            "zombie": zombie_ids,
            "zombie_error": zombie_error,
            "successor": successor_ids,
            "read_committed": read_all("read_committed"),
            "read_uncommitted": read_all("read_uncommitted"),
            "errors": errors[:10],
            "librdkafka": libversion()[0],
        }
    )
)
