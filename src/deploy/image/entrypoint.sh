#!/bin/sh
# The image's entry (Dockerfile): turns the parts a cloud hands a container (host names as
# plain settings, passwords as injected secrets) into the URLs the app reads, applies the
# migrations (an advisory lock makes concurrent starts safe), then becomes the web server,
# or with an argument a worker (`worker`) or the relay (`relay`) of rung 9.
# Settings already given whole (DATABASE_URL, REDIS_URL, ...) are left as they are.
set -eu

# TLS to Postgres: verify the server against the CA bundle the image carries, when given.
db_tls=""
if [ -n "${DB_SSL_ROOT_CERT:-}" ]; then db_tls="?sslmode=verify-full&sslrootcert=${DB_SSL_ROOT_CERT}"; fi

if [ -z "${DATABASE_URL:-}" ] && [ -n "${DB_HOST:-}" ]; then
  DATABASE_URL="postgres://${DB_USER}:${DB_PASSWORD}@${DB_HOST}:${DB_PORT:-5432}/${DB_NAME}${db_tls}"
  export DATABASE_URL
fi
# DB_REPLICA_HOSTS: comma-separated host:port of the read replicas, same credentials.
if [ -z "${DATABASE_REPLICA_URLS:-}" ] && [ -n "${DB_REPLICA_HOSTS:-}" ]; then
  urls=""
  for hp in $(printf '%s' "$DB_REPLICA_HOSTS" | tr ',' ' '); do
    urls="${urls:+$urls,}postgres://${DB_USER}:${DB_PASSWORD}@${hp}/${DB_NAME}${db_tls}"
  done
  DATABASE_REPLICA_URLS=$urls
  export DATABASE_REPLICA_URLS
fi
# Rung 10, DB_SHARDS: name=host:port|replica:port;... with each shard's password injected as
# DB_SHARD<i>_PASSWORD (i from 1, in order), same user and database name.
if [ -z "${DATABASE_SHARDS:-}" ] && [ -n "${DB_SHARDS:-}" ]; then
  shards=""
  i=1
  for entry in $(printf '%s' "$DB_SHARDS" | tr ';' ' '); do
    name=${entry%%=*}
    eval "pw=\${DB_SHARD${i}_PASSWORD}"
    urls=""
    for hp in $(printf '%s' "${entry#*=}" | tr '|' ' '); do
      urls="${urls:+$urls|}postgres://${DB_USER}:${pw}@${hp}/${DB_NAME}${db_tls}"
    done
    shards="${shards:+$shards;}${name}=${urls}"
    i=$((i + 1))
  done
  DATABASE_SHARDS=$shards
  export DATABASE_SHARDS
fi
# Redis: rediss:// (TLS) when *_REDIS_TLS=1, with the AUTH token when one is injected.
redis_url() { # host port tls auth
  scheme=redis
  if [ "$3" = "1" ]; then scheme=rediss; fi
  if [ -n "$4" ]; then printf '%s://:%s@%s:%s' "$scheme" "$4" "$1" "$2"; else printf '%s://%s:%s' "$scheme" "$1" "$2"; fi
}
if [ -z "${REDIS_URL:-}" ] && [ -n "${SESSION_REDIS_HOST:-}" ]; then
  REDIS_URL=$(redis_url "$SESSION_REDIS_HOST" "${SESSION_REDIS_PORT:-6379}" "${SESSION_REDIS_TLS:-0}" "${SESSION_REDIS_AUTH:-}")
  export REDIS_URL
fi
if [ -z "${CACHE_REDIS_URL:-}" ] && [ -n "${CACHE_REDIS_HOST:-}" ]; then
  CACHE_REDIS_URL=$(redis_url "$CACHE_REDIS_HOST" "${CACHE_REDIS_PORT:-6379}" "${CACHE_REDIS_TLS:-0}" "${CACHE_REDIS_AUTH:-}")
  export CACHE_REDIS_URL
fi

if [ -z "${QUEUE_URL:-}" ] && [ -n "${QUEUE_REDIS_HOST:-}" ]; then
  QUEUE_URL=$(redis_url "$QUEUE_REDIS_HOST" "${QUEUE_REDIS_PORT:-6379}" "${QUEUE_REDIS_TLS:-0}" "${QUEUE_REDIS_AUTH:-}")
  export QUEUE_URL
fi

node bin/ladder.mjs migrate
case "${1:-web}" in
  web) exec node dist/server/web-main.js __web ;;
  worker) exec node dist/server/worker-main.js __worker ;;
  relay) exec node dist/server/relay-main.js __relay ;;
  *) echo "entrypoint: unknown role $1 (web, worker or relay)" >&2; exit 2 ;;
esac
