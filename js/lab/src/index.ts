// specnb's JupyterLab / Notebook 7 extension: a saved specnb output whose widget model is gone shows the
// static snapshot that nbconvert and GitHub show, not "Error displaying widget: model not found".
//
// A specnb widget's mime bundle carries the widget view and a `text/html` snapshot marked with
// `data-specnb-snapshot`. JupyterLab prefers the widget view; when the notebook was saved without widget
// state and the kernel that held the model is gone, jupyter-widgets' renderer writes its error text and
// gives up. This plugin wraps the widget-view renderer of every notebook: when that error text appears in
// a renderer whose bundle holds a specnb snapshot, the snapshot is rendered in its place (sanitised like
// any `text/html` output of an untrusted notebook when the output is not trusted). Other widgets, and
// every specnb output whose model is there, are left exactly as jupyter-widgets renders them.
//
// It also offers the compare view plotly.js (`window.__specnbLab.loadPlotly`, a chunk loaded on first
// use), so charts draw without asking the kernel — and so in a notebook reopened with its widget state.
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { INotebookTracker } from "@jupyterlab/notebook";
import type { NotebookPanel } from "@jupyterlab/notebook";
import { renderHTML } from "@jupyterlab/rendermime";
import type { IRenderMimeRegistry } from "@jupyterlab/rendermime";
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";

export const WIDGET_VIEW = "application/vnd.jupyter.widget-view+json";
/** The attribute specnb's snapshots carry (specnb/widgets/_base.py). */
export const MARKER = "data-specnb-snapshot";
/** What jupyter-widgets writes when the model is not in the (restored) widget manager. */
const MODEL_MISSING = /^\s*Error displaying widget: model not found/;
const PATCHED = Symbol.for("specnb.snapshotFallback");

type Patchable = IRenderMimeRegistry & { [PATCHED]?: true };

/** The renderer, showing `model`'s snapshot instead of jupyter-widgets' error text. */
async function showSnapshot(
  renderer: IRenderMime.IRenderer,
  model: IRenderMime.IMimeModel,
  source: string,
  rendermime: IRenderMimeRegistry,
): Promise<void> {
  const node = renderer.node;
  if (node.querySelector(":scope > .specnb-saved-fallback")) return;
  node.textContent = "";
  node.classList.remove("jupyter-widgets");
  const host = document.createElement("div");
  host.className = "specnb-saved-fallback jp-RenderedHTMLCommon jp-RenderedHTML";
  host.setAttribute("data-mime-type", "text/html");
  node.appendChild(host);
  await renderHTML({
    host,
    source,
    trusted: model.trusted,
    sanitizer: rendermime.sanitizer,
    resolver: rendermime.resolver,
    linkHandler: rendermime.linkHandler,
    shouldTypeset: false,
    latexTypesetter: null,
  });
}

/** `renderer` (jupyter-widgets' widget-view renderer), falling back to the specnb snapshot. */
function withSnapshot(renderer: IRenderMime.IRenderer, rendermime: IRenderMimeRegistry): IRenderMime.IRenderer {
  const render = renderer.renderModel.bind(renderer);
  let observer: MutationObserver | null = null;
  renderer.renderModel = async (model: IRenderMime.IMimeModel) => {
    observer?.disconnect();
    observer = null;
    const source = model.data["text/html"];
    if (typeof source !== "string" || !source.includes(MARKER)) return render(model);
    // jupyter-widgets may write its error only later (it waits for the notebook's saved widget state),
    // so watch the node rather than look once.
    const check = () => {
      if (MODEL_MISSING.test(renderer.node.textContent ?? "")) {
        observer?.disconnect();
        observer = null;
        void showSnapshot(renderer, model, source, rendermime);
      }
    };
    observer = new MutationObserver(check);
    observer.observe(renderer.node, { childList: true, characterData: true, subtree: true });
    await render(model);
    check();
  };
  const dispose = renderer.dispose.bind(renderer);
  renderer.dispose = () => {
    observer?.disconnect();
    observer = null;
    dispose();
  };
  return renderer;
}

/** Wrap every widget-view renderer that `rendermime` creates (once per registry). */
export function patchRendermime(rendermime: IRenderMimeRegistry): void {
  const registry = rendermime as Patchable;
  if (registry[PATCHED]) return;
  registry[PATCHED] = true;
  const create = rendermime.createRenderer.bind(rendermime);
  rendermime.createRenderer = (mimeType: string) => {
    const renderer = create(mimeType);
    return mimeType === WIDGET_VIEW ? withSnapshot(renderer, rendermime) : renderer;
  };
}

/** What the page offers specnb's widgets (js/src/compare_charts.ts reads it). */
export interface SpecnbLab {
  version: 1;
  loadPlotly(): Promise<unknown>;
}

declare global {
  interface Window {
    __specnbLab?: SpecnbLab;
  }
}

function offerPlotly(): void {
  let loading: Promise<unknown> | null = null;
  window.__specnbLab = {
    version: 1,
    loadPlotly: () => {
      loading ??= import("plotly.js-dist-min").then((module) => {
        const plotly = (module as { default?: unknown }).default ?? module;
        return plotly;
      });
      return loading;
    },
  };
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: "specnb:saved-snapshots",
  description: "Saved specnb outputs whose widget model is gone show their static snapshot.",
  autoStart: true,
  requires: [INotebookTracker],
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker) => {
    offerPlotly();
    const patch = (panel: NotebookPanel) => patchRendermime(panel.content.rendermime);
    tracker.forEach(patch);
    tracker.widgetAdded.connect((_sender, panel) => patch(panel));
  },
};

export default plugin;
