/* 023-smiles.c — unit test of the SMILES screen (lib/smiles.c): valid inputs pass,
 * certainly invalid ones are rejected with the exact reason. */
#include "lib/smiles.h"
#include "t/lib/tap.h"

static void valid(const char *s)
{
	char why[SMILES_WHY_MAX];
	int rc = smiles_screen(s, why, sizeof why);

	if (!ok(rc == 0, "accepted: %s", s))
		printf("#   reason: %s\n", why);
}

static void invalid(const char *s, const char *reason)
{
	char why[SMILES_WHY_MAX] = "";
	int rc = smiles_screen(s, why, sizeof why);

	is_int(rc, -1, "rejected: %s", s);
	is_str(why, reason, "reason for %s", s);
}

int main(void)
{
	static const char *const good[] = {
		"CCO", "c1ccccc1", "C1CC1", "C%10CC%10", "C%(123)CC%(123)", "[13CH4]",
		"[C@@H](F)(Cl)Br", "[C@TH1](F)(Cl)Br", "F/C=C/F", "F\\C=C\\F", "[Na+].[Cl-]",
		"[nH]1cccc1", "CN(=O)=O", "N=N#N", "C->[Fe]", "[Fe]<-C", "C~C", "C$C", "*C",
		"[2*]", "[#6]", "C(C)1CC1", "C1.C1", "CCO ethanol", "CCO |$a;b;c$|", "  CCO",
		"c1ccccc1:C", "C:1CC1", "OCl(=O)(=O)=O", "P(C)(C)(C)(C)C", "C=C=C=C",
		"[CH3:1]C", "[Fe++]", "[U]", "[se]1cccc1", "C=1CC-1", "", "[H][H]",
		"C(C)(C)", "CC(C)(C)C", "O=C=O", "C#N", "[O-][N+](=O)c1ccccc1",
		"c1ccc2ccccc2c1", "C12CC2C1", "Brc1ccccc1", "Clc1ccccc1I",
		"c1cc2c(cc1)cccc2", "C1CCCCC1.c1ccccc1", "C\\\\C",
		/* kekulization and bracket valences that RDKit accepts */
		"c1ccsc1", "c1ccoc1", "Cn1cccc1", "O=c1cc[nH]cc1", "c1cc[nH]c1", "c1CC1",
		"c1cccCC1", "c1ccccccc1", "c1ccc1", "n1ccccc1", "c1:c:c:c:c:c1", "c1cc-2ccc1-2",
		"O=n1ccccc1", "c1cc[cH2]c1", "[cH]1[cH][cH][cH][cH][cH]1", "c1ccc2[nH]ccc2c1",
		"n1(n/ccc1)C", "c1cc2ccc3ccc1c23", "c1ccn2cccc2c1", "[CH4]", "[OH2]", "[NH3]",
		"C[CH2]C", "[NH4+]", "C[N](=O)=O", "[C@TH1](C)(C)(C)C",
		/* charged N and O within their isoelectronic neighbour's valence;
		 * 5-valent N with a double or triple bond (RDKit's clean-up) */
		"[O-]C", "C[OH+]C", "[OH3+]", "C[N+](=O)[O-]", "[NH3+]C", "C[N+]C", "[N+2]",
		"[O-2]", "C[N-]C", "CN(=O)=O", "C=N#N", "[N++]", "C[N+1](C)(C)C",
	};
	for (size_t k = 0; k < sizeof good / sizeof *good; k++)
		valid(good[k]);

	invalid("C1CCCCC", "unclosed ring 1 at position 2");
	invalid("CC1CC2CC", "unclosed ring 1 at position 3");
	invalid("CC%12CC", "unclosed ring 12 at position 3");
	invalid("C11", "ring bond 1 at position 3 closes on its own atom");
	invalid("C1C1", "ring bond 1 at position 4 doubles an existing bond");
	invalid("CC(C", "unclosed branch '(' at position 3");
	invalid("CC)C", "unmatched ')' at position 3");
	invalid("C()C", "empty branch at position 3");
	invalid("(C)C", "branch '(' at position 1 does not follow an atom");
	invalid("C=(C)C", "branch '(' at position 3 does not follow an atom");
	invalid("CC=", "'=' at position 3 is not followed by an atom");
	invalid("=CC", "bond '=' at position 1 has no atom before it");
	invalid("C==C", "two bonds in a row at position 3");
	invalid("C.", "'.' at position 2 is not followed by an atom");
	invalid(".C", "misplaced '.' at position 1");
	invalid("C..C", "misplaced '.' at position 3");
	invalid("C(.C)C", "misplaced '.' at position 3");
	invalid("C[CH3", "unclosed bracket '[' at position 2");
	invalid("C[CH3 x]", "unclosed bracket '[' at position 2");
	invalid("C[]C", "empty bracket atom at position 2");
	invalid("C[Xx]C", "unknown element 'Xx' at position 3");
	invalid("C[C=]C", "unexpected character in bracket atom at position 4");
	invalid("CXC", "unexpected character 'X' at position 2");
	invalid("CC?", "unexpected character '?' at position 3");
	invalid("C\x01", "unexpected character byte 0x01 at position 2");
	invalid("CC%1C", "'%' at position 3 is not followed by a ring number");
	invalid("se1cccc1", "unexpected character 'e' at position 2");
	invalid("C(C)(C)(C)(C)C", "atom C at position 1 has 5 bonds (at most 4)");
	invalid("CC(=O)=C", "atom C at position 2 has 5 bonds (at most 4)");
	invalid("CN(C)(C)C", "atom N at position 2 has 4 bonds (at most 3)");
	invalid("O(C)(C)C", "atom O at position 1 has 3 bonds (at most 2)");
	invalid("FC(F)=F", "atom F at position 7 has 2 bonds (at most 1)");
	invalid("C#C#C", "atom C at position 3 has 6 bonds (at most 4)");
	invalid("cc", "aromatic atom at position 1 is not in a ring");
	invalid("Cc1ccccc1c", "aromatic atom at position 10 is not in a ring");
	invalid("C[c]C", "aromatic atom at position 2 is not in a ring");
#define KEK " cannot be kekulized (no alternating double bonds fit)"
	invalid("n1cccc1", "aromatic ring at position 1" KEK);
	invalid("c1cccc1", "aromatic ring at position 1" KEK);
	invalid("c1ccccc1=O", "aromatic ring at position 1" KEK);
	invalid("c1cc[nH]cc1", "aromatic ring at position 1" KEK);
	invalid("c1ccscc1", "aromatic ring at position 1" KEK);
	invalid("Cc1cccc1", "aromatic ring at position 2" KEK);
	invalid("c1ccCC1", "aromatic ring at position 1" KEK);
	invalid("c1ccccc1.n1cccc1", "aromatic ring at position 10" KEK);
	invalid("[nH]1cc[nH]c1", "aromatic ring at position 12" KEK);
	invalid("[CH5]", "atom C at position 1 has 5 bonds with its hydrogens (at most 4)");
	invalid("C[C@@H](C)(C)C", "atom C at position 2 has 5 bonds with its hydrogens (at most 4)");
	invalid("C[OH2]", "atom O at position 2 has 3 bonds with its hydrogens (at most 2)");
	invalid("[NH4]", "atom N at position 1 has 4 bonds with its hydrogens (at most 3)");
	invalid("[FH2]", "atom F at position 1 has 2 bonds with its hydrogens (at most 1)");
	invalid("C[NH4]", "atom N at position 2 has 5 bonds with its hydrogens (at most 3)");
	invalid("CN(C)(C)(C)C", "atom N at position 2 has 5 bonds (at most 3)");
	invalid("C[N+](C)(C)(C)C", "atom N+ at position 2 has 5 bonds (at most 4)");
	invalid("C[N+1](C)(C)(C)C", "atom N+ at position 2 has 5 bonds (at most 4)");
	invalid("[NH5+]", "atom N+ at position 1 has 5 bonds with its hydrogens (at most 4)");
	invalid("C[O-]C", "atom O- at position 2 has 2 bonds (at most 1)");
	invalid("C[OH2+]C", "atom O+ at position 2 has 4 bonds with its hydrogens (at most 3)");
	/* a reason never holds more than one character of the input */
	{
		char why[SMILES_WHY_MAX];
		smiles_screen("C(C)(C)(C)(C)Csecret", why, sizeof why);
		ok(!strstr(why, "secret"), "reason does not quote the input: %s", why);
	}
	return done_testing();
}
