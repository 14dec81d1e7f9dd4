-- Rung 10, online resharding: which logical shards this cluster owns, the fence every write
-- passes, and the markers a move waits for. Why: docs/decisions.md, "Rung 10".

-- The logical shards this cluster may write (-1: the row saying the list was initialized).
create table owned_logical (
  logical_shard integer primary key check (logical_shard >= -1 and logical_shard < 1024)
);

-- Every write of a keyed statement runs in a transaction that first calls this: it takes each
-- logical shard's advisory lock shared (a move takes it exclusive, so writes wait while a
-- logical shard is frozen, and the move waits for writes already running), then checks that
-- this cluster still owns them. A write that finds one moved fails with LD001, having written
-- nothing; the router reloads the map and sends it to the new owner.
create function ladder_fence(logicals integer[]) returns void language plpgsql as $$
declare
  l integer;
begin
  for l in select distinct x from unnest(logicals) as x order by x loop
    perform pg_advisory_xact_lock_shared(7102026, l);
  end loop;
  if exists (select 1 from unnest(logicals) as x where not exists (select 1 from owned_logical o where o.logical_shard = x)) then
    raise exception 'logical shard moved to another cluster' using errcode = 'LD001';
  end if;
end $$;

-- A move's marker: written on the source inside the freeze, replicated with the data; once
-- the target has it, it has every earlier change of the logical shard.
create table reshard_marker (
  logical_shard integer primary key,
  token         text not null
);

-- Logical replication of a logical shard's rows filters on columns that must be in the
-- replica identity (PG 15) for updates and deletes: the whole row, for these tables.
alter table links replica identity full;
alter table link_clicks_daily replica identity full;
alter table owner_links replica identity full;
alter table reshard_marker replica identity full;
