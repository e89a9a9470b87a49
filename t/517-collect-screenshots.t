#!/usr/bin/python3
# 517-collect-screenshots.t — scripts/collect-screenshots (issue 19: screenshots as CI artifacts): copies BUILD/t/artifacts/*.png to $MODELHUB_ARTIFACTS_DIR (default BUILD/artifacts/screenshots) and prints the count and path; PNGs of an earlier run there are replaced, other files kept; no screenshots → "0", exit 0; an unwritable destination → exit 1 with the reason; scripts/test and .ci/run call it.
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
script = os.path.join(srcdir, "scripts", "collect-screenshots")
tmp = tempfile.mkdtemp(prefix="modelhub-shots-")


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("MODELHUB_ARTIFACTS_DIR", None)
    e.pop("MODELHUB_BUILD_DIR", None)
    e.update(env or {})
    return subprocess.run([script] + list(args), env=e, text=True, timeout=30,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def write(path, data=b"\x89PNG fake"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


try:
    build = os.path.join(tmp, "build")
    arts = os.path.join(build, "t", "artifacts")
    # no screenshots at all (browser tests skipped): says 0, succeeds
    os.makedirs(build)
    r = run(build)
    default = os.path.join(build, "artifacts", "screenshots")
    t.is_(r.returncode, 0, "no screenshots: exit 0")
    t.is_(r.stdout.strip(), "screenshots: 0 in %s/" % default, "no screenshots: says 0 and the default path")

    write(os.path.join(arts, "510-models-1280.png"), b"\x89PNG one")
    write(os.path.join(arts, "510-models-390.png"))
    write(os.path.join(arts, "not-a-shot.txt"))
    write(os.path.join(default, "old-run.png"))
    write(os.path.join(default, "README"), b"kept")
    r = run(build)
    t.is_(r.returncode, 0, "default destination: exit 0")
    t.is_(r.stdout.strip(), "screenshots: 2 in %s/" % default, "prints the count and where they are")
    t.is_(sorted(os.listdir(default)), ["510-models-1280.png", "510-models-390.png", "README"],
          "the PNGs copied, an earlier run's PNG gone, other files kept")
    with open(os.path.join(default, "510-models-1280.png"), "rb") as f:
        t.is_(f.read(), b"\x89PNG one", "content copied as is")

    # $MODELHUB_ARTIFACTS_DIR and $MODELHUB_BUILD_DIR
    dest = os.path.join(tmp, "ci", "artifacts")
    r = run(env={"MODELHUB_ARTIFACTS_DIR": dest, "MODELHUB_BUILD_DIR": build})
    t.is_((r.returncode, r.stdout.strip()), (0, "screenshots: 2 in %s/" % dest),
          "MODELHUB_ARTIFACTS_DIR (created) and MODELHUB_BUILD_DIR are used")
    t.is_(sorted(os.listdir(dest)), ["510-models-1280.png", "510-models-390.png"], "both copied there")

    # a destination that cannot be created
    write(os.path.join(tmp, "file"), b"x")
    r = run(build, env={"MODELHUB_ARTIFACTS_DIR": os.path.join(tmp, "file", "sub")})
    t.is_(r.returncode, 1, "destination cannot be created: exit 1")
    t.like(r.stderr, r"collect-screenshots: cannot create .*file/sub", "and says which")

    # the callers
    for rel, how in (("scripts/test", r'\n"\$top/scripts/collect-screenshots" "\$build"\n'),
                     (".ci/run", r'\n"\$top/scripts/collect-screenshots" \|\|')):
        with open(os.path.join(srcdir, rel)) as f:
            t.like(f.read(), how, "%s calls scripts/collect-screenshots" % rel)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
