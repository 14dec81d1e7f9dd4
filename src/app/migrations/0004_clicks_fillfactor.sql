-- The daily click counts are updated about once a second per clicked link (each flush adds
-- to today's row). With every page full, each update writes a new row version on another
-- page and a new index entry; with half of each page free the update stays on its page and
-- leaves the index alone (a HOT update): a 500-link flush took 3.4-3.8 ms of Postgres
-- instead of 4.2-6.4 (docs/performance.md, issue 12). Pages written from now on keep the
-- space; existing ones as they are rewritten.
alter table link_clicks_daily set (fillfactor = 50);
