"""Build a Python plugin into a component:

    python gatehouse_build.py APP_DIR [-m MODULE] -o plugin.wasm

runs componentize-py against the Gatehouse WIT (``gatehouse_sdk/wit`` when
the SDK ships a copy, else the repository's ``wit/``, else ``--wit DIR``),
with the SDK and APP_DIR on the module path. It lives beside the package,
not in it: the package imports the bindings, which exist only inside the
component."""

import argparse
import os
import subprocess
import sys

WORLD = "gatehouse:plugin/plugin@0.1.0"


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(prog="gatehouse_build.py")
    p.add_argument("app_dir", help="the folder holding the plugin module")
    p.add_argument("-m", "--module", default="app", help="the plugin module (default app)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--wit", default=None, help="the Gatehouse WIT folder")
    p.add_argument("--world", default=WORLD)
    a = p.parse_args(argv)
    wit = a.wit or _find_wit(here)
    cmd = [
        sys.executable, "-c", "import sys, componentize_py; sys.exit(componentize_py.script())",
        "-d", wit, "-w", a.world,
        "componentize", a.module,
        "-p", a.app_dir, "-p", here,
        "-o", a.output,
    ]
    return subprocess.call(cmd)


def _find_wit(here: str) -> str:
    for cand in (os.path.join(here, "gatehouse_sdk", "wit"), os.path.join(here, "..", "..", "wit")):
        if os.path.isfile(os.path.join(cand, "plugin.wit")):
            return os.path.normpath(cand)
    sys.exit("the Gatehouse WIT was not found: give --wit DIR")


if __name__ == "__main__":
    sys.exit(main())
