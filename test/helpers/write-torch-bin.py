"""Writes a model's safetensors tensors as torch.save state dicts, without torch.

usage: write-torch-bin.py SRC.safetensors OUT_DIR [SHARDS]

torch.save (zip format, pickle protocol 2) pickles the state dict with a Pickler whose persistent_id
turns each storage into ('storage', <torch.XStorage class>, key, 'cpu', numel), and each tensor reduces
to torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict()). This
script uses Python's own pickle module with stand-ins registered under those torch names, so the
opcodes are CPython's, as in a real checkpoint; the storages go into <archive>/data/<key> records of
an uncompressed zip. One shard: pytorch_model.bin holding an OrderedDict with torch's `_metadata`
attribute (model.state_dict()); several: pytorch_model-0000i-of-0000n.bin as plain dicts (how
transformers shards) and pytorch_model.bin.index.json.
"""
import collections
import json
import pickle
import struct
import sys
import types
import zipfile

torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")


class BFloat16Storage:
    pass


class FloatStorage:
    pass


class LongStorage:
    pass


for cls in (BFloat16Storage, FloatStorage, LongStorage):
    cls.__module__ = "torch"
    setattr(torch, cls.__name__, cls)


def _rebuild_tensor_v2(*args):
    raise RuntimeError("a stand-in: never called when writing")


_rebuild_tensor_v2.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
torch._utils = utils
sys.modules["torch"] = torch
sys.modules["torch._utils"] = utils

STORAGE = {"BF16": (BFloat16Storage, 2), "F32": (FloatStorage, 4), "I64": (LongStorage, 8)}


class Storage:
    def __init__(self, cls, key, numel):
        self.cls, self.key, self.numel = cls, key, numel


class Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, tuple(shape)

    def __reduce_ex__(self, protocol):
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        return (_rebuild_tensor_v2, (self.storage, 0, self.shape, tuple(stride), False, collections.OrderedDict()))


class StateDictPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.cls, obj.key, "cpu", obj.numel)
        return None


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    return [(name, h["dtype"], h["shape"], raw[8 + n + h["data_offsets"][0] : 8 + n + h["data_offsets"][1]]) for name, h in sorted(header.items())]


def write_bin(path, tensors, ordered):
    archive = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    state = collections.OrderedDict() if ordered else {}
    records = []
    for key, (name, dtype, shape, data) in enumerate(tensors):
        cls, size = STORAGE[dtype]
        state[name] = Tensor(Storage(cls, str(key), len(data) // size), shape)
        records.append((f"{archive}/data/{key}", data))
    buf = __import__("io").BytesIO()
    p = StateDictPickler(buf, protocol=2)
    if ordered:
        # model.state_dict() is an OrderedDict with a `_metadata` attribute, which pickle writes as
        # OrderedDict(), SETITEMS, then BUILD with {"_metadata": ...}: reduced here by hand the same way.
        class WithMeta(collections.OrderedDict):
            pass
        WithMeta.__module__, WithMeta.__qualname__, WithMeta.__name__ = "collections", "OrderedDict", "OrderedDict"
        m = WithMeta(state)
        m._metadata = collections.OrderedDict([("", {"version": 1})])
        p.dispatch_table = {WithMeta: lambda o: (collections.OrderedDict, (), {"_metadata": o._metadata}, None, iter(o.items()))}
        p.dump(m)
    else:
        p.dump(state)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{archive}/data.pkl", buf.getvalue())
        z.writestr(f"{archive}/byteorder", "little")
        for name, data in records:
            z.writestr(name, data)
        z.writestr(f"{archive}/version", "3\n")


def main():
    src, out = sys.argv[1], sys.argv[2]
    shards = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    tensors = read_safetensors(src)
    if shards == 1:
        write_bin(f"{out}/pytorch_model.bin", tensors, ordered=True)
        return
    per = -(-len(tensors) // shards)
    weight_map = {}
    for i in range(shards):
        part = tensors[i * per : (i + 1) * per]
        name = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        write_bin(f"{out}/{name}", part, ordered=False)
        weight_map.update({t[0]: name for t in part})
    with open(f"{out}/pytorch_model.bin.index.json", "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)


main()
