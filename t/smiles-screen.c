/* smiles-screen.c — reads SMILES lines on stdin, prints "ok" or "bad<TAB>reason"
 * per line (the driver of the corpus test t/024-smiles-corpus.t and of
 * bench/invalid-inputs; lib/smiles.c). */
#include "lib/smiles.h"

#include <stdio.h>
#include <string.h>

int main(void)
{
	static char line[65536];
	char why[SMILES_WHY_MAX];

	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (smiles_screen(line, why, sizeof why) == 0)
			puts("ok");
		else
			printf("bad\t%s\n", why);
	}
	return 0;
}
