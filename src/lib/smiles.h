/*
 * smiles.h — conservative SMILES screen: rejects only what a model cannot
 * possibly parse, with a plain reason (issue 20, docs/real-models.md §5).
 *
 * Runs in: runners (before a compound-input model is called) and the unit
 * and corpus tests. Called by: runner.c, t/023-smiles.c, t/024-smiles-corpus.t
 * (through t/smiles-screen). Owns: nothing between calls; one temporary
 * allocation per call, freed before it returns. No I/O.
 *
 * DESIGN
 * - Conservative by construction: a rule is applied only where RDKit
 *   (MolFromSmiles with sanitization, what ersilia models use) certainly
 *   fails. Anything unknown or unusual is let through for the model to judge.
 *   t/024 checks that nothing RDKit accepts is rejected (a corpus plus every
 *   short string over the SMILES alphabet).
 * - Checked: the token syntax (organic-subset and bracket atoms with known
 *   element symbols, bonds, ring closures 0-9 / %nn / %(n), branches, dots),
 *   unclosed or doubled ring bonds, the valence of aliphatic C, N, O and F
 *   (unbracketed, or bracketed without a charge: the H count joins the
 *   bonds) when all their bonds have a known order, lower-case (aromatic)
 *   atoms that are in no ring, and kekulization: whether the aromatic atoms
 *   that certainly need a double bond (c; n with two ring bonds, as in
 *   "n1cccc1") can all get one (a matching search, bounded in steps).
 * - Text after the first space or tab is a name or CXSMILES extension and
 *   is not looked at (RDKit parses it separately).
 */
#ifndef MH_SMILES_H
#define MH_SMILES_H

#include <stddef.h>

#define SMILES_WHY_MAX 96 /* room for any reason smiles_screen writes */

/* 0 when s may be a valid SMILES (also when out of memory: the model
 * decides); -1 when it certainly is not, with a one-line reason naming the
 * 1-based character position in why (never quoting more than one
 * character of the input). */
int smiles_screen(const char *s, char *why, size_t whylen);

#endif
