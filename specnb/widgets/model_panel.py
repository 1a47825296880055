"""The model panel: the kernel's loaded models, their memory against the budget, and unload buttons."""

from __future__ import annotations

import html

import traitlets as t

from ..backends import device as _device
from ..backends.registry import registry as _registry
from ..errors import SpecnbError
from ..settings import config, format_bytes
from ._base import Snapshot, json_value, static_file, widget_base

__all__ = ["ModelPanel"]


class ModelPanel(Snapshot, widget_base()):
    """Loaded models with device, dtype and memory against the budget; unload and pin from the browser.

    The panel follows the registry live: a model loaded, unloaded or evicted anywhere in the kernel
    shows at once. ``specnb.models()`` holds the same data as a DataFrame.
    """

    models = t.List(t.Dict(), help="One dict per loaded model (see specnb.models()).").tag(sync=True)
    devices = t.List(t.Dict(), help="Per device kind: device, used_bytes, budget_bytes, total_bytes.").tag(sync=True)
    error = t.Unicode("", help="The last failed action, one line.").tag(sync=True)

    def __init__(self, registry=None, **kwargs):
        self._esm = static_file("model_panel.js")
        self._css = static_file("widgets.css")
        super().__init__(**kwargs)
        self._registry = registry if registry is not None else _registry
        self._unsubscribe = self._registry.subscribe(self._on_registry)
        self.on_msg(self._on_message)
        self.refresh()

    # -- Python -> browser ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the registry again (called on every load, unload and pin)."""
        models = [self._row(m) for m in self._registry]
        kinds: dict[str, list] = {"cpu": []}
        for m in self._registry:
            kinds.setdefault(_device.device_kind(m.device), []).append(m)
        devices = []
        for kind, members in kinds.items():
            names = sorted({m.device for m in members})
            device = names[0] if len(names) == 1 else kind
            total = _device.devices.total(names[0] if names else "cpu")
            try:
                budget = config.budget_bytes(kind, total)
            except SpecnbError:
                budget = None
            devices.append({"device": device, "used_bytes": sum(m.weight_bytes or 0 for m in members),
                            "budget_bytes": budget, "total_bytes": total})
        with self.hold_sync():
            self.models = models
            self.devices = devices

    @staticmethod
    def _row(model) -> dict:
        info = model.info()
        info.pop("last_used", None)
        return {k: json_value(v) for k, v in info.items()}

    def _on_registry(self, event, model) -> None:
        if self.comm is None:  # closed: stop following the registry
            self._unsubscribe()
            return
        self.refresh()

    # -- browser -> Python ------------------------------------------------------------------------
    def _on_message(self, _widget, content, _buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        alias = content.get("alias") if isinstance(content, dict) else None
        try:
            if kind == "unload":
                self._registry.unload(alias)
            elif kind == "pin":
                self._registry.get(alias).pin(bool(content.get("pinned")))
            else:
                raise SpecnbError(f"unknown panel message {kind!r}; valid: unload, pin")
            self.error = ""
        except SpecnbError as error:
            self.error = f"{type(error).__name__}: {error}"
            self.refresh()

    def close(self) -> None:
        self._unsubscribe()
        super().close()

    def __repr__(self) -> str:
        aliases = ", ".join(m["alias"] for m in self.models) or "none"
        return f"<specnb ModelPanel: {len(self.models)} models loaded ({aliases})>"

    # -- without a kernel -------------------------------------------------------------------------
    def snapshot_html(self) -> str:
        e = html.escape
        if not self.models:
            return '<div class="specnb-model-panel-snapshot"><em>No models loaded.</em></div>'
        head = "".join(f"<th>{h}</th>" for h in ("alias", "task", "role", "backend", "device", "dtype", "weights",
                                                 "pinned", "source"))
        rows = "".join(
            "<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in (
                m["alias"], m["task"], m["role"], m["backend"], m["device"], m["dtype"],
                format_bytes(m["weight_bytes"]), "yes" if m["pinned"] else "", m["source"])) + "</tr>"
            for m in self.models)
        budgets = " · ".join(
            e(f"{d['device']}: {format_bytes(d['used_bytes'])}"
              + (f" of {format_bytes(d['budget_bytes'])} budget" if d["budget_bytes"] else " (no budget)"))
            for d in self.devices)
        return (f'<div class="specnb-model-panel-snapshot"><table><thead><tr>{head}</tr></thead>'
                f"<tbody>{rows}</tbody></table><div>{budgets}</div></div>")
