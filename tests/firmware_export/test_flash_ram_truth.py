"""Issue 16: flash from the linked size, RAM never under, and the generated firmware sources.

Checked against the linker maps and the bisected arenas of the generated firmware built with the
real TFLM for Cortex-M4F / M33 (../shared/reference/tflm_cortex_m_sizes.md)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from firmware_export import tflm
from firmware_export.arena_bound import arena_bound
from firmware_export.cexport import export_c, render_template
from firmware_export.flash_model import estimate_flash
from firmware_export.ops import model_ops
from firmware_export.tflite_model import read_tflite
from tests.helpers import REFERENCE, ROOT

SIZES_MD = REFERENCE / "tflm_cortex_m_sizes.md"
if not SIZES_MD.is_file():
    SIZES_MD = ROOT.parent / "shared" / "reference" / "tflm_cortex_m_sizes.md"
COLUMNS = ("digits", "vww_96_int8.tflite", "kws_ref_model.tflite")  # column order of the sizes table


def _num(s: str) -> int:
    return int(s.replace(",", ""))


def _reference() -> dict[str, dict[str, int]]:
    """The measured figures, read from the reference file itself (not copied into the test)."""
    if not SIZES_MD.is_file():
        pytest.skip(f"{SIZES_MD} not found")
    text = SIZES_MD.read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[\d,]+", cells[1].replace(" ", "")):
            rows[cells[0]] = cells[1:]
    out = {c: {} for c in COLUMNS}
    for key, label in (("model", "model array"), ("tflm", "TFLM code in all"), ("flash", "flash in all"),
                       ("arena", "smallest arena")):
        row = next(v for k, v in rows.items() if k.startswith(label))
        for c, v in zip(COLUMNS, row):
            out[c][key] = _num(v)
    m33 = re.search(r"text ([\d,]+) \(digits\), ([\d,]+) \(vww\), ([\d,]+) \(kws\)", text)
    for c, v in zip(COLUMNS, m33.groups()):
        out[c]["m33_text"] = _num(v)
    out["digits"]["narrow_saving"] = round(float(re.search(r"at ([\d.]+) KB less text", text).group(1)) * 1000)
    return out


@pytest.fixture(scope="module")
def models(demo_int8, mlperf_dir):
    return {"digits": read_tflite(demo_int8), **{n: read_tflite(mlperf_dir / n) for n in COLUMNS[1:]}}


def _tflm_code(est) -> int:
    return est.code_bytes - est.group_bytes("toolchain") - est.group_bytes("application")


def test_flash_model_reproduces_every_linked_size(models):
    ref = _reference()
    for name, m in models.items():
        r = ref[name]
        assert m.size_bytes == r["model"], name  # the same model that was linked
        m4 = estimate_flash(m, "cmsis-nn", "cortex-m4f", narrow=False)  # the build used AddConv2D() ...
        assert abs(_tflm_code(m4) / r["tflm"] - 1) < 0.05, (name, _tflm_code(m4), r["tflm"])
        assert abs(m4.flash_bytes / r["flash"] - 1) < 0.05, (name, m4.flash_bytes, r["flash"])
        assert m4.flash_bytes_low <= r["flash"] <= m4.flash_bytes_high, name
        m33 = estimate_flash(m, "cmsis-nn", "cortex-m33", narrow=False)
        assert abs(m33.flash_bytes / r["m33_text"] - 1) < 0.05, (name, m33.flash_bytes, r["m33_text"])
        assert m33.flash_bytes_low <= r["m33_text"] <= m33.flash_bytes_high, name
    # int8-only registrations: the digits firmware linked 23.3 KB less text
    d = models["digits"]
    generic = estimate_flash(d, "cmsis-nn", "cortex-m4f", narrow=False)
    narrow = estimate_flash(d, "cmsis-nn", "cortex-m4f", narrow=True)
    linked = ref["digits"]["flash"] - ref["digits"]["narrow_saving"]
    assert abs(narrow.flash_bytes / linked - 1) < 0.05 and narrow.flash_bytes_low <= linked <= narrow.flash_bytes_high
    assert generic.flash_bytes - narrow.flash_bytes == pytest.approx(ref["digits"]["narrow_saving"], rel=0.05)
    # reference kernels: no CMSIS-NN library linked, so less code (an estimate; no reference build measured)
    ref_k = estimate_flash(d, "reference", "cortex-m4f")
    assert not any(p.label.startswith("CMSIS-NN") for p in ref_k.parts) and ref_k.code_bytes < generic.code_bytes


def test_fit_flash_follows_the_export_registration(models):
    from firmware_export.boards import Board
    from firmware_export.estimate import fit_model

    board = Board("m4", "cortex-m4f", 120, 2048, 640)
    d = models["digits"]
    narrow = fit_model(d, [board], arena=8000).results[0]
    generic = fit_model(d, [board], arena=8000, narrow=False).results[0]
    assert narrow.registration == "int8-only" and generic.registration == "generic"
    assert generic.flash_bytes - narrow.flash_bytes > 20_000
    assert narrow.flash_bytes == estimate_flash(d, "cmsis-nn", "cortex-m4f", narrow=True).flash_bytes
    assert sum(p["bytes"] for p in narrow.flash_parts) == narrow.flash_bytes
    # the export writes exactly the registrations the estimate assumed
    assert [op.narrow for op in model_ops(d.data)] == [True, True, True, False, True]


def test_arena_bound_never_below_the_m4_minimum(models):
    ref = _reference()
    for name, m in models.items():
        arena = tflm.measure_arena(m.data)
        bound = arena_bound(m, arena, "cmsis-nn", "cortex-m4f").bound_bytes
        need = ref[name]["arena"]
        assert need <= bound <= 1.25 * need, (name, bound, need)
        assert bound % 16 == 0


def test_arena_bound_covers_the_host_need_on_every_shared_model(mlperf_dir, demo_int8):
    """Models without a bisected M4 figure: the bound is at least the 32-bit target plus every
    allocation's alignment slot, and at least the host's activation plan (head) + persistent part."""
    paths = [demo_int8, *sorted(mlperf_dir.glob("*.tflite"))]
    for path in paths:
        m = read_tflite(path)
        if m.input_tensors()[0].dtype != "INT8":
            continue
        arena = tflm.measure_arena(m.data)
        for core in ("cortex-m4f", "cortex-m55", "cortex-m0plus"):
            b = arena_bound(m, arena, "cmsis-nn", core)
            assert b.bound_bytes >= arena.target_bytes + b.slack_bytes, (path.name, core)
            assert b.bound_bytes >= arena.head_bytes, (path.name, core)


def test_cmake_template_has_tflm_flags():
    cmake = render_template("CMakeLists.txt", {"name": "m", "src": "", "print_result": "", "library_name": "x"})
    for flag in ("-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics", "-fno-unwind-tables",
                 "-ffunction-sections", "-fdata-sections", "TF_LITE_STATIC_MEMORY"):
        assert flag in cmake, flag
    # the C++ flags reach the TFLM sources (TFLM_TREE branch) and the program including its headers
    tree_branch = cmake[cmake.index("else()"):cmake.index("endif()", cmake.index("else()"))]
    assert "target_compile_options(tflm PUBLIC $<$<COMPILE_LANGUAGE:CXX>:${TFLM_CXX_FLAGS}>)" in tree_branch


def test_resolver_uses_int8_variants(demo_int8, tmp_path):
    r = export_c(demo_int8, tmp_path / "fw", name="d")
    h = (tmp_path / "fw" / "d_op_resolver.h").read_text()
    for call in ("AddConv2D(tflite::Register_CONV_2D_INT8())", "AddMaxPool2D(tflite::Register_MAX_POOL_2D_INT8())",
                 "AddFullyConnected(tflite::Register_FULLY_CONNECTED_INT8())",
                 "AddSoftmax(tflite::Register_SOFTMAX_INT8())", "AddReshape()"):
        assert f"resolver.{call};" in h, call
    assert '#include "tensorflow/lite/micro/kernels/conv.h"' in h
    assert r.resolver_calls[0] == "AddConv2D(tflite::Register_CONV_2D_INT8())"
    g = export_c(demo_int8, tmp_path / "fw_generic", name="d", narrow_kernels=False)
    assert all("Register_" not in c for c in g.resolver_calls)


def test_resolver_keeps_generic_kernel_unless_every_use_is_int8():
    from firmware_export.ops import _narrow_registration

    int8 = ("INT8", "INT8", "INT8")
    assert _narrow_registration("CONV_2D", [int8])[0] == "Register_CONV_2D_INT8"
    assert _narrow_registration("CONV_2D", [int8, ("INT8", "INT4", "INT8")]) is None  # int4 weights somewhere
    assert _narrow_registration("FULLY_CONNECTED", [("FLOAT32", "FLOAT32", "FLOAT32")]) is None
    assert _narrow_registration("CONV_2D", [("INT16", "INT8", "INT16")]) is None  # int16x8
    assert _narrow_registration("SOFTMAX", [("INT8", None, "INT16")]) is None  # int8 in, int16 out
    assert _narrow_registration("SOFTMAX", [("INT8", None, "INT8")])[0] == "Register_SOFTMAX_INT8"
    assert _narrow_registration("RESHAPE", [int8]) is None  # no int8-only variant in TFLM


def _callback_block(main_cc: str) -> str:
    start, end = "// tinyprune: debug-log callback begin", "// tinyprune: debug-log callback end"
    return main_cc[main_cc.index(start):main_cc.index(end)]


@pytest.mark.skipif(shutil.which("g++") is None, reason="no host C++ compiler")
def test_main_registers_a_weak_debug_log_callback(demo_int8, tmp_path):
    export_c(demo_int8, tmp_path / "fw", name="d")
    main = (tmp_path / "fw" / "main.cc").read_text()
    assert "if (RegisterDebugLogCallback != nullptr) RegisterDebugLogCallback(tinyprune_debug_log);" in main
    assert main.index("RegisterDebugLogCallback(tinyprune_debug_log)") < main.index("tflite::InitializeTarget()")
    block = _callback_block(main)
    prog = "#include <cstdio>\n" + block + """
int main() {
  if (RegisterDebugLogCallback != nullptr) RegisterDebugLogCallback(tinyprune_debug_log);
  tinyprune_debug_log("direct\\n");
  return 0;
}
"""
    # 1) a target without RegisterDebugLogCallback (host): links, the weak reference is null
    (tmp_path / "a.cc").write_text(prog)
    # 2) cortex_m_generic: TFLM defines it and forwards every log line to the callback
    (tmp_path / "tflm_stub.cc").write_text(
        'extern "C" { static void (*cb_)(const char*) = nullptr;\n'
        "void RegisterDebugLogCallback(void (*cb)(const char* s)) { cb_ = cb; cb_(\"registered\\n\"); } }\n")
    # 3) the firmware's own callback replaces the weak one
    (tmp_path / "uart.cc").write_text('#include <cstdio>\nextern "C" void tinyprune_debug_log(const char* s) '
                                      '{ std::printf("uart:%s", s); }\n')
    runs = {"host": ["a.cc"], "generic": ["a.cc", "tflm_stub.cc"], "override": ["a.cc", "tflm_stub.cc", "uart.cc"]}
    out = {}
    for key, srcs in runs.items():
        exe = tmp_path / key
        b = subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", *[str(tmp_path / s) for s in srcs], "-o", str(exe)],
                           capture_output=True, text=True, check=False)
        assert b.returncode == 0, b.stderr
        out[key] = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30, check=False).stdout
    assert out["host"] == "direct\n"
    assert out["generic"] == "registered\ndirect\n"
    assert out["override"] == "uart:registered\nuart:direct\n"


def test_fit_cli_shows_flash_parts_and_range(demo_int8):
    import json

    from tests.helpers import run_cli

    p = run_cli(["fit", str(demo_int8), "--board", "nucleo-l4r5zi", "--flash"])
    assert p.returncode == 0, p.stderr
    assert "flash parts on nucleo-l4r5zi" in p.stdout and "int8-only registrations" in p.stdout
    assert "CMSIS-NN NNSupportFunctions" in p.stdout and "toolchain libraries" in p.stdout
    j = run_cli(["fit", str(demo_int8), "--board", "nucleo-l4r5zi", "--json"])
    b = json.loads(j.stdout)["boards"][0]
    assert b["flash_bytes_low"] < b["flash_bytes"] < b["flash_bytes_high"] and b["registration"] == "int8-only"
    assert sum(part["bytes"] for part in b["flash_parts"]) == b["flash_bytes"]
    g = json.loads(run_cli(["fit", str(demo_int8), "--board", "nucleo-l4r5zi", "--json", "--generic-kernels"]).stdout)
    assert g["boards"][0]["registration"] == "generic" and g["boards"][0]["flash_bytes"] > b["flash_bytes"] + 20_000


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("g++") is None, reason="no cmake / g++")
def test_cmake_compiles_tflm_tree_sources_with_tflm_flags(demo_int8, tmp_path):
    """Configure the generated CMakeLists.txt on a stand-in TFLM tree (one source file) and build
    the tflm library: every TFLM source and the program get TFLM's C++ flags."""
    import json

    export_c(demo_int8, tmp_path / "fw", name="d")
    tree = tmp_path / "tree" / "tensorflow" / "lite" / "micro"
    tree.mkdir(parents=True)
    (tree / "stand_in.cc").write_text("int tflm_stand_in() { static int x = 1; return x; }\n")
    build = tmp_path / "build"
    cfg = subprocess.run(["cmake", "-S", str(tmp_path / "fw"), "-B", str(build), f"-DTFLM_TREE={tmp_path / 'tree'}",
                          "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"], capture_output=True, text=True, check=False, timeout=120)
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    b = subprocess.run(["cmake", "--build", str(build), "--target", "tflm"], capture_output=True, text=True,
                       check=False, timeout=120)
    assert b.returncode == 0, b.stdout + b.stderr
    commands = json.loads((build / "compile_commands.json").read_text())
    assert {Path(c["file"]).name for c in commands} >= {"stand_in.cc", "main.cc"}
    for c in commands:
        for flag in ("-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics", "-DTF_LITE_STATIC_MEMORY"):
            assert flag in c["command"].split(), (Path(c["file"]).name, flag)
