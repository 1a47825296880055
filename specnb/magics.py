"""IPython magics: ``%specnb`` (line) and ``%%specnb`` (cell), thin over the public API.

Each subcommand parses its arguments, calls one public function and returns its result, so ``_``
holds it. Bad arguments raise `UsageError` (one line, no traceback); specnb's own errors are shown
the same way, with their type (``UsageError: AliasError: …``).
"""

from __future__ import annotations

import math
import re
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.utils.process import arg_split
from traitlets import Float, Unicode

from . import _catalog
from ._compare import compare, get_run, runs
from ._specialize import specialize
from .backends import model_registry as _models
from .errors import SpecnbError
from .magics_help import HELP

__all__ = ["SpecnbMagics", "load_ipython_extension", "HELP"]


_SUBCOMMANDS = ("load", "unload", "models", "catalog", "compare", "pipe", "specialize", "runs", "show", "help")
_LINE_ONLY = ("load", "unload", "models", "catalog", "specialize", "runs", "show", "help")


def _parser(prog: str) -> MagicArgumentParser:
    return MagicArgumentParser(prog=f"%specnb {prog}", add_help=False)


def _split(line: str) -> list[str]:
    """Words as IPython splits them (POSIX quoting; Windows paths keep their backslashes on Windows)."""
    try:
        return arg_split(line, posix=not sys.platform.startswith("win"), strict=True)
    except ValueError as error:
        raise UsageError(f"cannot parse {line!r}: {error}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise UsageError(f"expected a number >= 1, got {value}")
    return value


def _bounded(what: str, ok):
    """An argument type: a finite number for which ``ok`` holds, else a `UsageError` saying it should be ``what``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and ok(value)):
            raise UsageError(f"expected {what}, got {text!r}")
        return value
    return parse


#: The settings %specnb specialize passes on only when given (specialize's defaults depend on the method).
_TRAINING = {"--epochs": _positive_int, "--batch-size": _positive_int, "--patience": _positive_int, "--teacher": str,
             "--learning-rate": _bounded("a number > 0", lambda v: v > 0), "--max-length": _positive_int,
             "--min-confidence": _bounded("a number between 0 and 1", lambda v: 0 <= v <= 1)}
_PARSERS: dict[str, MagicArgumentParser] = {}


def _build_parsers() -> None:
    p = _parser("load")
    p.add_argument("source")
    p.add_argument("--as", dest="alias")
    p.add_argument("--task")
    p.add_argument("--device")
    p.add_argument("--dtype")
    p.add_argument("--pin", action="store_true")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--allow-pickle", action="store_true")
    p.add_argument("--model", dest="served")
    p.add_argument("--method", choices=("rank", "choice", "generate"))
    p.add_argument("--concurrency", type=int)
    _PARSERS["load"] = p

    p = _parser("unload")
    p.add_argument("aliases", nargs="*")
    p.add_argument("--all", action="store_true")
    _PARSERS["unload"] = p

    p = _parser("models")
    p.add_argument("--table", action="store_true")
    _PARSERS["models"] = p

    for name in ("catalog", "runs", "help"):
        _PARSERS[name] = _parser(name)

    p = _parser("pipe")
    p.add_argument("name")
    p.add_argument("--sample")
    p.add_argument("--replace", action="store_true")
    _PARSERS["pipe"] = p

    p = _parser("show")
    p.add_argument("run_id")
    _PARSERS["show"] = p

    p = _parser("compare")
    p.add_argument("task")
    p.add_argument("--models")
    p.add_argument("--labels")
    p.add_argument("--label-space")
    p.add_argument("--data")
    p.add_argument("--text")
    p.add_argument("--label")
    p.add_argument("--sample", type=_positive_int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name")
    p.add_argument("--price-per-hour", type=float)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--out")
    p.add_argument("--reference")
    _PARSERS["compare"] = p

    p = _parser("specialize")
    p.add_argument("base")
    p.add_argument("--data", required=True)
    p.add_argument("--text", default="text")
    p.add_argument("--label", default="label")
    p.add_argument("--task", default="classify")
    p.add_argument("--as", dest="alias")
    p.add_argument("--method", choices=("head", "finetune"), default="head")
    p.add_argument("--eval", type=_bounded("a held-out share from 0 (none) up to 1", lambda v: 0 <= v < 1), default=0.2)
    for flag, kind in _TRAINING.items():
        p.add_argument(flag, type=kind)
    p.add_argument("--out")
    p.add_argument("--overwrite", action="store_true")
    _PARSERS["specialize"] = p


_build_parsers()

_BRACES = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def _evaluate(ns: dict, expr: str, what: str, hint: str = ""):
    """``expr`` evaluated in the notebook's namespace; a `UsageError` saying ``what`` failed otherwise."""
    try:
        return eval(expr, ns)  # noqa: S307 - the user's own expression, in the user's namespace
    except Exception as error:
        raise UsageError(f"{what}: {type(error).__name__}: {error}{hint}") from None


@magics_class
class SpecnbMagics(Magics):
    """``%specnb`` and ``%%specnb``; ``%specnb help`` prints the reference."""

    device = Unicode("auto", help="Device for %specnb load and the models %%specnb compare loads.").tag(config=True)
    dtype = Unicode("auto", help="dtype for %specnb load.").tag(config=True)
    generalist = Unicode("smollm2", help="The generalist %%specnb compare adds when --models is not given.").tag(
        config=True)
    price_per_hour = Float(None, allow_none=True, help="$ per device-hour for compare; None: specnb.config.").tag(
        config=True)

    # -- dispatch ---------------------------------------------------------------------------------------
    @line_cell_magic
    def specnb(self, line: str, cell: str | None = None):
        """specnb's notebook commands; ``%specnb help`` lists them."""
        words = line.strip().split(None, 1)
        if not words:
            raise UsageError(f"%specnb needs a command: {', '.join(_SUBCOMMANDS)} (see %specnb help)")
        command, rest = words[0], words[1] if len(words) > 1 else ""
        if command not in _SUBCOMMANDS:
            raise UsageError(f"unknown command {command!r}; valid: {', '.join(_SUBCOMMANDS)} (see %specnb help)")
        if cell is not None and command in _LINE_ONLY:
            raise UsageError(f"%%specnb {command} takes no cell body; use the line magic %specnb {command}")
        args = _PARSERS[command].parse_args(_split(rest))
        if cell is None and command == "pipe":
            raise UsageError("pipe is a cell magic: %%specnb pipe NAME, then one stage per line")
        if cell is None and command == "compare" and args.data is None:
            raise UsageError("compare takes its inputs from the cell (%%specnb compare TASK --models A,B, then one "
                             "input per line) or from a DataFrame (%specnb compare TASK --data VAR ...)")
        try:
            return getattr(self, f"_{command}")(args, cell)
        except SpecnbError as error:
            raise UsageError(f"{type(error).__name__}: {error}") from None

    # -- commands ---------------------------------------------------------------------------------------
    def _help(self, args, cell):
        print(HELP)

    def _load(self, args, cell):
        remote = _remote(args.source)
        return _models.load(args.source, alias=args.alias, task=args.task,
                            device=args.device or ("auto" if remote else self.device),
                            dtype=args.dtype or ("auto" if remote else self.dtype), pin=args.pin,
                            trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle,
                            model=args.served, method=args.method, concurrency=args.concurrency)

    def _unload(self, args, cell):
        if args.all and args.aliases:
            raise UsageError("give aliases or --all, not both")
        if not args.all and not args.aliases:
            loaded = ", ".join(m.alias for m in _models.registry) or "none"
            raise UsageError(f"%specnb unload needs an alias (loaded: {loaded}) or --all")
        aliases = [m.alias for m in _models.registry] if args.all else args.aliases
        for alias in aliases:
            _models.get(alias)  # every alias is checked before any is unloaded
        for alias in aliases:
            _models.unload(alias)
        print(f"unloaded {', '.join(aliases)}" if aliases else "no model was loaded")

    def _models(self, args, cell):
        if args.table or not self._in_kernel():
            return _models.models()
        from .widgets import ModelPanel

        return ModelPanel()

    def _catalog(self, args, cell):
        return _catalog.catalog()

    def _pipe(self, args, cell):
        from .compose import Pipeline, parse

        if not args.name.isidentifier():
            raise UsageError(f"the pipeline's name must be a Python name, got {args.name!r}")
        ns = self.shell.user_ns
        existing = ns.get(args.name)
        pipe = existing if isinstance(existing, Pipeline) and not args.replace else Pipeline(name=args.name)
        sample = size = None
        if args.sample is not None:
            if args.sample.isdigit():
                size = _positive_int(args.sample)
            else:
                sample = self._variable(ns, args.sample, "--sample")
        # validated before anything changes; re-running a cell replaces the stages it added before
        pipe.add(parse(cell), namespace=ns, segment=self._cell_key(cell))
        if sample is not None:
            pipe.sample = sample
        if size is not None:
            pipe.preview_size = size
        ns[args.name] = pipe
        if pipe.sample is not None:
            pipe.preview()
        return pipe

    def _specialize(self, args, cell):
        data = self._variable(self.shell.user_ns, args.data, "--data")
        given = {k: v for k in (flag[2:].replace("-", "_") for flag in _TRAINING) if (v := getattr(args, k)) is not None}
        return specialize(args.base, data, task=args.task, text=args.text, label=args.label, method=args.method,
                          eval=args.eval or None, device=self.device, out=args.out, alias=args.alias,
                          overwrite=args.overwrite, **given)

    def _runs(self, args, cell):
        return runs()

    def _show(self, args, cell):
        return get_run(args.run_id)

    def _compare(self, args, cell):
        body = self._expand(cell or "")
        lines = [x.strip() for x in body.splitlines() if x.strip()]
        ns = self.shell.user_ns
        if args.out is not None and not args.out.isidentifier():
            raise UsageError(f"--out needs a Python name, got {args.out!r}")
        if args.data is not None:
            if lines:
                raise UsageError("--data gives the inputs: leave the cell body empty, or drop --data")
            inputs = self._variable(ns, args.data, "--data")
            labels = args.label if args.label is not None else (self._variable(ns, args.labels, "--labels")
                                                                 if args.labels else None)
            text = args.text or "text"
        else:
            if args.text or args.label:
                raise UsageError("--text and --label name columns of --data; give --data VAR too")
            if not lines:
                raise UsageError("no inputs: write one input per line in the cell, or pass --data VAR")
            inputs, text = lines, "text"
            labels = self._variable(ns, args.labels, "--labels") if args.labels else None
            if labels is not None:
                labels = list(labels)
                if len(labels) != len(lines):
                    raise UsageError(f"--labels {args.labels} holds {len(labels)} labels for {len(lines)} input lines")
        label_space = None
        if args.label_space:
            if args.label_space.isidentifier() and args.label_space in ns:
                label_space = ns[args.label_space]
            else:
                label_space = [x.strip() for x in args.label_space.split(",") if x.strip()]
        models = args.models or self._default_models(args.task)
        if self.device != "auto":
            models = self._preload(models, args.task)
        result = compare(args.task, inputs, models, labels=labels, label_space=label_space, text=text,
                                sample=args.sample, seed=args.seed, name=args.name, batch_size=args.batch_size,
                                reference=args.reference,
                                price_per_hour=args.price_per_hour if args.price_per_hour is not None
                                else self.price_per_hour)
        if args.out:
            ns[args.out] = result
        return result

    # -- helpers ----------------------------------------------------------------------------------------
    def _cell_key(self, cell: str):
        """The notebook cell being run (JupyterLab and Notebook 7 send its id), else its text."""
        kernel = getattr(self.shell, "kernel", None)
        try:
            cell_id = kernel.get_parent().get("metadata", {}).get("cellId") if kernel is not None else None
        except Exception:  # an old kernel without get_parent, or no parent message
            cell_id = None
        return ("cell", cell_id) if cell_id else ("text", cell.strip())

    def _in_kernel(self) -> bool:
        from .widgets.display import in_kernel

        return in_kernel(self.shell)

    def _expand(self, body: str) -> str:
        ns = self.shell.user_ns

        def value(match):
            if match.group(0) == "{{":
                return "{"
            if match.group(0) == "}}":
                return "}"
            expr = match.group(1).strip()
            if not expr:
                raise UsageError("empty {} in the cell; write {{}} for literal braces")
            return str(_evaluate(ns, expr, f"{{{expr}}} in the cell", " (write {{ and }} for literal braces)"))

        return _BRACES.sub(value, body)

    @staticmethod
    def _variable(ns: dict, text: str, option: str):
        """The value an option names: a notebook variable, or any expression ``{expr}`` takes in a cell body
        (``--labels gold[:2]``)."""
        if text.isidentifier() and text not in ns:
            raise UsageError(f"{option} {text}: no variable called {text!r} in the notebook")
        return ns[text] if text.isidentifier() else _evaluate(ns, text, f"{option} {text}")

    def _default_models(self, task: str) -> str:
        # classify has no dedicated embedded model: MiniLM answers it zero-shot.
        wanted = "embed" if task == "classify" else task
        specialists = [e.name for e in _catalog.ENTRIES.values() if e.task == wanted and e.role == "specialist" and e.embedded]
        if not specialists:
            raise UsageError(f"no embedded specialist for task {task!r}: pass --models A,B")
        return f"{specialists[0]},{self.generalist}"

    def _preload(self, models: str, task: str) -> list:
        out = []
        for name in [m.strip() for m in models.split(",") if m.strip()]:
            # the model's own default task: compare asks for ``task`` per call
            device = "auto" if _remote(name) else self.device
            out.append(name if name in _models.registry else _models.registry.by_name(name, task=task, device=device))
        return out


def _remote(source: str) -> bool:
    """Whether ``source`` is an endpoint model (it runs on its server: the magics' device defaults do not apply)."""
    return source.startswith(("openai:", "http://", "https://"))


def load_ipython_extension(ipython) -> None:
    """``%load_ext specnb``: register the magics and, in a kernel, the widgets' display formatters (idempotent)."""
    from .widgets.display import register

    if getattr(ipython, "_specnb_magics", None) is None:
        magics = SpecnbMagics(ipython)
        ipython.register_magics(magics)
        ipython._specnb_magics = magics
    register(ipython)
