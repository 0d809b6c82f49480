"""An independent reader and writer for the hostile-name tests (Python `safetensors`, the Rust parser).

  safetensors_names.py read <folder or file>   prints JSON: every file's tensor names, metadata and
                                              the sha256 of every tensor's bytes; the index's
                                              weight_map, checked against the shards it names.
  safetensors_names.py write <file> <names>   writes one F32 [2, 3] tensor per name (JSON list),
                                              values i + 10 * k for the k-th name, metadata {name: name}.
"""
import hashlib
import json
import os
import sys

import numpy as np
from safetensors import deserialize, safe_open
from safetensors.numpy import save_file


def read_file(path):
    # deserialize hands back raw bytes for every dtype (numpy has no float8 without ml_dtypes casts).
    with open(path, "rb") as f:
        tensors = {name: hashlib.sha256(bytes(t["data"])).hexdigest() for name, t in deserialize(f.read())}
    with safe_open(path, "np") as f:
        return {"tensors": tensors, "metadata": f.metadata() or {}}


def read(target):
    out = {"files": {}, "weight_map": None}
    if os.path.isfile(target):
        out["files"][os.path.basename(target)] = read_file(target)
        return out
    index = os.path.join(target, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        out["weight_map"] = weight_map
        for shard in sorted(set(weight_map.values())):
            out["files"][shard] = read_file(os.path.join(target, shard))
        for name, shard in weight_map.items():
            if name not in out["files"][shard]["tensors"]:
                raise SystemExit(f"weight_map names {name!r} in {shard}, which does not hold it")
        listed = sum(len(v["tensors"]) for v in out["files"].values())
        if listed != len(weight_map):
            raise SystemExit(f"shards hold {listed} tensors, weight_map lists {len(weight_map)}")
    else:
        for name in sorted(os.listdir(target)):
            if name.endswith(".safetensors"):
                out["files"][name] = read_file(os.path.join(target, name))
    return out


def write(path, names):
    tensors = {n: (np.arange(6, dtype=np.float32) + 10 * k).reshape(2, 3) for k, n in enumerate(names)}
    save_file(tensors, path, metadata={n: n for n in names})


if __name__ == "__main__":
    if sys.argv[1] == "read":
        print(json.dumps(read(sys.argv[2])))
    else:
        write(sys.argv[2], json.loads(sys.argv[3]))
