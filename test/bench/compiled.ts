// What the container image runs: its /app assembled from the Dockerfile's final stage
// (test/harness/image-app.ts), the JavaScript that `npm run build` compiles beside the production
// dependencies, so no tokenscope process loads Node's type stripping. The bench measures this form
// unless told to run the TypeScript sources.
import { join } from "node:path";
import { assembleImageApp } from "../harness/image-app.ts";

export type Form = "compiled" | "typescript";

/** Builds the image's /app under `dir`; the script to start (startTokenscope's `entry`). */
export function compiledEntry(dir: string, log: (msg: string) => void): string {
  const image = assembleImageApp(join(dir, "image"));
  log(
    `# tokenscope runs as the container image does: ${image.command.join(" ")} in ${image.app} (npm run build: ${image.buildSeconds.toFixed(1)} s)`,
  );
  return image.entry;
}
