"""The model panel: the kernel's loaded models, their memory against the budget, and unload buttons."""

from __future__ import annotations

import html
import math

import traitlets as t

from ..backends import device as _device
from ..backends.model_registry import registry as _registry
from ..backends.weights import resident_bytes
from ..errors import InputError, SpecnbError
from ..presentation import MEMORY_NOTE, finite_or_nan, format_bytes, format_count, format_share
from ..settings import config
from ._base import Snapshot, json_value, static_file, widget_base

__all__ = ["ModelPanel"]


class ModelPanel(Snapshot, widget_base()):
    """Loaded models with device, dtype and memory against the budget; unload and pin from the browser.

    The panel follows the registry live: a model loaded, unloaded or evicted anywhere in the kernel
    shows at once. ``specnb.models()`` holds the same data as a DataFrame.
    """

    models = t.List(t.Dict(), help="One dict per loaded model (see specnb.models()), with memory_share and texts.").tag(
        sync=True)
    devices = t.List(t.Dict(), help="Per device kind: device, used_bytes, budget_bytes, total_bytes, texts.").tag(
        sync=True)
    error = t.Unicode("", help="The last failed action, one line.").tag(sync=True)
    notes = t.Dict(help="Header tooltips by column: what the memory column measures.").tag(sync=True)

    def __init__(self, registry=None, **kwargs):
        self._esm = static_file("model_panel.js")
        self._css = static_file("widgets.css")
        kwargs.setdefault("notes", {"memory": MEMORY_NOTE})
        super().__init__(**kwargs)
        self._registry = registry if registry is not None else _registry
        self._unsubscribe = self._registry.subscribe(self._on_registry)
        self.on_msg(self._on_message)
        self.refresh()

    # -- Python -> browser ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the registry again (called on every load, unload and pin)."""
        kinds: dict[str, list] = {"cpu": []}
        for m in self._registry:
            if m.device != "remote":  # an endpoint model holds no memory here
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
            used = resident_bytes(members)  # weights two models share once
            devices.append({"device": device, "used_bytes": used, "budget_bytes": budget, "total_bytes": total,
                            "texts": _device_texts(device, used, budget, total)})
        by_kind = {_device.device_kind(d["device"]): d for d in devices}
        models = [self._remote_row(m) if m.device == "remote" else self._row(m, by_kind[_device.device_kind(m.device)])
                  for m in self._registry]
        with self.hold_sync():
            self.models = models
            self.devices = devices

    @staticmethod
    def _row(model, device: dict) -> dict:
        """``model.info()`` as JSON, with its memory against its device's budget (or total) as ``memory_share``
        and the texts people read."""
        info = model.info()
        info.pop("last_used", None)
        row = {k: json_value(v) for k, v in info.items()}
        memory = row["memory_bytes"] if row["memory_bytes"] is not None else row["weight_bytes"]
        against = "budget" if device["budget_bytes"] else "total"
        scale = device[f"{against}_bytes"]
        share = memory / scale if memory is not None and scale else None
        detail = format_bytes(memory) if memory is not None else ""
        if share is not None:
            detail += f" = {format_share(share, 1)} of {device['device']} {against} ({format_bytes(scale)})"
        seconds = finite_or_nan(row["load_seconds"])
        row["memory_share"] = share
        row["texts"] = {"parameters": format_count(row["parameters"]), "weights": format_bytes(row["weight_bytes"]),
                        "memory": format_bytes(memory), "memory_detail": detail,
                        "loaded": "" if math.isnan(seconds) else f" · loaded in {seconds:.1f} s"}
        return row

    @staticmethod
    def _remote_row(model) -> dict:
        """An endpoint model: its host and what its server can do where in-kernel models show memory."""
        info = model.info()
        info.pop("last_used", None)
        row = {k: json_value(v) for k, v in info.items()}
        endpoint = model.endpoint or {}
        methods = ", ".join(f"{task}: {how}" for task, how in (endpoint.get("methods") or {}).items())
        row["memory_share"] = None
        row["texts"] = {"parameters": "", "weights": "", "memory": f"remote · {endpoint.get('host', '')}",
                        "memory_detail": f"{endpoint.get('model', '')} at {endpoint.get('url', '')}; capabilities: "
                                         f"{', '.join(endpoint.get('capabilities') or []) or 'none'}"
                                         + (f"; label tasks by {methods}" if methods else ""),
                        "loaded": ""}
        return row

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
                raise InputError(f"unknown panel message {kind!r}; valid: unload, pin")
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
                m["texts"]["memory"] if m["device"] == "remote" else format_bytes(m["weight_bytes"]),
                "yes" if m["pinned"] else "", m["source"])) + "</tr>"
            for m in self.models)
        budgets = " · ".join(e(d["texts"]["line"]) for d in self.devices)
        return (f'<div class="specnb-model-panel-snapshot"><table><thead><tr>{head}</tr></thead>'
                f"<tbody>{rows}</tbody></table><div>{budgets}</div></div>")


def _device_texts(device: str, used: int, budget, total) -> dict:
    """A device's memory as people read it: ``line`` (``cpu: 86.7 MiB of 1.0 GiB budget · 24.0 GiB total``), the
    bar's ``detail`` (with exact bytes) and the budget mark's ``budget``."""
    line = f"{device}: {format_bytes(used)}" + (f" of {format_bytes(budget)} budget" if budget else " · no budget")
    if total:
        line += f" · {format_bytes(total)} total"
    detail = " · ".join([
        device, f"used {format_bytes(used)} ({used:,} bytes)",
        f"budget {format_bytes(budget)} ({budget:,} bytes)" if budget else "no budget",
        f"total {format_bytes(total)} ({total:,} bytes)" if total else "total unknown",
    ])
    return {"line": line, "detail": detail, "budget": f"budget {format_bytes(budget)}" if budget else None}
