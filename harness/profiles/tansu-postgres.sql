-- The tables tansu 0.6.0's PostgreSQL engine (`--storage-engine postgres://…`) reads and writes,
-- for the `tansu-postgres` profile (tansu-postgres.toml). tansu creates its sqlite tables itself
-- but not these: load this file once into the database its brokers share, before the first
-- broker starts (`psql -v ON_ERROR_STOP=1 -f harness/profiles/tansu-postgres.sql URL`).
--
-- Written for kaos from what tansu's queries (tansu-storage 0.6.0, src/sql/*.sql and
-- src/pg/record_fetch.sql) and its Rust code ask of each column: the column types are the ones
-- its row reads and parameters need (tokio-postgres converts only exact types: an id read as i32
-- is `int`, one read as i64 `bigint`, a producer epoch `smallint`, a topic's uuid `uuid`, a time
-- `timestamp`); the unique constraints are the ones its `on conflict (…)` clauses name. Nothing
-- else (tansu's own schema also has views for people reading the database; tansu does not use
-- them).

begin;

create table if not exists cluster (
    id int generated always as identity primary key,
    name text not null unique,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp
);

-- Topics and their partitions ("topitions").

create table if not exists topic (
    id int generated always as identity primary key,
    cluster int not null references cluster (id) on delete cascade,
    name text not null,
    uuid uuid default gen_random_uuid (),
    partitions int not null,
    replication_factor int not null,
    is_internal bool not null default false,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (cluster, name)
);

create table if not exists topic_configuration (
    id int generated always as identity primary key,
    topic int references topic (id) on delete cascade,
    name text not null,
    value text,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (topic, name)
);

create table if not exists topition (
    id int generated always as identity primary key,
    topic int references topic (id) on delete cascade,
    partition int,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (topic, partition)
);

create table if not exists watermark (
    id int generated always as identity primary key,
    topition int unique references topition (id) on delete cascade,
    low bigint,
    high bigint,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp
);

-- The log. A fetch hands a record out only once the transaction that wrote it is older than
-- every running one (`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`), so each row
-- keeps the id of the transaction that inserted it.

create table if not exists record (
    topition int references topition (id) on delete cascade,
    offset_id bigint not null,
    transaction_id xid8 not null default pg_current_xact_id (),
    attributes smallint,
    producer_id bigint,
    producer_epoch smallint,
    timestamp timestamp,
    k bytea,
    v bytea,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    primary key (topition, offset_id)
);

create table if not exists header (
    topition int,
    offset_id bigint,
    k bytea,
    v bytea,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    primary key (topition, offset_id, k),
    foreign key (topition, offset_id) references record (topition, offset_id) on delete cascade
);

-- Consumer groups: the group's state as one JSON document under an e-tag (compare and set), and
-- the committed offsets.

create table if not exists consumer_group (
    id int generated always as identity primary key,
    cluster int not null references cluster (id) on delete cascade,
    name text not null,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (cluster, name)
);

create table if not exists consumer_group_detail (
    id int generated always as identity primary key,
    consumer_group int unique references consumer_group (id) on delete cascade,
    e_tag uuid not null,
    detail json not null,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp
);

create table if not exists consumer_offset (
    id int generated always as identity primary key,
    consumer_group int references consumer_group (id) on delete cascade,
    topition int references topition (id) on delete cascade,
    committed_offset bigint,
    leader_epoch int,
    timestamp timestamp,
    metadata text,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (consumer_group, topition)
);

-- Idempotent producers: ids, epochs and the last sequence per partition.

create table if not exists producer (
    id bigint generated by default as identity primary key,
    cluster int not null references cluster (id) on delete cascade,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp
);

create table if not exists producer_epoch (
    id int generated by default as identity primary key,
    producer bigint references producer (id) on delete cascade,
    epoch smallint not null default 0,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (producer, epoch)
);

create table if not exists producer_detail (
    id bigint generated by default as identity primary key,
    producer_epoch int references producer_epoch (id) on delete cascade,
    topition int references topition (id) on delete cascade,
    sequence int not null default 0,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (producer_epoch, topition)
);

-- Transactions: the transactional id, each epoch's transaction (status BEGIN, PREPARE_COMMIT,
-- PREPARE_ABORT, COMMITTED or ABORTED; started_at set by the first AddPartitionsToTxn), the
-- partitions it wrote and the offsets it produced there, and the offsets it commits for groups.

create table if not exists txn (
    id bigint generated always as identity primary key,
    cluster int references cluster (id) on delete cascade,
    name text,
    producer bigint references producer (id) on delete cascade,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (cluster, name)
);

create table if not exists txn_detail (
    id bigint generated always as identity primary key,
    transaction bigint references txn (id) on delete cascade,
    producer_epoch int references producer_epoch (id) on delete cascade,
    transaction_timeout_ms int not null,
    started_at timestamp,
    status text,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (transaction, producer_epoch)
);

create table if not exists txn_topition (
    id int generated always as identity primary key,
    txn_detail int references txn_detail (id) on delete cascade,
    topition int references topition (id) on delete cascade,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (txn_detail, topition)
);

create table if not exists txn_produce_offset (
    id int generated always as identity primary key,
    txn_topition int unique references txn_topition (id) on delete cascade,
    offset_start bigint,
    offset_end bigint,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp
);

create table if not exists txn_offset_commit (
    id int generated always as identity primary key,
    txn_detail int references txn_detail (id) on delete cascade,
    consumer_group int references consumer_group (id) on delete cascade,
    generation_id int,
    member_id text,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (txn_detail, consumer_group)
);

create table if not exists txn_offset_commit_tp (
    id int generated always as identity primary key,
    offset_commit int references txn_offset_commit (id) on delete cascade,
    topition int references topition (id) on delete cascade,
    committed_offset bigint,
    leader_epoch int,
    metadata text,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (offset_commit, topition)
);

-- SASL/SCRAM users (tansu's `user` command).

create table if not exists scram_credential (
    id bigint generated by default as identity primary key,
    cluster int not null references cluster (id) on delete cascade,
    username text,
    mechanism int,
    salt bytea not null,
    iterations int not null,
    stored_key bytea not null,
    server_key bytea not null,
    last_updated timestamp not null default current_timestamp,
    created_at timestamp not null default current_timestamp,
    unique (cluster, username, mechanism)
);

commit;
