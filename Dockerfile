# The Links web server's image, the one artefact both deploy targets run (docs/deploy.md).
# Stage 1 compiles src/ to dist/ with the dev dependencies; stage 2 carries only the compiled
# JavaScript and the production dependencies, and runs as a non-root user.
# Build: docker build -t ladder:latest .   (not buildable on the machine Ladder is developed on:
# it has no Docker; the file is kept small and conventional for that reason.)

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN node scripts/build.mjs && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
ENV NODE_ENV=production LADDER_BUILD_CHECKED=1 HOST=0.0.0.0 PORT=3000 LADDER_STATE_DIR=/tmp/ladder
WORKDIR /app
# The CA bundle RDS certificates chain to, for sslmode=verify-full (DB_SSL_ROOT_CERT).
ADD --chmod=644 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
# Rung 9: each web server's click log, shared with the relay beside it through a task volume
# mounted here (an empty volume takes this folder's owner).
RUN mkdir -p /var/ladder/clicklog && chown -R node:node /var/ladder
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["sh", "/app/dist/deploy/image/entrypoint.sh"]
