-- Links: users, their links, and click counts per link and per day.
create table users (
  id            bigserial primary key,
  email         text not null,
  password_hash text not null,
  created_at    timestamptz not null default now()
);
create unique index users_email_key on users (lower(email));

create table links (
  id         bigserial primary key,
  code       text not null,
  url        text not null,
  owner_id   bigint not null references users (id) on delete cascade,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index links_code_key on links (code);
-- The dashboard lists one owner's links newest first, with a (created_at, id) cursor.
create index links_owner_created on links (owner_id, created_at desc, id desc);

create table link_clicks_daily (
  link_id bigint not null references links (id) on delete cascade,
  day     date not null,
  clicks  bigint not null,
  primary key (link_id, day)
);
