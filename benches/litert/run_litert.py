#!/usr/bin/env python3
"""The reference runtime for the `person` bench: runs a TFLite model with Google's
LiteRT (`ai-edge-litert`, the TFLite interpreter with XNNPACK) on input tensors the
Rust bench prepared, times `interpreter.invoke()`, and writes the raw outputs back so
the bench can check that tract computes the same thing.

Run by `cargo run --release -p mecam-benches --bin person`, which makes the venv
(`python3 -m venv target/litert-venv`, `pip install -r benches/litert/requirements.txt`).
By hand:

    target/litert-venv/bin/python benches/litert/run_litert.py \
        --model firmware/models/ssdlite_mnv2_person_300_float.tflite \
        --inputs DIR --outputs DIR [--threads 1] [--secs 2] [--min-runs 20]

Inputs: `DIR/<name>.f32`, one little-endian float32 tensor each, in the model's input
shape. Outputs: `<name>.out<i>.f32` for each model output i (model order), and one JSON
report on stdout: times per input in milliseconds (wall and thread CPU), the runtime's
version and the output shapes.
"""

import argparse
import json
import pathlib
import sys
import time
from importlib import metadata

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=pathlib.Path)
    parser.add_argument("--inputs", required=True, type=pathlib.Path)
    parser.add_argument("--outputs", required=True, type=pathlib.Path)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="interpreter threads (default 1: tract runs on one thread too)",
    )
    parser.add_argument("--secs", type=float, default=2.0, help="measuring time per input")
    parser.add_argument("--min-runs", type=int, default=20, help="at least this many invokes per input")
    args = parser.parse_args()

    loaded = time.perf_counter()
    interpreter = Interpreter(model_path=str(args.model), num_threads=args.threads)
    interpreter.allocate_tensors()
    load_ms = (time.perf_counter() - loaded) * 1e3
    (input_detail,) = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    shape = tuple(int(d) for d in input_detail["shape"])
    if input_detail["dtype"] != np.float32:
        print(f"the model's input is {input_detail['dtype']}, not float32", file=sys.stderr)
        return 1

    inputs = sorted(args.inputs.glob("*.f32"))
    if not inputs:
        print(f"no *.f32 input tensors in {args.inputs}", file=sys.stderr)
        return 1
    args.outputs.mkdir(parents=True, exist_ok=True)
    report = {
        "runtime": f"ai-edge-litert {metadata.version('ai-edge-litert')}",
        "numpy": np.__version__,
        "threads": args.threads,
        "load_ms": round(load_ms, 3),
        "input_shape": list(shape),
        "output_shapes": [[int(d) for d in o["shape"]] for o in outputs],
        "images": {},
    }
    for path in inputs:
        tensor = np.fromfile(path, dtype="<f4")
        if tensor.size != np.prod(shape):
            print(f"{path} holds {tensor.size} floats; the model's input {shape} needs {np.prod(shape)}", file=sys.stderr)
            return 1
        interpreter.set_tensor(input_detail["index"], tensor.reshape(shape))
        # Warm-up: XNNPACK packs weights and sizes its buffers on the first invoke.
        for _ in range(3):
            interpreter.invoke()
        wall_ms, cpu_ms = [], []
        end = time.perf_counter() + args.secs
        while len(wall_ms) < args.min_runs or time.perf_counter() < end:
            wall, cpu = time.perf_counter(), time.thread_time()
            interpreter.invoke()
            cpu_ms.append((time.thread_time() - cpu) * 1e3)
            wall_ms.append((time.perf_counter() - wall) * 1e3)
        for i, detail in enumerate(outputs):
            out = interpreter.get_tensor(detail["index"]).astype("<f4")
            out.tofile(args.outputs / f"{path.stem}.out{i}.f32")
        report["images"][path.stem] = {"invoke_ms": wall_ms, "invoke_cpu_ms": cpu_ms}
    json.dump(report, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
