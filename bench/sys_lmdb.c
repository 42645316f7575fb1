/* placeholder, replaced by the harness */
#include "common.h"
int main(void) { bench_unsupported("harness not written yet"); return 3; }
