"""Build a Python plugin into a component:

    python gatehouse_build.py APP_DIR [-m MODULE] -o plugin.wasm
        [--toolkit] [--embed MODULE=FILE]... [--plug COMPONENT.wasm]...

runs componentize-py against the Gatehouse WIT (``gatehouse_sdk/wit`` when
the SDK ships a copy, else the repository's ``wit/``, else ``--wit DIR``),
with the SDK and APP_DIR on the module path. It lives beside the package,
not in it: the package imports the bindings, which exist only inside the
component.

``--toolkit`` targets ``gatehouse:plugin/toolkit@0.2.0``, which adds the
host's audio front ends and TFLite models (``gatehouse_sdk.audio``,
``gatehouse_sdk.tflite``). Such a plugin imports ``gatehouse:tflite/model``,
which the host does not serve: ``--plug tflite-loader.wasm`` plugs the
loader component in with ``wac plug`` (wac-cli, from crates.io).
``--embed kws_model=model.tflite`` makes a module ``kws_model`` whose
``DATA`` is the file's bytes, so the plugin carries its model."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

WORLD = "gatehouse:plugin/plugin@0.1.0"
TOOLKIT = "gatehouse:plugin/toolkit@0.2.0"


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(prog="gatehouse_build.py")
    p.add_argument("app_dir", help="the folder holding the plugin module")
    p.add_argument("-m", "--module", default="app", help="the plugin module (default app)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--wit", default=None, help="the Gatehouse WIT folder")
    p.add_argument("--world", default=None, help=f"default {WORLD}, or {TOOLKIT} with --toolkit")
    p.add_argument("--toolkit", action="store_true", help="audio front ends and TFLite models")
    p.add_argument("--embed", action="append", default=[], metavar="MODULE=FILE")
    p.add_argument("--plug", action="append", default=[], metavar="COMPONENT.wasm")
    a = p.parse_args(argv)
    wit = a.wit or _find_wit(here)
    world = a.world or (TOOLKIT if a.toolkit else WORLD)
    with tempfile.TemporaryDirectory() as embedded:
        for e in a.embed:
            module, sep, path = e.partition("=")
            if not sep or not module.isidentifier():
                sys.exit(f"--embed {e!r}: expected MODULE=FILE")
            with open(path, "rb") as f:
                data = f.read()
            with open(os.path.join(embedded, module + ".py"), "w") as f:
                f.write(f'"""{os.path.basename(path)}, embedded by gatehouse_build.py."""\n')
                f.write(f"DATA = {data!r}\n")
        out = a.output + ".socket.wasm" if a.plug else a.output
        cmd = [
            sys.executable, "-c", "import sys, componentize_py; sys.exit(componentize_py.script())",
            "-d", wit, "-w", world,
            "componentize", a.module,
            "-p", a.app_dir, "-p", here, "-p", embedded,
            "-o", out,
        ]
        rc = subprocess.call(cmd)
    if rc != 0 or not a.plug:
        return rc
    if shutil.which("wac") is None:
        sys.exit("--plug needs wac on PATH: cargo install wac-cli --no-default-features")
    cmd = ["wac", "plug", out, "-o", a.output]
    for c in a.plug:
        cmd += ["--plug", c]
    rc = subprocess.call(cmd)
    os.remove(out)
    return rc


def _find_wit(here: str) -> str:
    for cand in (os.path.join(here, "gatehouse_sdk", "wit"), os.path.join(here, "..", "..", "wit")):
        if os.path.isfile(os.path.join(cand, "plugin.wit")):
            return os.path.normpath(cand)
    sys.exit("the Gatehouse WIT was not found: give --wit DIR")


if __name__ == "__main__":
    sys.exit(main())
