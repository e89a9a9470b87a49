/*
 * smiles.c — conservative SMILES screen (see smiles.h).
 *
 * Runs in: runners and tests. Called by: runner.c (screen_inputs), t/023,
 * t/smiles-screen (t/024). Owns: one allocation per call (atoms, bonds,
 * open rings, branch stack), freed before returning. Shared state: none.
 *
 * DESIGN
 * One left-to-right pass builds the atoms and bonds; the bonds written
 * between neighbouring atoms form a forest (one tree per dot-separated
 * part) and ring-closure bonds are the only other edges. So an atom is in a
 * ring exactly when it lies on the tree path between the two ends of some
 * ring closure; that is how the aromatic-atom rule is checked without a
 * general cycle search. A ring closure that joins two different trees
 * (RDKit allows "C1.C1") makes that shortcut wrong, so the rule is skipped
 * for such inputs. Valence is checked only for C, N, O and F (unbracketed,
 * or bracketed without a charge, counting the H) whose bonds all have a
 * plain order: RDKit's own clean-up turns some 5-valent N (nitro, azide)
 * into charged forms, so N is rejected at 4 bonds or more than 5, and at 5
 * only when none of its bonds is double or triple (the clean-up needs one
 * to move a charge to: C[NH4], CN(C)(C)(C)C). A bracket N or O with a
 * single charge is checked against its isoelectronic neighbour's valence,
 * as RDKit does: N+ at most 4 bonds, O+ 3, O- 1 (C[N+](C)(C)(C)C, C[O-]C);
 * other charges and elements are left to the model. The bonds are also kept in a list for the kekulization check
 * (kekulize(), below), which runs last.
 */
#include "lib/smiles.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B_NONE -1   /* no bond symbol pending */
#define B_DIR 7     /* '/' or '\\': single, but aromatic between aromatic atoms */
#define B_AROM 8    /* aromatic: ':' or unwritten between aromatic atoms */
#define B_UNKNOWN 9 /* '~', dative, disagreeing ring ends: order not used */
#define KEKULE_BUDGET 2000 /* kekulization search steps per input, then let it through */

struct atom {
	int parent; /* tree parent, -1 for a root */
	int depth;
	int tree;
	int pos;       /* 1-based */
	int valence;   /* sum of plain bond orders (+ H count of a bracket atom) */
	char sym;      /* 'C','N','O','F' when checked, else 0 */
	char aromatic; /* lower-case symbol */
	char letter;   /* unbracketed aromatic atom: 'c','n','o',...; else 0 */
	char unknown;  /* has a bond whose order is not used */
	char in_ring;
	char hydrogens; /* bracket atom with an H count (in valence) */
	char bracket_h; /* [cH] or [nH]: its H is in plain */
	int narom;     /* aromatic bonds to aromatic atoms */
	int plain;     /* sum of the other bonds' plain orders (+ bracket H) */
	char multiple; /* has a plain bond of order 2 or more */
	char double_bond; /* has a double or triple bond (valence check) */
	signed char charge; /* bracket N or O: +1 or -1 (valence check) */
	signed char kek; /* kekulization: K_MUST, K_MAY, K_NONE */
	int mate;      /* partner of the double bond being tried, -1 */
};

struct bond {
	int x, y, order;
};

struct ring {
	long num;
	int atom, bond, pos;
};

struct branch {
	int atom, pos;
};

struct parser {
	const char *s;
	int i, n;
	struct atom *a;
	int na;
	struct ring *r;
	int nr;
	struct branch *st;
	int nst;
	struct bond *b;
	int nb;
	int odd;       /* a bond the kekulization check cannot judge */
	long steps;    /* kekulization search steps left */
	int prev;      /* atom the next one bonds to, -1 at a chain start */
	int bond;      /* pending bond order or B_NONE */
	int bond_pos;  /* position of the pending bond symbol */
	char bond_ch;
	int tree;
	int joined;    /* a ring closure joined two trees */
	int after_open, dot_pos;
	char *why;
	size_t whylen;
};

static const char *const ELEMENTS[] = {
	"H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
	"Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga",
	"Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd",
	"Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm",
	"Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os",
	"Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa",
	"U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg",
	"Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og", NULL,
};

static int fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->why, p->whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* The character at i for a message: 'x', or byte 0xNN when not printable. */
static const char *show(const struct parser *p, int i, char *out, size_t n)
{
	unsigned char c = (unsigned char)p->s[i];

	if (c > 32 && c < 127)
		snprintf(out, n, "'%c'", c);
	else
		snprintf(out, n, "byte 0x%02X", c);
	return out;
}

/* 1 when the letters s[0..len) (first one upper-cased) name an element. */
static int element(const char *s, int len)
{
	char sym[3] = {0, 0, 0};

	sym[0] = (char)(s[0] >= 'a' && s[0] <= 'z' ? s[0] - 32 : s[0]);
	if (len == 2)
		sym[1] = s[1];
	for (int k = 0; ELEMENTS[k]; k++)
		if (strcmp(ELEMENTS[k], sym) == 0)
			return 1;
	return 0;
}

static int lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static int upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static int digit(char c)
{
	return c >= '0' && c <= '9';
}

static void add_valence(struct atom *x, int order)
{
	if (order == B_UNKNOWN || order == B_AROM)
		x->unknown = 1;
	else
		x->valence += order == B_DIR ? 1 : order;
	if (order == 2 || order == 3)
		x->double_bond = 1;
}

/* The bond x-y: both atoms' valences, and the bond list. */
static void add_bond(struct parser *p, int x, int y, int order)
{
	add_valence(&p->a[x], order);
	add_valence(&p->a[y], order);
	p->b[p->nb++] = (struct bond){x, y, order};
}

/* A new atom at position pos; bonded to p->prev with the pending bond. */
static int new_atom(struct parser *p, int pos, char sym, int aromatic)
{
	struct atom *x = &p->a[p->na];

	if (p->prev < 0 && p->bond != B_NONE)
		return fail(p, "bond '%c' at position %d has no atom before it", p->bond_ch,
			    p->bond_pos);
	memset(x, 0, sizeof *x);
	x->parent = p->prev;
	x->depth = p->prev >= 0 ? p->a[p->prev].depth + 1 : 0;
	x->tree = p->tree;
	x->pos = pos;
	x->sym = sym;
	x->aromatic = (char)aromatic;
	if (p->prev >= 0) {
		/* implicit bond: aromatic between two aromatic atoms, else single */
		int order = p->bond != B_NONE ? p->bond :
			    aromatic && p->a[p->prev].aromatic ? B_AROM : 1;
		add_bond(p, p->na, p->prev, order);
	}
	p->prev = p->na++;
	p->bond = B_NONE;
	p->after_open = 0;
	p->dot_pos = 0;
	return 0;
}

/* Unbracketed atom at p->i: B, Br, C, Cl, N, O, P, S, F, I, b, c, n, o,
 * p, s or '*'. 1 when one was read, 0 when p->i is not one. */
static int organic(struct parser *p)
{
	const char *c = p->s + p->i;
	int pos = p->i + 1, len = 1;
	char sym = 0;
	int arom = 0;

	if ((c[0] == 'C' && c[1] == 'l') || (c[0] == 'B' && c[1] == 'r'))
		len = 2;
	else if (strchr("CNOF", c[0]))
		sym = c[0];
	else if (c[0] && strchr("bcnops", c[0]))
		arom = 1;
	else if (!c[0] || !strchr("BPSI*", c[0]))
		return 0;
	p->i += len;
	if (new_atom(p, pos, sym, arom) < 0)
		return -1;
	p->a[p->na - 1].letter = (char)(arom ? c[0] : 0);
	return 1;
}

/* A bracket atom C, N, O or F without a charge, or N or O with a charge of
 * +1 or -1 ("+", "+1", "-", "-1"): its H count joins its valence, so
 * finish() checks it like an unbracketed one ([CH5], C[OH2], [NH5+]).
 * An aromatic [cH] or [nH] without a charge is judged like an unbracketed
 * c or n by the kekulization check, its hydrogen counted as a bond. Charged atoms and chirality classes (@TH1, @SP1, ...)
 * are left alone, and so is an aromatic one without an H count ([n]). */
static void bracket_hydrogens(struct parser *p, int sym, int symlen, int rest, int end)
{
	const char *s = p->s;
	struct atom *x = &p->a[p->na - 1];
	int h = 0, given = 0, charge = 0;

	if (symlen != 1 || !strchr("CNOFcn", s[sym]))
		return;
	for (int i = rest; i < end && s[i] != ':'; i++) {
		if (s[i] == '+' || s[i] == '-') {
			int one = !(s[i + 1] == '+' || s[i + 1] == '-' || (digit(s[i + 1]) && s[i + 1] != '1') ||
				    (s[i + 1] == '1' && digit(s[i + 2])));
			if (charge || !one || !strchr("NO", s[sym]))
				return;
			charge = s[i] == '+' ? 1 : -1;
			continue;
		}
		if (s[i] == '@' && strchr("TASO", s[i + 1]))
			return;
		if (s[i] != 'H')
			continue;
		given = 1;
		for (h = digit(s[i + 1]) ? 0 : 1; digit(s[i + 1]) && h < 100; i++)
			h = h * 10 + (s[i + 1] - '0');
	}
	if (lower(s[sym])) {
		if (given && h == 1 && (s[sym] == 'c' || s[sym] == 'n')) {
			x->letter = s[sym];
			x->plain = 1;
			x->bracket_h = 1;
		}
		return;
	}
	if (charge == -1 && s[sym] == 'N')
		return; /* only N+ */
	x->sym = s[sym];
	x->charge = (signed char)charge;
	x->valence += h;
	x->hydrogens = (char)(h > 0);
}

/* Bracket atom [isotope? symbol rest] at p->i; symbol is '*', '#n', an
 * element or its lower-case (aromatic) form. The rest (chirality, H count,
 * charge, class) is only checked for its characters. */
static int bracket(struct parser *p)
{
	const char *s = p->s;
	int open = p->i + 1, i = p->i + 1, arom = 0, sym, rest;
	char ch[16];

	while (digit(s[i]))
		i++;
	sym = i;
	if (s[i] == '*') {
		i++;
	} else if (s[i] == '#' && digit(s[i + 1])) {
		for (i++; digit(s[i]); i++)
			;
	} else if ((upper(s[i]) || lower(s[i])) && lower(s[i + 1]) && element(s + i, 2)) {
		arom = lower(s[i]);
		i += 2;
	} else if ((upper(s[i]) || lower(s[i])) && element(s + i, 1)) {
		arom = lower(s[i]);
		i += 1;
	} else if (s[i] == ']' || s[i] == '\0') {
		return fail(p, s[i] ? "empty bracket atom at position %d" :
			    "unclosed bracket '[' at position %d", open);
	} else if (upper(s[i]) || lower(s[i])) {
		return fail(p, "unknown element '%.*s' at position %d", lower(s[i + 1]) ? 2 : 1,
			    s + i, i + 1);
	} else {
		return fail(p, "unexpected character %s in bracket atom at position %d",
			    show(p, i, ch, sizeof ch), i + 1);
	}
	for (rest = i; s[i] && s[i] != ']'; i++)
		if (!(upper(s[i]) || lower(s[i]) || digit(s[i]) || strchr("@+-:", s[i])))
			return fail(p, s[i] == ' ' || s[i] == '\t' || s[i] == '[' ?
				    "unclosed bracket '[' at position %d" :
				    "unexpected character in bracket atom at position %d",
				    s[i] == ' ' || s[i] == '\t' || s[i] == '[' ? open : i + 1);
	if (!s[i])
		return fail(p, "unclosed bracket '[' at position %d", open);
	p->i = i + 1;
	if (new_atom(p, open, 0, arom) < 0)
		return -1;
	bracket_hydrogens(p, sym, rest - sym, rest, i);
	return 0;
}

/* Ring bond number at p->i: a digit, %nn or %(n). -1 when malformed. */
static long ring_number(struct parser *p, int *pos)
{
	const char *s = p->s;
	long num = 0;
	int i = p->i;

	*pos = i + 1;
	if (digit(s[i])) {
		p->i = i + 1;
		return s[i] - '0';
	}
	if (digit(s[i + 1]) && digit(s[i + 2])) {
		p->i = i + 3;
		return (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
	}
	if (s[i + 1] == '(' && digit(s[i + 2])) {
		for (i += 2; digit(s[i]) && num < 1000000; i++)
			num = num * 10 + (s[i] - '0');
		if (s[i] == ')') {
			p->i = i + 1;
			return num;
		}
	}
	fail(p, "'%%' at position %d is not followed by a ring number", *pos);
	return -1;
}

/* 1 when atoms x and y are tree neighbours. */
static int tree_bonded(const struct parser *p, int x, int y)
{
	return p->a[x].parent == y || p->a[y].parent == x;
}

/* Atoms x and y (same tree) are joined by a ring closure: every atom on
 * the tree path between them is in a ring. */
static void mark_ring(struct parser *p, int x, int y)
{
	while (x != y) {
		if (p->a[x].depth >= p->a[y].depth) {
			p->a[x].in_ring = 1;
			x = p->a[x].parent;
		} else {
			p->a[y].in_ring = 1;
			y = p->a[y].parent;
		}
	}
	p->a[x].in_ring = 1;
}

static int ring_bond(struct parser *p)
{
	int pos, k, order;
	long num = ring_number(p, &pos);

	if (num < 0)
		return -1;
	if (p->prev < 0)
		return fail(p, "ring bond %ld at position %d has no atom before it", num, pos);
	for (k = 0; k < p->nr && p->r[k].num != num; k++)
		;
	if (k == p->nr) {
		p->r[p->nr++] = (struct ring){num, p->prev, p->bond, pos};
		p->bond = B_NONE;
		return 0;
	}
	if (p->r[k].atom == p->prev)
		return fail(p, "ring bond %ld at position %d closes on its own atom", num, pos);
	if (tree_bonded(p, p->r[k].atom, p->prev))
		return fail(p, "ring bond %ld at position %d doubles an existing bond", num, pos);
	order = p->bond != B_NONE ? p->bond : p->r[k].bond;
	if (order == B_NONE)
		order = p->a[p->prev].aromatic && p->a[p->r[k].atom].aromatic ? B_AROM : 1;
	if (p->bond != B_NONE && p->r[k].bond != B_NONE && p->bond != p->r[k].bond)
		order = B_UNKNOWN; /* disagreeing ends: leave it to the model */
	add_bond(p, p->prev, p->r[k].atom, order);
	if (p->a[p->prev].tree != p->a[p->r[k].atom].tree)
		p->joined = 1;
	else
		mark_ring(p, p->prev, p->r[k].atom);
	p->r[k] = p->r[--p->nr];
	p->bond = B_NONE;
	return 0;
}

/* Bond symbol at p->i (- = # $ : / \\ ~ and the datives -> <-). 1 when
 * one was read, 0 when p->i is not one. */
static int bond_symbol(struct parser *p)
{
	const char *c = p->s + p->i;
	int pos = p->i + 1, len = 1, order;

	switch (c[0]) {
	case '-': order = c[1] == '>' ? B_UNKNOWN : 1; len = c[1] == '>' ? 2 : 1; break;
	case '<':
		if (c[1] != '-')
			return 0;
		order = B_UNKNOWN;
		len = 2;
		break;
	case '=': order = 2; break;
	case '#': order = 3; break;
	case '$': order = 4; break;
	case '/': order = B_DIR; break;
	case '\\': order = B_DIR; len = c[1] == '\\' ? 2 : 1; break; /* RDKit reads a doubled one as one bond */
	case ':': order = B_AROM; break;
	case '~': order = B_UNKNOWN; break;
	default: return 0;
	}
	if (p->prev < 0)
		return fail(p, "bond '%c' at position %d has no atom before it", c[0], pos);
	if (p->bond != B_NONE)
		return fail(p, "two bonds in a row at position %d", pos);
	p->bond = order;
	p->bond_ch = c[0];
	p->bond_pos = pos;
	p->i += len;
	return 1;
}

/* '(' ')' or '.' at p->i. */
static int punct(struct parser *p)
{
	char c = p->s[p->i];
	int pos = ++p->i;

	if (c == '(') {
		if (p->prev < 0 || p->bond != B_NONE)
			return fail(p, "branch '(' at position %d does not follow an atom", pos);
		p->st[p->nst++] = (struct branch){p->prev, pos};
		p->after_open = 1;
		return 0;
	}
	if (c == ')') {
		if (p->nst == 0)
			return fail(p, "unmatched ')' at position %d", pos);
		if (p->after_open)
			return fail(p, "empty branch at position %d", pos);
		if (p->bond != B_NONE || p->dot_pos)
			return fail(p, "'%c' at position %d is not followed by an atom",
				    p->bond != B_NONE ? p->bond_ch : '.',
				    p->bond != B_NONE ? p->bond_pos : p->dot_pos);
		p->prev = p->st[--p->nst].atom;
		return 0;
	}
	if (p->prev < 0 || p->after_open || p->bond != B_NONE)
		return fail(p, "misplaced '.' at position %d", pos);
	p->prev = -1;
	p->tree++;
	p->dot_pos = pos;
	return 0;
}

static int token(struct parser *p)
{
	char c = p->s[p->i], ch[16];
	int rc;

	if (c == '[')
		return bracket(p);
	if (digit(c) || c == '%')
		return ring_bond(p);
	if (c == '(' || c == ')' || c == '.')
		return punct(p);
	if ((rc = organic(p)) != 0 || (rc = bond_symbol(p)) != 0)
		return rc < 0 ? -1 : 0;
	return fail(p, "unexpected character %s at position %d", show(p, p->i, ch, sizeof ch),
		    p->i + 1);
}

/*
 * Kekulization: RDKit must give every aromatic atom that needs one exactly
 * one double bond among its aromatic bonds, two atoms per bond (a matching
 * in the graph of aromatic bonds). Only atoms whose need is certain are
 * K_MUST: an unbracketed c (valence 4) with no other double bond and room
 * for one, an unbracketed n with two aromatic bonds and nothing else
 * (pyridine type: "n1cccc1" fails, [nH] is needed). K_NONE: an unbracketed
 * c whose four bonds are already there (an exocyclic =O), an n with three
 * single bonds, an o or s with two. [cH] and [nH] count their hydrogen as
 * a single bond ([nH] in a ring is K_NONE, [cH] with two ring bonds K_MUST). Everything else (s, p, b,
 * bracket atoms, unusual counts) is K_MAY: it may take a double bond or
 * not. An input is rejected only when no matching covers every K_MUST atom
 * of some ring system; a search that runs out of steps lets it through.
 */
enum { K_NONE, K_MAY, K_MUST };

struct kek {
	int *off, *adj, *comp;
	int *memb; /* atoms grouped by ring system, in DFS order */
	int nmemb;
};

/* Aromatic/plain bond counts per atom; 0 when a bond cannot be judged. */
static int kek_count(struct parser *p)
{
	for (int e = 0; e < p->nb; e++) {
		struct bond *b = &p->b[e];
		struct atom *x = &p->a[b->x], *y = &p->a[b->y];

		if (b->order == B_AROM && x->aromatic && y->aromatic) {
			x->narom++;
			y->narom++;
		} else if (b->order == B_AROM || b->order == B_UNKNOWN ||
			   (b->order == B_DIR && x->aromatic && y->aromatic)) {
			if (x->aromatic || y->aromatic)
				return 0; /* n/c: RDKit may read it as aromatic */
		} else if (b->order == B_DIR) {
			x->plain++;
			y->plain++;
		} else {
			x->plain += b->order;
			y->plain += b->order;
			x->multiple |= (char)(b->order >= 2);
			y->multiple |= (char)(b->order >= 2);
		}
	}
	return 1;
}

static int kek_class(const struct atom *x)
{
	int n = x->narom + x->plain;

	if (!x->aromatic || x->narom == 0)
		return K_NONE; /* RDKit leaves out aromatic atoms without aromatic bonds: c1CC1 */
	if (x->letter == 'c' && x->bracket_h && n != 3)
		return K_MAY;
	if (x->letter == 'c' && n >= 4)
		return K_NONE; /* its four bonds are there: c1ccccc1=O */
	if (x->letter == 'c')
		return !x->multiple ? K_MUST : K_MAY;
	if (x->letter == 'n' && x->narom == 2 && x->plain == 0)
		return K_MUST;
	if (x->letter == 'n' && !x->multiple && n == 3)
		return K_NONE;
	if ((x->letter == 'o' || x->letter == 's') && x->narom == 2 && x->plain == 0)
		return K_NONE; /* valence 2: c1ccocc1 and c1ccscc1 fail */
	return K_MAY;
}

/* Adjacency (CSR) over the usable aromatic bonds and ring-system labels. */
static void kek_graph(struct parser *p, struct kek *k)
{
	int *fill = k->comp, stack_top;

	for (int e = 0; e < p->nb; e++) {
		const struct bond *b = &p->b[e];
		if (b->order == B_AROM && p->a[b->x].kek && p->a[b->y].kek) {
			k->off[b->x + 1]++;
			k->off[b->y + 1]++;
		}
	}
	for (int u = 0; u < p->na; u++) {
		k->off[u + 1] += k->off[u];
		fill[u] = k->off[u];
	}
	for (int e = 0; e < p->nb; e++) {
		const struct bond *b = &p->b[e];
		if (b->order == B_AROM && p->a[b->x].kek && p->a[b->y].kek) {
			k->adj[fill[b->x]++] = b->y;
			k->adj[fill[b->y]++] = b->x;
		}
	}
	/* label ring systems; p->a[].mate serves as the DFS stack link */
	for (int u = 0; u < p->na; u++)
		k->comp[u] = -1;
	for (int r = 0; r < p->na; r++) {
		if (!p->a[r].kek || k->comp[r] >= 0)
			continue;
		k->comp[r] = r;
		p->a[r].mate = -2;
		for (stack_top = r; stack_top != -2;) {
			int u = stack_top;
			stack_top = p->a[u].mate;
			k->memb[k->nmemb++] = u;
			for (int e = k->off[u]; e < k->off[u + 1]; e++) {
				int v = k->adj[e];
				if (k->comp[v] < 0) {
					k->comp[v] = r;
					p->a[v].mate = stack_top;
					stack_top = v;
				}
			}
		}
	}
	for (int u = 0; u < p->na; u++)
		p->a[u].mate = -1;
}

/* 1 when every K_MUST atom of the ring system memb[0..n) can get a double
 * bond (or the steps ran out), 0 when certainly not. Picks the atom with
 * the fewest free partners first. */
static int kek_search(struct parser *p, const struct kek *k, const int *memb, int nm)
{
	int best = -1, bestn = 1 << 30;

	if (--p->steps < 0)
		return 1;
	for (int m = 0; m < nm; m++) {
		int u = memb[m], n = 0;
		if (p->a[u].kek != K_MUST || p->a[u].mate >= 0)
			continue;
		for (int e = k->off[u]; e < k->off[u + 1]; e++)
			n += p->a[k->adj[e]].mate < 0;
		if (n == 0)
			return 0;
		if (n < bestn) {
			best = u;
			bestn = n;
		}
	}
	if (best < 0)
		return 1;
	for (int e = k->off[best]; e < k->off[best + 1]; e++) {
		int v = k->adj[e];
		if (p->a[v].mate >= 0)
			continue;
		p->a[best].mate = v;
		p->a[v].mate = best;
		if (kek_search(p, k, memb, nm))
			return 1;
		p->a[best].mate = p->a[v].mate = -1;
	}
	return 0;
}

static int kekulize(struct parser *p)
{
	struct kek k;
	int rc = 0, any = 0;

	if (!kek_count(p))
		return 0;
	for (int u = 0; u < p->na; u++) {
		p->a[u].kek = (signed char)kek_class(&p->a[u]);
		any |= p->a[u].kek == K_MUST;
	}
	if (!any)
		return 0;
	k.off = calloc((size_t)(3 * p->na + 1 + 2 * p->nb), sizeof(int));
	if (!k.off)
		return 0;
	k.comp = k.off + p->na + 1;
	k.memb = k.comp + p->na;
	k.adj = k.memb + p->na;
	k.nmemb = 0;
	kek_graph(p, &k);
	p->steps = KEKULE_BUDGET;
	for (int m = 0, end; m < k.nmemb && rc == 0; m = end) {
		int c = k.comp[k.memb[m]];
		for (end = m + 1; end < k.nmemb && k.comp[k.memb[end]] == c; end++)
			;
		if (!kek_search(p, &k, k.memb + m, end - m))
			rc = fail(p, "aromatic ring at position %d cannot be kekulized "
				  "(no alternating double bonds fit)", p->a[c].pos);
	}
	free(k.off);
	return rc;
}

/* Everything read: what is still open, then valences and aromatic atoms. */
static int finish(struct parser *p)
{
	static const int max[] = {['C'] = 4, ['N'] = 5, ['O'] = 2, ['F'] = 1};
	int first = 0;

	if (p->bond != B_NONE || p->dot_pos)
		return fail(p, "'%c' at position %d is not followed by an atom",
			    p->bond != B_NONE ? p->bond_ch : '.',
			    p->bond != B_NONE ? p->bond_pos : p->dot_pos);
	if (p->nst > 0)
		return fail(p, "unclosed branch '(' at position %d", p->st[p->nst - 1].pos);
	for (int k = 1; k < p->nr; k++)
		if (p->r[k].pos < p->r[first].pos)
			first = k;
	if (p->nr > 0)
		return fail(p, "unclosed ring %ld at position %d", p->r[first].num, p->r[first].pos);
	for (int k = 0; k < p->na; k++) {
		const struct atom *x = &p->a[k];
		if (!x->sym || x->unknown)
			continue;
		if (x->charge) {
			int most = x->sym == 'N' ? 4 : x->charge > 0 ? 3 : 1;

			if (x->valence > most)
				return fail(p, "atom %c%c at position %d has %d bonds%s (at most %d)", x->sym,
					    x->charge > 0 ? '+' : '-', x->pos, x->valence,
					    x->hydrogens ? " with its hydrogens" : "", most);
			continue;
		}
		if (x->valence > max[(int)x->sym] || (x->sym == 'N' && x->valence == 4) ||
		    (x->sym == 'N' && x->valence == 5 && !x->double_bond))
			return fail(p, "atom %c at position %d has %d bonds%s (at most %d)", x->sym,
				    x->pos, x->valence, x->hydrogens ? " with its hydrogens" : "",
				    max[(int)x->sym] == 5 ? 3 : max[(int)x->sym]);
	}
	for (int k = 0; !p->joined && k < p->na; k++)
		if (p->a[k].aromatic && !p->a[k].in_ring)
			return fail(p, "aromatic atom at position %d is not in a ring", p->a[k].pos);
	return kekulize(p);
}

int smiles_screen(const char *s, char *why, size_t whylen)
{
	struct parser p = {.s = s, .prev = -1, .bond = B_NONE, .why = why, .whylen = whylen};
	void *mem;
	int rc = 0, start = 0;

	if (whylen)
		why[0] = '\0';
	while (s[start] == ' ' || s[start] == '\t')
		start++;
	p.i = start;
	for (p.n = start; s[p.n] && s[p.n] != ' ' && s[p.n] != '\t'; p.n++)
		;
	mem = calloc((size_t)p.n + 1, sizeof(struct atom) + sizeof(struct ring) +
		     sizeof(struct branch) + sizeof(struct bond));
	if (!mem)
		return 0;
	p.a = mem;
	p.r = (struct ring *)(p.a + p.n + 1);
	p.st = (struct branch *)(p.r + p.n + 1);
	p.b = (struct bond *)(p.st + p.n + 1);
	while (rc == 0 && p.i < p.n)
		rc = token(&p);
	if (rc == 0)
		rc = finish(&p);
	free(mem);
	return rc;
}
