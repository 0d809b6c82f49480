// A minimal hand-written protobuf encoder for the few ONNX messages a one-node benchmark model
// needs (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto), so the
// bench builds its onnxruntime models in memory without the `onnx` Python package or a protobuf
// dependency. Field numbers are those of onnx/onnx.proto (proto2; repeated scalars unpacked).

// ---- wire format ---------------------------------------------------------------------------

class Writer {
  private chunks: Uint8Array[] = [];
  private length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value)); // negative int64 → two's complement, 10 bytes
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  int(field: number, value: number | bigint): this {
    this.tag(field, 0);
    this.varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.varint(value.length);
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, value: Writer): this {
    return this.bytes(field, value.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

// ---- ONNX messages ---------------------------------------------------------------------------

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, FLOAT16: 10 } as const;

export type AttributeValue = number | string | { float: number };

export interface Initializer {
  name: string;
  dataType: number;
  dims: number[];
  /** Raw little-endian bytes (the TensorProto's raw_data). */
  raw: Uint8Array;
}

export interface ValueInfo {
  name: string;
  elemType: number;
  /** A number is a fixed dimension, a string a symbolic one (dim_param). */
  shape: Array<number | string>;
}

export interface NodeSpec {
  opType: string;
  domain?: string;
  inputs: string[];
  outputs: string[];
  /** Integers become INT attributes, strings STRING, { float } FLOAT. */
  attributes?: Record<string, AttributeValue>;
}

export interface ModelSpec {
  irVersion?: number;
  opsets: Array<{ domain: string; version: number }>;
  nodes: NodeSpec[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Initializer[];
  graphName?: string;
}

function attribute(name: string, value: AttributeValue): Writer {
  const w = new Writer().string(1, name); // name = 1
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new RangeError(`attribute ${name}: use { float } for non-integers`);
    w.int(3, value).int(20, 2); // i = 3, type = INT
  } else if (typeof value === 'string') {
    w.string(4, value).int(20, 3); // s = 4, type = STRING
  } else {
    w.float(2, value.float).int(20, 1); // f = 2, type = FLOAT
  }
  return w;
}

function node(spec: NodeSpec, index: number): Writer {
  const w = new Writer();
  for (const i of spec.inputs) w.string(1, i); // input = 1
  for (const o of spec.outputs) w.string(2, o); // output = 2
  w.string(3, `${spec.opType}_${index}`); // name = 3
  w.string(4, spec.opType); // op_type = 4
  for (const [k, v] of Object.entries(spec.attributes ?? {})) w.message(5, attribute(k, v)); // attribute = 5
  if (spec.domain) w.string(7, spec.domain); // domain = 7
  return w;
}

function tensor(t: Initializer): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d); // dims = 1
  w.int(2, t.dataType); // data_type = 2
  w.string(8, t.name); // name = 8
  w.bytes(9, t.raw); // raw_data = 9
  return w;
}

function valueInfo(v: ValueInfo): Writer {
  const shape = new Writer();
  for (const d of v.shape) {
    // TensorShapeProto.dim = 1; Dimension.dim_value = 1, dim_param = 2
    shape.message(1, typeof d === 'number' ? new Writer().int(1, d) : new Writer().string(2, d));
  }
  const tensorType = new Writer().int(1, v.elemType).message(2, shape); // elem_type = 1, shape = 2
  const type = new Writer().message(1, tensorType); // TypeProto.tensor_type = 1
  return new Writer().string(1, v.name).message(2, type); // name = 1, type = 2
}

/** Serialized ModelProto bytes, ready for InferenceSession.create(bytes, options). */
export function encodeModel(spec: ModelSpec): Uint8Array {
  const graph = new Writer();
  spec.nodes.forEach((n, i) => graph.message(1, node(n, i))); // node = 1
  graph.string(2, spec.graphName ?? 'bench'); // name = 2
  for (const t of spec.initializers) graph.message(5, tensor(t)); // initializer = 5
  for (const v of spec.inputs) graph.message(11, valueInfo(v)); // input = 11
  for (const v of spec.outputs) graph.message(12, valueInfo(v)); // output = 12

  const model = new Writer().int(1, spec.irVersion ?? 9); // ir_version = 1
  model.string(2, 'fp4kit-bench'); // producer_name = 2
  model.message(7, graph); // graph = 7
  for (const o of spec.opsets) model.message(8, new Writer().string(1, o.domain).int(2, o.version)); // opset_import = 8
  return model.finish();
}

/** Bytes of a typed array's view (no copy). */
export function rawBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
