// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The YAML config loader and the cross-resource checks, as sluicectl
 * apply/analyze and sluice-control's apply run them: parse the input into
 * a config, check it, and for an input that parsed, make sure the stored
 * JSON form loads back (the control plane's restart path).
 */
#include <stdint.h>
#include <stdlib.h>

#include "lib/config/config.h"
#include "lib/config/config_check.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sl_config *c = sl_config_new(), *back = sl_config_new();
	struct sl_diags d = {};
	json_t *j;

	if (!c || !back)
		abort();
	if (sl_config_parse(c, "fuzz.yaml", (const char *)data, size, &d) == 0) {
		sl_config_check(c, &d);
		j = sl_config_to_json(c);
		/* what was accepted once must load again, unchanged */
		if (!j || sl_config_from_json(back, "config.json", j, &d) ||
		    sl_config_count(back) != sl_config_count(c))
			abort();
		json_decref(j);
	} else if (sl_config_count(c) != 0) {
		abort();   /* a refused input adds nothing */
	}
	sl_diags_free(&d);
	sl_config_free(c);
	sl_config_free(back);
	return 0;
}
