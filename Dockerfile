# pgark container image: one image for every role. The CloudNativePG plugin (operator Deployment,
# instance and recovery-Job sidecars), the logical-backup CronJob (examples/backup-template) and
# plain CLI use all run it. Node 20 plus the PostgreSQL client tools (pg_dump, pg_dumpall, psql,
# pg_restore); the entrypoint is pgark, and `restore.sh` (the logical restore tool) is on the PATH.
#
# pg_dump must not be older than the server it dumps. Debian bookworm ships client 15; for newer servers
# build with --build-arg PG_MAJOR=16 (or 17), which installs that client from apt.postgresql.org.
#
# User: UID/GID 26, the postgres user of CloudNativePG's operand images. The sidecar reads the data
# directory, which PostgreSQL keeps at mode 0700, so it must run as the user that owns it.
# Read-only root filesystem: pgark writes only to TMPDIR and HOME (both /tmp: mount an emptyDir there)
# and to the volumes it is pointed at (PGDATA, --state-dir).

FROM node:20-bookworm-slim AS build
WORKDIR /build
COPY package.json package-lock.json tsconfig.json ./
# Scripts are skipped here because `prepare` would compile before the sources are copied; native
# dependencies are rebuilt after the dev dependencies are pruned.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
COPY scripts/bundle.mjs ./scripts/
# The bundle (scripts/bundle.mjs) is what bin/pgark.js runs; esbuild is a dev dependency.
RUN npx tsc -p tsconfig.json \
 && node scripts/bundle.mjs \
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
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 26 postgres; \
    useradd --system --uid 26 --gid 26 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin postgres
WORKDIR /opt/pgark
COPY --from=build /build/package.json ./
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist/src ./dist/src
COPY --from=build /build/dist/bundle ./dist/bundle
# The CNPG-I plugin (`pgark plugin serve`) loads its .proto files at run time.
COPY proto ./proto
COPY bin ./bin
RUN ln -s /opt/pgark/bin/pgark /usr/local/bin/pgark \
 && ln -s /opt/pgark/bin/restore.sh /usr/local/bin/restore.sh
ENV NODE_ENV=production \
    TMPDIR=/tmp \
    HOME=/tmp
USER 26:26
ENTRYPOINT ["/opt/pgark/bin/pgark"]
CMD ["--help"]
