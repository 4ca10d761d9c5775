// What the container image runs: its /app assembled from the Dockerfile's final stage
// (test/harness/image-app.ts), the JavaScript that `npm run build` compiles beside the production
// dependencies, so no tokenscope process loads Node's type stripping. The bench measures this form
// unless told to run the TypeScript sources.
import { join } from "node:path";
import { assembleImageApp } from "../harness/image-app.ts";

export type Form = "compiled" | "typescript";

export interface CompiledImage {
  /** The script to start (startTokenscope's `entry`). */
  readonly entry: string;
  /** The image's NODE_OPTIONS (its ENV), as node flags before the script. */
  readonly nodeArgs: string[];
}

/** Builds the image's /app under `dir`: what to start, and with which node flags. */
export function compiledImage(dir: string, log: (msg: string) => void): CompiledImage {
  const image = assembleImageApp(join(dir, "image"));
  const nodeArgs = (image.env.NODE_OPTIONS ?? "").split(" ").filter((a) => a !== "");
  log(
    `# tokenscope runs as the container image does: ${["node", ...nodeArgs, ...image.command.slice(1)].join(" ")} (the image's NODE_OPTIONS) in ${image.app} (npm run build: ${image.buildSeconds.toFixed(1)} s)`,
  );
  return { entry: image.entry, nodeArgs };
}
