# libFuzzer harnesses (tests/fuzz/README.md), included by the top-level Makefile.
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ=name]   fuzz each harness (or one) in turn
#   make fuzz FUZZ=name CRASH=path            run one harness on one input
#   make fuzz-bins                            build them only
#
# The project's sources are compiled again with clang, coverage and
# ASan+UBSan into $(BUILD)/fuzz/obj; a harness that #includes a source file
# (to reach its static functions) links everything else. Inputs found while
# fuzzing go to $(BUILD)/fuzz/corpus/NAME (the committed seeds in
# tests/fuzz/corpus/NAME are only read).

FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_BINS    := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_NAMES))
# clang has no -Wformat-truncation; the rest as for the normal build
FUZZ_CFLAGS  := -std=gnu11 $(WARN) -D_GNU_SOURCE -MMD -MP -Iheaders -Iuserspace -I$(BUILD) \
	-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
FUZZ_SRCS    := $(LIB_SRCS) $(CONTROL_SRCS) $(wildcard userspace/agent/sync*.c)

# the source file a harness #includes, if any
FUZZ_INCLUDES = $(shell sed -n 's/^\#include "\([a-z/]*\/[a-z_0-9]*\.c\)".*/userspace\/\1/p' \
	tests/fuzz/fuzz_$(1).c)

$(FUZZ_DIR)/obj/%.o: %.c | $(BPF_SKELS) $(DEPS_STAMP)
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

define fuzz_link
$(FUZZ_DIR)/fuzz_$(1): $(FUZZ_DIR)/obj/tests/fuzz/fuzz_$(1).o \
		$(call obj,$(filter-out $(call FUZZ_INCLUDES,$(1)),$(FUZZ_SRCS)),fuzz/obj)
	$$(call msg,LD-FUZZ,$$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $$^ -o $$@ $(LDLIBS) $(CURL_LIBS)
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call fuzz_link,$(n))))

fuzz-bins: $(FUZZ_BINS)
# make check replays each harness's corpus (tests/run.sh, suite fuzz)
test-bins: fuzz-bins

fuzz: $(FUZZ_BINS)
	$(Q)tests/fuzz/run.sh $(BUILD) $(if $(CRASH),--crash $(CRASH)) \
		--seconds $(FUZZ_SECONDS) $(or $(FUZZ),$(FUZZ_NAMES))

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' -type f 2>/dev/null)
