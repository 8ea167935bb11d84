"""Generated C from hostile names and labels compiles under g++ -Wall -Wextra -Werror, and stays inert.

Found on main: a tensor name with a newline ended the // comment in NAME_model_settings.h, so
`#include "/etc/hostname"` or `#error` in a name became live lines; labels with NUL or `??/`
broke -Werror builds. TFLM's headers are not installed here, so the op resolver header is
checked against a stub of `micro_mutable_op_resolver.h` that declares every Add* method of
tflm_ops.toml (-fsyntax-only; the stub has the real header's shape for what the code uses).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from firmware_export.cexport import c_comment_text, c_string, export_c
from tests.security.mutate import edit

HOSTILE_NAMES = ['x\n#include "/etc/hostname"\n', "y\n#error pwned\nint z = 1;", "w \\", "*/ /* ??/ ??=",
                 "caf\u00e9\r\n#define int void"]
HOSTILE_LABELS = ["zero\x00hidden", "one ??/", 'two "quoted" \\', "three\nfour", "??=??(??)", "caf\u00e9"] + \
    [f"l{i}" for i in range(4)]


def _stub(tmp_path):
    """micro_mutable_op_resolver.h with every Add* method (taking an optional registration), and the
    kernel headers that declare the int8-only registrations the export may pass (ops.narrow_table)."""
    from firmware_export.ops import narrow_table, op_table

    builtin, custom = op_table()
    methods = "".join(f"  int {m}(int = 0) {{ return 0; }}\n"
                      for m in sorted(set(builtin.values()) | set(custom.values())))
    root = tmp_path / "stub"
    inc = root / "tensorflow" / "lite" / "micro"
    inc.mkdir(parents=True)
    (inc / "micro_mutable_op_resolver.h").write_text(
        "#pragma once\nnamespace tflite {\ntemplate <unsigned int N> class MicroMutableOpResolver {\n public:\n"
        f"{methods}}};\n}}  // namespace tflite\n")
    by_header: dict[str, list[str]] = {}
    for rule in narrow_table().values():
        by_header.setdefault(rule["header"], []).append(rule["function"])
    for header, functions in by_header.items():
        path = root / header
        path.parent.mkdir(parents=True, exist_ok=True)
        decls = "".join(f"inline int {f}() {{ return 0; }}\n" for f in functions)
        path.write_text(f"#pragma once\nnamespace tflite {{\n{decls}}}  // namespace tflite\n")
    return root


def test_escapers_reduce_to_safe_text():
    for s in HOSTILE_NAMES:
        out = c_comment_text(s)
        assert "\n" not in out and "\r" not in out and "\\" not in out and "??" not in out and "*/" not in out
    lit = c_string("a\x00b\n??/\"\\")
    assert lit == '"a\\000b\\012\\?\\?/\\"\\\\"'


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
def test_hostile_names_and_labels_compile_with_werror(demo_int8, tmp_path):
    names = iter(HOSTILE_NAMES)

    def rename(m):
        sg = m.subgraphs[0]
        for i in list(sg.inputs) + list(sg.outputs) + [2, 3]:
            sg.tensors[i].name = next(names).encode()
    data = edit(demo_int8.read_bytes(), rename)
    out = tmp_path / "out"
    export_c(data, out, name="m", labels=HOSTILE_LABELS)
    settings = (out / "m_model_settings.h").read_text()
    for line in settings.splitlines():
        assert not line.lstrip().startswith(("#include \"/etc", "#error", "#define int", "int z")), line
    stub = _stub(tmp_path)
    tu = tmp_path / "tu.cc"
    tu.write_text('#include "m_model_data.h"\n#include "m_model_settings.h"\n#include "m_op_resolver.h"\n'
                  "int main() { auto r = m_op_resolver(); (void)r;\n"
                  "  return m_labels[0][0] + static_cast<int>(m_model_data_len) + m_num_labels; }\n")
    for src in (tu, out / "m_model_data.cc"):
        proc = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wtrigraphs",
                               f"-I{out}", f"-I{stub}", str(src)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    # the labels survive byte for byte as C strings (NUL included)
    assert c_string(HOSTILE_LABELS[0]) in settings
