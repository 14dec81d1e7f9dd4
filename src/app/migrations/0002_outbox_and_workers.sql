-- Rung 9: the transactional outbox, what the workers keep, and how they apply a message once.

-- Events of committed business writes (link created, edited, deleted), published by the relay.
create table outbox (
  id         bigserial primary key,
  type       text not null,
  key        text not null,
  payload    jsonb not null,
  created_at timestamptz not null default now(),
  sent_at    timestamptz
);
-- The relay's poll: unsent events in id order.
create index outbox_unsent on outbox (id) where sent_at is null;

-- Events a worker has applied, in the transaction that applied them: a redelivery changes nothing.
create table outbox_applied (
  event_id   bigint primary key,
  applied_at timestamptz not null default now()
);

-- Click batches applied, named by their producer (a web server's log segment) and first byte,
-- written in the transaction that adds the batch's clicks: a redelivered batch changes nothing.
create table click_batches (
  producer     text not null,
  start_offset bigint not null,
  end_offset   bigint not null,
  clicks       bigint not null,
  applied_at   timestamptz not null default now(),
  primary key (producer, start_offset)
);

-- Per owner, kept current by the workers from the link events and click batches.
create table owner_summary (
  owner_id   bigint primary key references users (id) on delete cascade,
  links      bigint not null default 0,
  edits      bigint not null default 0,
  clicks     bigint not null default 0,
  updated_at timestamptz not null default now()
);
