-- Rung 10, on every shard database (after 0001 and 0002): links and their clicks live on
-- the shard of hash(code); users live on the catalog database, so the foreign keys to users
-- go (integrity: docs/decisions.md, "Rung 10"). link_clicks_daily keeps its key to links:
-- a link id names the link's logical shard, so its clicks are always on the link's shard.
alter table links drop constraint links_owner_id_fkey;
alter table owner_summary drop constraint owner_summary_owner_id_fkey;

-- The logical shard of the row (hash(code) mod 1024), stored so that a logical shard's rows
-- can be selected (and, for resharding, filtered by a publication: a row filter's columns
-- must be in the replica identity, hence the index below as part of it later).
alter table links add column logical_shard smallint not null check (logical_shard >= 0 and logical_shard < 1024);
create index links_logical_shard on links (logical_shard);

-- Globally unique ids: 40 bits of ms since 2026-01-01, 10 bits of logical shard, 13 bits of
-- this database's sequence (shard-key.ts says the same in TypeScript).
create sequence ladder_id_seq;
create function ladder_id(logical integer) returns bigint language sql volatile as $$
  select (((floor(extract(epoch from clock_timestamp()) * 1000)::bigint - 1767225600000) & ((1::bigint << 40) - 1)) << 23)
       | ((logical::bigint & 1023) << 13)
       | (nextval('ladder_id_seq') % 8192)
$$;
alter table links alter column id drop default;

-- "My links": per owner, on the owner's shard (hash of the owner id), kept current through
-- the outbox (owner-index events, applied by the writing request and swept if it died).
-- A removal leaves a tombstone, so an add applied late (after the removal) changes nothing.
create table owner_links (
  owner_id      bigint not null,
  link_id       bigint not null,
  code          text not null,
  created_at    timestamptz not null,
  logical_shard smallint not null,
  deleted       boolean not null default false,
  primary key (owner_id, link_id)
);
create index owner_links_page on owner_links (owner_id, created_at desc, link_id desc) where not deleted;
create index owner_links_logical_shard on owner_links (logical_shard);
create index outbox_unsent_age on outbox (created_at) where sent_at is null;
