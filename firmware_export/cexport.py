"""Write a .tflite as C++ source a firmware engineer can drop into a TFLite Micro project.

`export_c` writes, for a model called NAME:

- `NAME_model_data.h` / `.cc`: the flatbuffer as `alignas(16) const unsigned char NAME_model_data[]`
  and its length as a `constexpr` constant (`NAME_model_data_len`);
- `NAME_model_settings.h`: input and output shape, element type, scale and zero point, class
  labels when given, and the tensor arena size `NAME_tensor_arena_size`;
- `NAME_op_resolver.h`: `NAME_op_resolver()`, returning a `tflite::MicroMutableOpResolver<N>`
  with exactly the N distinct operators of the flatbuffer (`AddDecode()` for TFLM_DECODE), each
  with the narrowest registration TFLM has for the model's tensor types
  (`AddConv2D(tflite::Register_CONV_2D_INT8())` for an int8 convolution; `ops.py`, [narrow] in
  `tflm_ops.toml`), which links only CMSIS-NN's int8 code (23.3 KB less on the digits firmware);
  `narrow_kernels=False` writes the generic registrations (every data type) instead;
- `main.cc` (a minimal TFLM program using all of the above) and `CMakeLists.txt`;
- with `arduino=True`, an Arduino library: `library.properties`, the sources under `src/`, and a
  sketch under `examples/NAME_inference/`.

Arena size. The constant starts from an upper bound of the smallest arena that works on the
32-bit target (`arena_bound.py`): the arena the real TFLM interpreter needs on the 64-bit host
(`firmware_export.tflm.measure_arena`), adjusted to 32 bits (`ArenaReport.target_bytes`), plus the
CMSIS-NN scratch buffers the host's reference kernels do not ask for (after planning) and the
alignment slack of every persistent allocation. On top of that bound comes a margin of
`ARENA_MARGIN_FRACTION` (5%) and `ARENA_MARGIN_BYTES` (512 B), rounded up to 16 bytes, for a
different TFLM version or vendor kernels. The bound is for cores with the DSP extension or none;
when Helium (MVE) kernels need more, the header has a second constant under
`#if defined(__ARM_FEATURE_MVE)`. The bound is never below the smallest arena that works on a
Cortex-M4 (bisected) for the models in ../shared/reference/tflm_cortex_m_sizes.md (tested).

Nothing is written until everything is checked: the file parses, every operator has a TFLM
kernel (`ops.py`), the model is int8 when `require_int8` is set, and TFLM allocates and runs it.
Then the whole folder is written atomically (`files.staged_dir`). No TensorFlow.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from firmware_export import ops as ops_mod
from firmware_export import tflm
from firmware_export.arena_bound import (ARENA_MARGIN_BYTES, ARENA_MARGIN_FRACTION, ArenaBound, arena_bound_portable,
                                        header_arena_bytes)
from firmware_export.errors import ConfigError, TfliteFormatError
from firmware_export.files import check_writable, read_user_text, staged_dir
from firmware_export.tflite_model import Tensor, TfliteModel, parse_tflite, read_tflite

TEMPLATES = Path(__file__).with_name("templates")
BYTES_PER_LINE = 12  # 12 x "0x00, " = 72 columns, as xxd -i lays them out

# TFLite tensor type -> (C element type, short name) for the settings header.
_C_TYPES = {
    "INT8": ("int8_t", "int8"), "UINT8": ("uint8_t", "uint8"), "INT16": ("int16_t", "int16"),
    "INT32": ("int32_t", "int32"), "FLOAT32": ("float", "float32"), "BOOL": ("bool", "bool"),
    "INT64": ("int64_t", "int64"),
}
# Ops that convert between float and integer at a model's edges; a float tensor there is fine.
_EDGE_OPS = {"QUANTIZE", "DEQUANTIZE"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class ExportResult:
    """What `export_c` wrote and the figures behind the arena constant."""

    out_dir: Path
    files: list[str]  # paths relative to out_dir
    arena_bytes: int  # the constant in NAME_model_settings.h (cores without Helium)
    arena_host_bytes: int  # measured by TFLM on the 64-bit host
    arena_target_bytes: int  # host figure adjusted to a 32-bit target
    ops: list[str]  # distinct operators, as registered in NAME_op_resolver.h
    model_bytes: int
    name: str = "model"
    resolver_methods: list[str] = field(default_factory=list)
    resolver_calls: list[str] = field(default_factory=list)  # e.g. AddConv2D(tflite::Register_CONV_2D_INT8())
    arena_bound_bytes: int = 0  # upper bound of the smallest working arena on the target (arena_bound.py)
    mve_arena_bytes: int | None = None  # the constant for Helium cores, when larger than arena_bytes

    @property
    def margin_bytes(self) -> int:
        return self.arena_bytes - self.arena_bound_bytes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["margin_bytes"] = self.margin_bytes
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def render(self, console) -> None:
        """Print what was written and the arena figures as a rich table."""
        from firmware_export.terminal import escape
        from rich.table import Table

        t = Table(title=escape(f"tinyprune export -> {self.out_dir}"), show_header=False)
        t.add_row("model", escape(f"{self.model_bytes:,} bytes, {len(self.ops)} operators: {', '.join(self.ops)}"))
        t.add_row("arena (TFLM, 64-bit host)", f"{self.arena_host_bytes:,} bytes")
        t.add_row("arena (32-bit target)", f"{self.arena_target_bytes:,} bytes")
        t.add_row("arena bound (+ CMSIS-NN scratch, alignment)", f"{self.arena_bound_bytes:,} bytes")
        t.add_row(f"{self.name}_tensor_arena_size", f"{self.arena_bytes:,} bytes "
                  f"(bound + {ARENA_MARGIN_FRACTION:.0%} + {ARENA_MARGIN_BYTES} B margin)"
                  + (f"; {self.mve_arena_bytes:,} on Helium cores" if self.mve_arena_bytes else ""))
        t.add_row("files", "\n".join(escape(f) for f in self.files))
        console.print(t)


def read_labels(path: str | Path) -> list[str]:
    """Class labels from a text file, one per line (blank lines ignored)."""
    text = read_user_text(path, "labels file", "a text file with one label per line")
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ConfigError(f"{path} holds no labels; write one class label per line (or leave out --labels)")
    return labels


def _load(model: bytes | str | Path) -> TfliteModel:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return parse_tflite(bytes(model))
    return read_tflite(model)


def check_name(name: str) -> None:
    """NAME becomes a C identifier prefix and part of file names."""
    if not _IDENTIFIER.fullmatch(name or ""):
        raise ConfigError(f"--name {name!r} is not a C identifier; use letters, digits and _ "
                          "(not starting with a digit), e.g. --name kws")


def name_from_path(path: str | Path) -> str:
    """A C identifier prefix from a model's file name (`kws-v2.h5` -> `kws_v2`; `model` if empty),
    for the export's array and header names."""
    name = re.sub(r"\W", "_", Path(path).stem, flags=re.ASCII) or "model"
    return name if name[0].isalpha() else f"m_{name}"


def float_ops(model: TfliteModel) -> list[str]:
    """Operators (other than QUANTIZE/DEQUANTIZE) that read or write float32 tensors."""
    found = []
    for op in model.operators:
        if op.name in _EDGE_OPS:
            continue
        if any(0 <= i < len(model.tensors) and model.tensors[i].dtype == "FLOAT32"
               for i in (*op.inputs, *op.outputs)):
            found.append(op.name)
    return sorted(set(found))


def check_int8(model: TfliteModel, source: str) -> None:
    """Raise ConfigError if the model computes in float (int8 was asked for)."""
    floats = float_ops(model)
    if floats:
        raise ConfigError(f"{source} is a float model ({', '.join(floats)} compute in float32) but int8 "
                          "was required; quantize it first (tinyprune quantize / quantize_int8)")


# ---------------------------------------------------------------- rendering (pure functions)

_HEX = [f"0x{b:02x}" for b in range(256)]


def c_array_body(data: bytes) -> str:
    """The bytes as C initializer lines, BYTES_PER_LINE per line."""
    return ",\n".join("  " + ", ".join(_HEX[b] for b in data[i:i + BYTES_PER_LINE])
                      for i in range(0, len(data), BYTES_PER_LINE))


def _guard(filename: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", filename).upper() + "_"


def _header(filename: str, body: str, includes: tuple[str, ...] = ()) -> str:
    g = _guard(filename)
    inc = "".join(f"#include {i}\n" for i in includes)
    return (f"// {filename}: generated by tinyprune export; do not edit.\n"
            f"#ifndef {g}\n#define {g}\n\n{inc}{chr(10) if inc else ''}{body}\n#endif  // {g}\n")


def render_model_data(name: str, data: bytes) -> tuple[str, str]:
    """(NAME_model_data.h, NAME_model_data.cc)."""
    h = _header(f"{name}_model_data.h",
                f"// The .tflite flatbuffer ({len(data)} bytes), 16-byte aligned as TFLM requires.\n"
                f"extern const unsigned char {name}_model_data[];\n"
                f"constexpr unsigned int {name}_model_data_len = {len(data)};\n")
    cc = (f"// {name}_model_data.cc: generated by tinyprune export; do not edit.\n"
          f'#include "{name}_model_data.h"\n\n'
          f"alignas(16) const unsigned char {name}_model_data[] = {{\n{c_array_body(data)}\n}};\n")
    return h, cc


# Characters a model- or user-supplied string keeps in a // comment. Everything else (newline,
# backslash = line continuation, '?' = trigraphs, '*', control and non-ASCII characters) becomes '_'.
_COMMENT_SAFE = re.compile(r"[^A-Za-z0-9 _\-.,:;+=()\[\]<>#@!%&|~^{}'\"/]")
COMMENT_MAX_CHARS = 120


def c_comment_text(s: str) -> str:
    """`s` reduced to characters that cannot end or extend a // comment (see _COMMENT_SAFE)."""
    s = str(s)
    short = s[:COMMENT_MAX_CHARS] + ("..." if len(s) > COMMENT_MAX_CHARS else "")
    return _COMMENT_SAFE.sub("_", short)


def c_string(s: str) -> str:
    """`s` as a C/C++ string literal: printable ASCII as is (but \\, \" and ? escaped, so no
    trigraph), every other byte of its UTF-8 as a 3-digit octal escape (NUL, newline, non-ASCII)."""
    out = []
    for b in str(s).encode("utf-8", "surrogateescape"):
        c = chr(b)
        if c in '\\"?':
            out.append("\\" + c)
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


_c_string = c_string


def _c_float(x: float) -> str:
    return f"{x:.9g}f" if ("e" in f"{x:.9g}" or "." in f"{x:.9g}") else f"{x:.9g}.0f"


def _io_block(name: str, role: str, t: Tensor) -> str:
    ctype, short = _C_TYPES.get(t.dtype, ("uint8_t", t.dtype.lower()))
    shape = t.shape or (1,)
    scale = t.scale[0] if t.scale else 0.0
    zp = t.zero_point[0] if t.zero_point else 0
    p = f"{name}_{role}"
    return (f"// {role}: tensor {t.index} '{c_comment_text(t.name)}'\n"
            f"typedef {ctype} {p}_t;\n"
            f'constexpr char {p}_type[] = "{short}";\n'
            f"constexpr int {p}_dims = {len(shape)};\n"
            f"constexpr int {p}_shape[{len(shape)}] = {{{', '.join(str(d) for d in shape)}}};\n"
            f"constexpr int {p}_size = {t.num_elements};  // elements\n"
            f"constexpr float {p}_scale = {_c_float(scale)};  // real = scale * (q - zero_point)\n"
            f"constexpr int {p}_zero_point = {zp};\n")


def render_settings(name: str, model: TfliteModel, arena: tflm.ArenaReport, arena_bytes: int,
                    labels: list[str] | None, bound: ArenaBound | None = None,
                    mve_arena_bytes: int | None = None) -> str:
    """NAME_model_settings.h: I/O facts, labels and the arena constant."""
    blocks = []
    for i, t in enumerate(model.input_tensors()):
        blocks.append(_io_block(name, "input" if i == 0 else f"input{i}", t))
    for i, t in enumerate(model.output_tensors()):
        blocks.append(_io_block(name, "output" if i == 0 else f"output{i}", t))
    if labels:
        items = ",\n".join(f"  {_c_string(lb)}" for lb in labels)
        blocks.append(f"// Class labels, in output order.\nconstexpr int {name}_num_labels = {len(labels)};\n"
                      f"constexpr const char* {name}_labels[{len(labels)}] = {{\n{items}\n}};\n")
    base = bound.bound_bytes if bound is not None else arena.target_bytes
    margin = arena_bytes - base
    extra = (f"// + CMSIS-NN scratch {bound.scratch_bytes} + alignment slack {bound.slack_bytes} = bound "
             f"{bound.bound_bytes} bytes;\n" if bound is not None else "")
    constant = f"constexpr unsigned int {name}_tensor_arena_size = {arena_bytes};\n"
    if mve_arena_bytes:
        constant = (f"#if !defined(__ARM_FEATURE_MVE)\n{constant}"
                    f"#else  // Helium (MVE) kernels ask for larger scratch buffers\n"
                    f"constexpr unsigned int {name}_tensor_arena_size = {mve_arena_bytes};\n#endif\n")
    blocks.append(
        "// Tensor arena. TFLM measured on the 64-bit host: "
        f"{arena.host_bytes} bytes; adjusted to a 32-bit\n"
        f"// target: {arena.target_bytes} bytes;\n{extra}"
        f"// plus a margin of {margin} bytes ({ARENA_MARGIN_FRACTION:.0%} + {ARENA_MARGIN_BYTES} B, rounded up "
        "to 16)\n// for other TFLM versions and vendor kernels. If AllocateTensors() fails, raise it; if it\n"
        "// succeeds, interpreter.arena_used_bytes() tells the real need.\n"
        + constant)
    return _header(f"{name}_model_settings.h", "\n".join(blocks), ("<cstdint>",))


def render_op_resolver(name: str, model_ops: list[ops_mod.ModelOp]) -> str:
    """NAME_op_resolver.h: a function returning MicroMutableOpResolver<N> with exactly N ops."""
    n = len(model_ops)
    calls = "".join(f"  resolver.{op.call};  // {c_comment_text(op.name)}\n" for op in model_ops)
    narrow = [op.name for op in model_ops if op.narrow]
    note = ("// Int8-only kernel variants (Register_*_INT8) where every use of the op is int8: they link\n"
            "// only the int8 code paths of the optimized kernels (CMSIS-NN); on reference-kernel builds\n"
            "// they are the generic kernels. Use the plain AddX() calls to accept every data type.\n"
            if narrow else "")
    body = (f"// The {n} distinct operators of {name}, exactly as listed in its flatbuffer.\n{note}"
            f"constexpr unsigned int {name}_op_count = {n};\n\n"
            f"// Keep the returned resolver alive as long as the interpreter that uses it\n"
            f"// (e.g. `static auto op_resolver = {name}_op_resolver();`).\n"
            f"inline tflite::MicroMutableOpResolver<{name}_op_count> {name}_op_resolver() {{\n"
            f"  tflite::MicroMutableOpResolver<{name}_op_count> resolver;\n{calls}"
            f"  return resolver;\n}}\n")
    headers = sorted({op.header for op in model_ops if op.header})
    return _header(f"{name}_op_resolver.h", body,
                   ('"tensorflow/lite/micro/micro_mutable_op_resolver.h"', *(f'"{h}"' for h in headers)))


def render_template(template: str, values: dict[str, str]) -> str:
    """Fill {{key}} placeholders; every placeholder must have a value."""
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", v)
    left = re.findall(r"\{\{(\w+)\}\}", text)
    if left:
        raise KeyError(f"template {template} has no value for {left}")
    return text


def _print_result(name: str, labels: list[str] | None) -> str:
    if labels:
        return f'  MicroPrintf("top-1: class %d (%s)", best, {name}_labels[best]);'
    return '  MicroPrintf("top-1: class %d", best);'


def render_files(model: TfliteModel, name: str, arena: tflm.ArenaReport, arena_bytes: int,
                 model_ops: list[ops_mod.ModelOp], arduino: bool,
                 labels: list[str] | None, bound: ArenaBound | None = None,
                 mve_arena_bytes: int | None = None) -> dict[str, str]:
    """Every output file, relative path -> text."""
    src = "src/" if arduino else ""
    h, cc = render_model_data(name, model.data)
    files = {
        f"{src}{name}_model_data.h": h,
        f"{src}{name}_model_data.cc": cc,
        f"{src}{name}_model_settings.h": render_settings(name, model, arena, arena_bytes, labels, bound,
                                                          mve_arena_bytes),
        f"{src}{name}_op_resolver.h": render_op_resolver(name, model_ops),
    }
    values = {"name": name, "src": src, "print_result": _print_result(name, labels),
              "library_name": f"{name}_tflm_model"}
    files["main.cc"] = render_template("main.cc", values)
    files["CMakeLists.txt"] = render_template("CMakeLists.txt", values)
    if arduino:
        files["library.properties"] = render_template("library.properties", values)
        files[f"examples/{name}_inference/{name}_inference.ino"] = render_template("sketch.ino", values)
    return files


def _check_labels(labels: list[str] | None, model: TfliteModel) -> None:
    if not labels:
        return
    out = model.output_tensors()[0]
    classes = out.shape[-1] if out.shape else 1
    if len(labels) != classes:
        raise ConfigError(f"{len(labels)} labels given but the model has {classes} output classes; "
                          "give one label per line, in output order")


# ---------------------------------------------------------------- the export

def export_c(model: bytes | str | Path, out_dir: str | Path, name: str = "model", arduino: bool = False,
             force: bool = False, labels: list[str] | None = None,
             require_int8: bool = False, narrow_kernels: bool = True) -> ExportResult:
    """Check `model` and write its TFLM C source folder to `out_dir` (see the module docstring).

    Raises (before writing anything): InputFileError / TfliteFormatError for a missing, non-tflite
    or truncated file; TflmError for an operator TFLM lacks or a model it cannot allocate;
    ConfigError for a bad name, wrong label count, or a float model with `require_int8`;
    OutputExistsError if `out_dir` exists and not `force`.
    """
    out_dir = Path(out_dir)
    source = str(model) if isinstance(model, (str, Path)) else "the model"
    check_name(name)
    inputs = [model] if isinstance(model, (str, Path)) else []
    check_writable(out_dir, force, inputs)
    m = _load(model)
    model_ops = ops_mod.model_ops(m, narrow=narrow_kernels)
    ops_mod.check_supported(model_ops, source)
    if require_int8:
        check_int8(m, source)
    _check_labels(labels, m)
    if not m.inputs or not m.outputs:
        raise TfliteFormatError(f"{source} has no input or output tensor; re-export it from the converter")
    arena = tflm.measure_arena(m.data)
    bound = arena_bound_portable(m, arena)
    arena_bytes = header_arena_bytes(m, arena)
    mve = header_arena_bytes(m, arena, "cortex-m55")
    mve_bytes = mve if mve > arena_bytes else None
    files = render_files(m, name, arena, arena_bytes, model_ops, arduino, labels, bound, mve_bytes)
    with staged_dir(out_dir, force=force, inputs=inputs) as tmp:
        for rel, text in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return ExportResult(out_dir=out_dir, files=sorted(files), arena_bytes=arena_bytes,
                        arena_host_bytes=arena.host_bytes, arena_target_bytes=arena.target_bytes,
                        ops=[op.name for op in model_ops], model_bytes=m.size_bytes, name=name,
                        resolver_methods=[op.method for op in model_ops],
                        resolver_calls=[op.call for op in model_ops],
                        arena_bound_bytes=bound.bound_bytes, mve_arena_bytes=mve_bytes)
