// Bundles the anywidget front ends (model panel, compare view, pipeline view, training view) into ../specnb/static/
// (one minified ESM file each) and copies the shared stylesheet next to them. Exits non-zero on any error.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// SPECNB_STATIC_OUT redirects the output (the tests rebuild into a temp dir to catch stale bundles).
const out = process.env.SPECNB_STATIC_OUT || join(here, "..", "specnb", "static");

try {
  await mkdir(out, { recursive: true });
  for (const name of ["model_panel", "compare_view", "pipeline_view", "training_view"]) {
    await build({
      entryPoints: [join(here, "src", `${name}.ts`)],
      outfile: join(out, `${name}.js`),
      format: "esm",
      bundle: true,
      minify: true,
      target: "es2020",
      sourcemap: false,
      legalComments: "none",
      logLevel: "warning",
    });
  }
  await copyFile(join(here, "src", "widgets.css"), join(out, "widgets.css"));
  console.log(`built model_panel.js, compare_view.js, pipeline_view.js, training_view.js, widgets.css → ${out}`);
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
