#!/usr/bin/python3
# 192-install-deps.t — scripts/install-deps: reads packages.txt (comments,
# blanks), does nothing when all are installed, and without root (or sudo)
# fails naming the missing packages instead of installing.
import os
import shutil
import subprocess
import sys
import tempfile

srcdir = os.path.abspath(os.environ.get(
    "top_srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")))
sys.path.insert(0, os.path.join(srcdir, "t", "lib"))
from tap import TAP   # noqa: E402

t = TAP()
tmp = tempfile.mkdtemp(prefix="modelhub-deps-", dir="/tmp")
os.chmod(tmp, 0o755)
os.makedirs(os.path.join(tmp, "scripts"))
script = os.path.join(tmp, "scripts", "install-deps")
shutil.copy(os.path.join(srcdir, "scripts", "install-deps"), script)
os.chmod(script, 0o755)


def run(packages, unprivileged=False):
    with open(os.path.join(tmp, "scripts", "packages.txt"), "w") as f:
        f.write(packages)
    os.chmod(os.path.join(tmp, "scripts", "packages.txt"), 0o644)
    argv = [script]
    if unprivileged and os.geteuid() == 0:
        argv = ["runuser", "-u", "nobody", "--"] + argv
    return subprocess.run(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60, cwd="/")


try:
    r = run("# a comment\n\nbash\n  coreutils   # why we need it\nbash\n")
    t.is_(r.returncode, 0, "all installed: exit 0")
    t.like(r.stdout, r"all 2 packages present", "comments, blanks and duplicates ignored")
    t.ok("apt-get" not in r.stdout, "all installed: no apt-get run")

    r = run("bash\nmodelhub-no-such-package-x\n", unprivileged=True)
    t.isnt(r.returncode, 0, "missing package without root: exit non-zero")
    t.like(r.stdout, r"missing: modelhub-no-such-package-x\b", "names the missing package")
    t.ok("bash" not in r.stdout.split("missing:")[-1].split("\n")[0],
         "installed packages are not listed as missing")

    os.unlink(os.path.join(tmp, "scripts", "packages.txt"))
    r = subprocess.run([script], text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t.isnt(r.returncode, 0, "no packages.txt: exit non-zero")
    t.like(r.stdout, r"packages.txt missing", "no packages.txt: says so")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
