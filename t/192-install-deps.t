#!/usr/bin/python3
# 192-install-deps.t — scripts/install-deps: reads packages-{runtime,build,test}.txt (comments, blanks, duplicates across lists), one list by name, does nothing when all are installed, and without root (or sudo) fails naming the missing packages instead of installing.
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


def write(name, text):
    path = os.path.join(tmp, "scripts", "packages-%s.txt" % name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)


def run(*lists, unprivileged=False):
    argv = [script] + list(lists)
    if unprivileged and os.geteuid() == 0:
        argv = ["runuser", "-u", "nobody", "--"] + argv
    return subprocess.run(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60, cwd="/")


try:
    # the repository's own lists are well formed: one package name per line
    for name in ("runtime", "build", "test"):
        with open(os.path.join(srcdir, "scripts", "packages-%s.txt" % name)) as f:
            names = [ln.split("#")[0].strip() for ln in f if ln.split("#")[0].strip()]
        t.ok(names and all(len(n.split()) == 1 for n in names),
             "scripts/packages-%s.txt lists %d packages" % (name, len(names)))
    with open(os.path.join(srcdir, "scripts", "packages-runtime.txt")) as f:
        rt = f.read()
    t.ok(not any(p in rt.split() for p in ("build-essential", "gcc", "chromium", "python3-rdkit")),
         "the runtime list holds no compiler, browser or model toolkit")

    write("runtime", "# a comment\n\nbash\n  coreutils   # why we need it\n")
    write("build", "bash\n")
    write("test", "coreutils\n")
    r = run()
    t.is_(r.returncode, 0, "all installed: exit 0")
    t.like(r.stdout, r"all 2 packages present", "comments, blanks and duplicates across lists ignored")
    t.ok("apt-get" not in r.stdout, "all installed: no apt-get run")

    write("test", "bash\nmodelhub-no-such-package-x\n")
    r = run("runtime", "build")
    t.is_(r.returncode, 0, "only the lists named are read (runtime build)")
    r = run("test", unprivileged=True)
    t.isnt(r.returncode, 0, "missing package without root: exit non-zero")
    t.like(r.stdout, r"missing: modelhub-no-such-package-x\b", "names the missing package")
    t.ok("bash" not in r.stdout.split("missing:")[-1].split("\n")[0],
         "installed packages are not listed as missing")

    r = run("runtime", "docs")
    t.isnt(r.returncode, 0, "unknown list: exit non-zero")
    t.like(r.stdout, r"unknown list 'docs'", "unknown list: says which")

    os.unlink(os.path.join(tmp, "scripts", "packages-build.txt"))
    r = run()
    t.isnt(r.returncode, 0, "no packages-build.txt: exit non-zero")
    t.like(r.stdout, r"packages-build.txt missing", "no packages-build.txt: says so")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
