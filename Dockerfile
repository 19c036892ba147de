# pgark container image: Node 20 + PostgreSQL client tools (pg_dump, pg_dumpall, psql, pg_restore).
# Used by examples/backup-template/postgresql-logical-backup.yaml; `pgark` is the entrypoint and
# `restore.sh` (the restore tool) is on the PATH.
#
# pg_dump must not be older than the server it dumps. Debian bookworm ships client 15; for newer servers
# build with --build-arg PG_MAJOR=16 (or 17), which installs that client from apt.postgresql.org.

FROM node:20-bookworm-slim AS build
WORKDIR /build
COPY package.json package-lock.json tsconfig.json ./
# Scripts are skipped here because `prepare` would compile before the sources are copied; native
# dependencies are rebuilt after the dev dependencies are pruned.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev --ignore-scripts \
 && npm rebuild

FROM node:20-bookworm-slim
ARG PG_MAJOR=15
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    if [ "$PG_MAJOR" != "15" ]; then \
      apt-get install -y --no-install-recommends curl gnupg; \
      curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc | gpg --dearmor -o /usr/share/keyrings/pgdg.gpg; \
      echo "deb [signed-by=/usr/share/keyrings/pgdg.gpg] http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" > /etc/apt/sources.list.d/pgdg.list; \
      apt-get update; \
    fi; \
    apt-get install -y --no-install-recommends "postgresql-client-$PG_MAJOR"; \
    rm -rf /var/lib/apt/lists/*
WORKDIR /opt/pgark
COPY --from=build /build/package.json ./
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist ./dist
COPY bin ./bin
# The CNPG-I plugin (`pgark plugin serve`) loads its .proto files at run time.
COPY proto ./proto
RUN ln -s /opt/pgark/bin/pgark /usr/local/bin/pgark \
 && ln -s /opt/pgark/bin/restore.sh /usr/local/bin/restore.sh
ENV NODE_ENV=production
USER node
ENTRYPOINT ["pgark"]
CMD ["--help"]
