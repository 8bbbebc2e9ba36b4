// regbench_internal.h — RegBench's automaton pieces, exposed for tests/test_regbench.c only.
// Depends on task.h, rng.h.
#pragma once
#include "task.h"

enum { RB_MAX_STATES = 12 };

// A deterministic automaton over token ids 1..18; every state accepting, start state 0.
// next[s][tok] = target state or -1 (no edge; a partial DFA's implicit dead sink).
typedef struct {
    int n;
    int8_t next[RB_MAX_STATES][RB_VOCAB];
} Pfa;

// Samples a PFA as tasks.md RegBench steps 1-2 (no minimisation).
void rb_pfa_sample(Pfa *p, Rng *r);
// Removes unreachable states and merges equivalent ones (Moore partition refinement); states are
// renumbered in BFS order from the start, so the start stays 0. Same language as p.
void rb_pfa_minimise(const Pfa *p, Pfa *out);
// 1 if every prefix of tok[0..n) has a path from the start (all states accept), else 0.
int rb_pfa_accepts(const Pfa *p, const int32_t *tok, int n);
// Bitmask (bit v = token id v) of the letters leaving state s.
uint32_t rb_pfa_out(const Pfa *p, int s);
// regbench_generate, also returning each instance's sampled PFA and its minimised form (either
// array [n] may be NULL).
int regbench_generate_ex(Split *s, int n, Rng *r, Pfa *orig, Pfa *min);
