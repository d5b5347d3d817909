import subprocess
import sys


def test_server_package_imports_nothing_else_of_the_project():
    code = ("import sys, orchestrator.serving.app, orchestrator.serving.server, orchestrator.serving.__main__;"
            "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('orchestrator'))))")
    modules = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    outside = [m for m in modules if m != "orchestrator" and not m.startswith("orchestrator.serving")]
    assert outside == [], f"the server must stand alone but imports {outside}"
