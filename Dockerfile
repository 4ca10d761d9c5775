# tokenscope: runs the TypeScript sources directly on Node's type stripping (Node >= 22.18).
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY deploy/examples/scopes ./deploy/examples/scopes
USER node
EXPOSE 9001 9090
ENTRYPOINT ["node", "bin/tokenscope"]
CMD ["serve"]
