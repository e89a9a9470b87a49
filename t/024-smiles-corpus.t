#!/usr/bin/python3
# 024-smiles-corpus.t — the SMILES screen never rejects what RDKit accepts (corpus, variants, every short string).
"""Feeds t/smiles-screen (lib/smiles.c) with:
- every SMILES in RDKit's own data files (rdkit-data: NCI first 5K, WEHI
  PAINS test set, ChEMBL sets; python3-rdkit's ChEMBL quinolones) and the
  SMILES-like words of RDKit's Python sources that RDKit parses;
- variants of those written by RDKit: canonical, kekulised, all H explicit,
  random atom orders, stereo, isotopes, charges, ring numbers as %nn / %(n);
- every string up to 4 characters over the SMILES alphabet, and up to 5 over
  a smaller one, plus every one- and two-letter bracket atom;
- random edits (delete, insert, replace) of corpus molecules;
- aromatic edits of corpus molecules (c/n/[nH]/o/s swapped, case changed),
  every aromatic ring of 3-6 atoms over c n [nH] o s C c(=O) c(C) n(C) and
  random ones of 7-8, fused bicyclic systems: the kekulization check.
Asserts zero false rejections (screen says invalid, RDKit parses it), and that
the screen catches a fair share of what RDKit rejects. RDKit is the oracle:
MolFromSmiles with sanitisation, as ersilia models call it."""

import glob
import itertools
import os
import random
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("top_srcdir") or os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "t", "lib"))
from tap import TAP  # noqa: E402

from rdkit import Chem, RDLogger  # noqa: E402

RDLogger.DisableLog("rdApp.*")
t = TAP()
BUILD = os.environ.get("top_builddir") or os.getcwd()
SCREEN = os.path.join(BUILD, "t", "smiles-screen")
rng = random.Random(20)


def rdkit_ok(s):
    try:
        return Chem.MolFromSmiles(s) is not None
    except Exception:
        return False


def screen(lines):
    """The screen's verdict per line: None (accepted) or the reason."""
    data = "".join(x + "\n" for x in lines).encode("utf-8", "surrogateescape")
    out = subprocess.run([SCREEN], input=data, stdout=subprocess.PIPE, check=True).stdout
    res = [None if ln == "ok" else ln.split("\t", 1)[1]
           for ln in out.decode("utf-8", "replace").split("\n")[:-1]]
    assert len(res) == len(lines), "one verdict per line"
    return res


def check_no_false_rejections(name, strings):
    strings = [s for s in dict.fromkeys(strings) if "\n" not in s and "\r" not in s]
    verdicts = screen(strings)
    valid = bad = caught = 0
    wrong = []
    for s, why in zip(strings, verdicts):
        if rdkit_ok(s):
            valid += 1
            if why is not None:
                wrong.append((s, why))
        else:
            bad += 1
            caught += why is not None
    t.ok(not wrong, "%s: no false rejections among %d strings RDKit accepts" % (name, valid))
    for s, why in wrong[:20]:
        t.diag("rejected but valid: %r (%s)" % (s, why))
    return valid, bad, caught


def corpus_files():
    mols = []
    for path in (glob.glob("/usr/share/RDKit/Data/NCI/*.smi")
                 + glob.glob("/usr/share/RDKit/Contrib/FreeWilson/data/*.smi")
                 + glob.glob("/usr/share/RDKit/Contrib/mmpa/data/*.smi")
                 + glob.glob("/usr/share/RDKit/Contrib/Fastcluster/*.smi")
                 + glob.glob("/usr/share/RDKit/Projects/DbCLI/testData/*.smi")):
        with open(path, errors="replace") as f:
            mols += [ln.split()[0] for ln in f if ln.strip() and not ln.startswith("#")]
    for path in glob.glob("/usr/share/RDKit/Data/Pains/test_data/*.csv"):
        with open(path, errors="replace") as f:
            mols += [ln.split(",")[0].strip('"') for ln in f if ln.strip()]
    tsv = "/usr/lib/python3/dist-packages/rdkit/Chem/nbtests/ChEMBL_quinolones.tsv"
    if os.path.exists(tsv):
        with open(tsv) as f:
            for ln in f:
                mols += [c.strip('"') for c in ln.rstrip("\n").split("\t")
                         if len(c) > 6 and rdkit_ok(c.strip('"'))]
    return mols


def source_words():
    """SMILES-looking words in RDKit's Python sources (its docs and tests)."""
    words = set()
    pat = re.compile(r"""['"]([A-Za-z0-9@+\-\[\]\(\)=#$:/\\%.~*]{2,200})['"]""")
    for path in glob.glob("/usr/lib/python3/dist-packages/rdkit/**/*.py", recursive=True):
        with open(path, errors="replace") as f:
            words.update(pat.findall(f.read()))
    return list(words)


def percent_rings(s):
    """Ring-bond digits outside brackets rewritten as %1d or %(n)."""
    out, depth = [], 0
    for ch in s:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if depth == 0 and ch.isdigit():
            out.append("%1" + ch if rng.random() < 0.5 else "%(" + str(100 + int(ch)) + ")")
        else:
            out.append(ch)
    return "".join(out)


def variants(smi):
    m = Chem.MolFromSmiles(smi)
    if m is None:
        return []
    out = [Chem.MolToSmiles(m), Chem.MolToSmiles(m, isomericSmiles=False)]
    try:
        k = Chem.Mol(m)
        Chem.Kekulize(k, clearAromaticFlags=True)
        out.append(Chem.MolToSmiles(k, kekuleSmiles=True))
    except Exception:
        pass
    out.append(Chem.MolToSmiles(Chem.AddHs(m)))
    out.append(Chem.MolToSmiles(m, allHsExplicit=True))
    out += [Chem.MolToSmiles(m, doRandom=True) for _ in range(2)]
    e = Chem.RWMol(m)
    for a in e.GetAtoms():
        r = rng.random()
        if r < 0.1:
            a.SetIsotope(rng.choice([2, 13, 15, 18]))
        elif r < 0.15:
            a.SetAtomMapNum(rng.randint(1, 99))
        elif r < 0.2:
            a.SetFormalCharge(rng.choice([-1, 1]))
    out.append(Chem.MolToSmiles(e, canonical=False))
    out.append(percent_rings(out[0]))
    return out


def edits(smi, n):
    alphabet = "CcNnOo()[]=#123%+-@H.:/\\Sl"
    res = []
    for _ in range(n):
        s = list(smi)
        k = rng.randrange(len(s) + 1)
        op = rng.randrange(3)
        if op == 0 and k < len(s):
            del s[k]
        elif op == 1:
            s.insert(k, rng.choice(alphabet))
        elif k < len(s):
            s[k] = rng.choice(alphabet)
        res.append("".join(s))
    return res


corpus = [s for s in corpus_files() if s]
t.ok(len(corpus) >= 50, "a corpus of RDKit's own molecules (%d)" % len(corpus))
v, b, c = check_no_false_rejections("RDKit data files", corpus)
t.ok(v >= 50, "most of the corpus is valid for RDKit (%d valid, %d not)" % (v, b))

words = source_words()
v, b, c = check_no_false_rejections("words of RDKit's sources", words)
t.diag("source words: %d valid, %d invalid, %d of those caught" % (v, b, c))

valid = [s for s in corpus if rdkit_ok(s)]
sample = rng.sample(valid, min(len(valid), 3000))
var = [x for s in sample for x in variants(s)]
v, b, c = check_no_false_rejections("RDKit-written variants", var)
t.ok(v > 10000, "variants checked: %d" % v)

stereo = ["F/C=C/F", "F/C=C\\F", "C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O", "[C@TH1](F)(Cl)Br",
          "C[C@@]12CC[C@H]3[C@@H](CC=C4C[C@@H](O)CC[C@@]43C)[C@@H]1CC[C@@H]2O",
          "[2H]C([2H])([2H])O", "[13CH3][15NH2]", "[O-][N+](=O)C", "[NH4+].[Cl-]", "[Cu+2]",
          "C1CC2CCC3CCC4CCC5CCC6CCC7CCC8CCC9CCC%10CCC%11CC1C2C3C4C5C6C7C8C9C%10%11"]
check_no_false_rejections("hand-picked stereo/isotope/charge/%nn", stereo)

alpha4 = list("CcNnOo()12=#[].%H+-@:/\\") + ["Cl", "Br"]
short = ["".join(p) for n in range(1, 5) for p in itertools.product(alpha4, repeat=n)]
v, b, c = check_no_false_rejections("every string of up to 4 tokens", short)
t.diag("short strings: %d valid, %d invalid, %d caught" % (v, b, c))
alpha5 = list("CcNO()1=#[].")
short5 = ["".join(p) for p in itertools.product(alpha5, repeat=5)]
v, b, c = check_no_false_rejections("every string of 5 tokens (small alphabet)", short5)
t.ok(c > b / 2, "the screen catches most invalid 5-token strings (%d of %d)" % (c, b))

letters = [chr(x) for x in range(ord("a"), ord("z") + 1)]
syms = [a.upper() + b for a in letters for b in [""] + letters] + \
       [a + b for a in letters for b in [""] + letters]
brackets = ["C[%s]C" % s for s in syms] + ["[%s]" % s for s in syms] + \
           ["[%sH]1cccc1" % s for s in syms] + ["c1cc[%s]cc1" % s for s in syms]
check_no_false_rejections("every one- and two-letter bracket atom", brackets)

# aromatic edits: swap aromatic atoms (c, n, [nH], o, s) and their case,
# the edits that make or break kekulization ("n1cccc1" needs [nH])
AROM_TOKENS = re.compile(r"\[nH\]|[cnosCN]")


def aromatic_edits(smi, n):
    swaps = {"c": ["n", "C", "[nH]"], "n": ["c", "[nH]", "N"], "[nH]": ["n", "c", "o"],
             "o": ["c", "[nH]", "s"], "s": ["c", "o"], "C": ["c"], "N": ["n"]}
    res = []
    for _ in range(n):
        s = smi
        for _ in range(rng.choice([1, 1, 2])):
            toks = [(m.start(), m.end()) for m in AROM_TOKENS.finditer(s)]
            if not toks:
                break
            a, e = rng.choice(toks)
            s = s[:a] + rng.choice(swaps[s[a:e]]) + s[e:]
        res.append(s)
    return res


arom = [s for s in valid if re.search(r"[cn]", s)]
amut = [x for s in rng.sample(arom, min(len(arom), 4000)) for x in aromatic_edits(s, 4)]
RING_ATOMS = ["c", "n", "[nH]", "o", "s", "C", "c(=O)", "c(C)", "n(C)"]
bodies = [b for n in range(2, 6) for b in itertools.product(RING_ATOMS, repeat=n)]
bodies += [[rng.choice(RING_ATOMS) for _ in range(n)] for n in (6, 7) for _ in range(10000)]
rings = [first + "1" + "".join(b) + "1" for b in bodies for first in ("c", "n")]
v, b, c = check_no_false_rejections("aromatic edits of corpus molecules", amut)
t.diag("aromatic edits: %d still valid, %d invalid, %d of those caught" % (v, b, c))
v, b, c = check_no_false_rejections("aromatic rings of 3-8 atoms", rings)
t.diag("aromatic rings: %d valid, %d invalid, %d caught" % (v, b, c))
t.ok(c >= b * 0.5, "the screen catches most rings RDKit cannot kekulize (%d of %d)" % (c, b))
fused = ["c1ccc2%sc2c1" % "".join(p) for p in itertools.product(
    ["c", "n", "[nH]", "o", "C", "c(=O)"], repeat=3)]
fused += ["c1ccc2c(c1)%s2" % "".join(p) for p in itertools.product(
    ["c", "n", "[nH]", "o", "s", "C"], repeat=3)]
check_no_false_rejections("fused aromatic ring systems", fused)

mutants = [x for s in rng.sample(valid, min(len(valid), 3000)) for x in edits(s, 4)]
v, b, c = check_no_false_rejections("random edits of corpus molecules", mutants)
t.diag("edits: %d still valid, %d invalid, %d of those caught (%.0f%%)"
       % (v, b, c, 100.0 * c / max(b, 1)))
t.ok(c >= b * 0.5, "the screen catches at least half of the invalid edits (%d of %d)" % (c, b))

t.done()
