// placeholder
#include "common.h"
int main() { bench_unsupported("harness not written yet"); return 3; }
