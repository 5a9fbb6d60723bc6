/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* sluice-control: under construction (issue 5); see docs/control-plane.md. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "sluice-control: not built yet (issue 5)\n");
	return 2;
}
