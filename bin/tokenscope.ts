#!/usr/bin/env node
// tokenscope's command line. bin/tokenscope runs this file as TypeScript (development, tests);
// `npm run build` compiles it to dist/bin/tokenscope.js, which the container image runs.
import { main } from "../src/cli/main.ts";

process.on("unhandledRejection", (err) => {
  process.stderr.write(
    `tokenscope: unhandled rejection: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exitCode = 1;
});
process.exitCode = await main(process.argv.slice(2), process.env);
