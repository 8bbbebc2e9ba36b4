// gen_print.h — prints generated examples for `recallbench gen`: human-readable or JSON lines.
// Depends on task.h.
#pragma once
#include <stdio.h>
#include "task.h"

// The first n examples of s (fewer if s has fewer), readable: MQAR shows the key:value context and
// the rest with queries as [q:key->value]; RegBench shows letters a..r and '|' with each position's
// truth support, e.g. "c(ab)" = input c, next letter a or b.
void gen_print_human(FILE *f, const Split *s, int task, int n);
// One JSON object per example, unpadded: {"task": "mqar"|"regbench", "inputs": [...],
// "targets": [...]} (-1 = not in the loss); RegBench adds "allowed": [[letter ids], ...].
void gen_print_jsonl(FILE *f, const Split *s, int task, int n);
