# Wharf's own container image: `docker run -d -p 5000:5000 -v wharf-data:/data IMAGE` runs the hub (README).
# Two stages: the first builds (better-sqlite3 is fetched prebuilt for the platform, or compiled where none can be
# fetched); the second carries only Node, the production node_modules and the compiled code.
# BASE is any Node >= 20 image on Debian with Node in /usr/local (the official ones); CI passes one made locally.
ARG BASE=node:24-bookworm-slim

FROM ${BASE} AS build
WORKDIR /src
# node-gyp compiles against the headers of the Node in the image, rather than downloading them.
ENV npm_config_nodedir=/usr/local npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# Where better-sqlite3's prebuilt binaries are fetched from, for a site with its own mirror of them
# (--build-arg npm_config_better_sqlite3_binary_host=URL); unset, from the project's GitHub releases.
ARG npm_config_better_sqlite3_binary_host
# Dependencies first: this layer is rebuilt only when the lock file changes. A compiler (minutes of CPU and ~200 MB)
# is installed only when no prebuilt better-sqlite3 can be fetched for this platform and Node.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts \
 && if ! (cd node_modules/better-sqlite3 && ../.bin/prebuild-install); then \
      apt-get update \
      && apt-get install -y --no-install-recommends python3 make g++ \
      && rm -rf /var/lib/apt/lists/* \
      && npm rebuild better-sqlite3; \
    fi
# The production dependencies apart, so that a change to the sources neither prunes nor copies them again.
RUN mkdir /prod && cp -a package.json package-lock.json node_modules /prod/ && cd /prod && npm prune --omit=dev
COPY tsconfig.json ./
COPY bin ./bin
COPY scripts/bundle.js ./scripts/bundle.js
COPY src ./src
RUN npm run build

FROM ${BASE}
# A user of its own, with fixed ids, so that a volume's owner means the same on every host.
RUN groupadd --system --gid 10001 wharf \
 && useradd --system --uid 10001 --gid wharf --home-dir /data --no-create-home --shell /usr/sbin/nologin wharf \
 && mkdir /data && chown wharf:wharf /data
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /prod/node_modules ./node_modules
COPY --from=build /src/dist/bundle/cli ./dist/bundle/cli
COPY bin/wharf.js ./bin/wharf.js
COPY web ./web
COPY contrib ./contrib
# 0.0.0.0 is the container's own network namespace, not the host's: what reaches the hub from outside is what
# `docker run -p` publishes (e.g. -p 127.0.0.1:5000:5000 for this machine only). A container on the host's
# network (--network host) should set WHARF_LISTEN=127.0.0.1:5000 or another address of its choosing.
ENV NODE_ENV=production WHARF_DATA=/data WHARF_LISTEN=0.0.0.0:5000
VOLUME ["/data"]
EXPOSE 5000
USER wharf
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const l=process.env.WHARF_LISTEN||'';const p=l.slice(l.lastIndexOf(':')+1)||'5000';fetch('http://127.0.0.1:'+p+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/wharf.js"]
CMD ["serve"]
