-- Rung 9: the request keys of the clicks the workers have applied (the balancer's key of a
-- redirect, the same when it retried the redirect on another server), written in the
-- transaction that adds the clicks: a click whose key is here already counts as none.
-- Kept CLICK_KEY_RETENTION (links-repo.ts) after they were applied, then pruned.
create table click_keys (
  request_key uuid primary key,
  applied_at  timestamptz not null default now()
);
create index click_keys_applied_at on click_keys (applied_at);
